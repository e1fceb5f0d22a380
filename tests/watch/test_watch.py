"""`vmq-validate watch` without the lab: bad input, the deadline, /metrics, /report and /healthz over HTTP,
SIGTERM, and the number of series a 20-node cluster makes (docs/watch.md quotes these numbers).

The cluster here is a replay of captured VerneMQ 2.1.2 answers (tests/watch/replay.py), not VerneMQ.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.watch.replay import ReplayCluster
from validators.cli import build_parser, main
from validators.commands.watch import OUTCOMES, STATUSES, State, WatchCollector, build_plan, run_cycle

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "watch.md"


def plan_of(*argv):
    parser, _ = build_parser()
    return build_plan(parser.parse_args(["watch", *argv]))


def scrape(state) -> list:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(WatchCollector(state))
    text = generate_latest(reg).decode()
    return [s for fam in text_string_to_metric_families(text) for s in fam.samples]


@pytest.fixture(scope="module")
def replay20(tmp_path_factory):
    with ReplayCluster(20) as rc:
        yield rc, rc.write_targets(tmp_path_factory.mktemp("replay") / "targets.yaml")


@pytest.mark.parametrize("argv,field", [
    (["--commands", "cluster"], "--commands"),                 # cluster needs the API
    (["--commands", "plan"], "--commands"),
    (["--interval", "0s"], "--interval"),
    (["--interval", "10s", "--deadline", "20s"], "--deadline"),
    (["--listen", "nowhere"], "--listen"),
    (["--jitter", "2"], "--jitter"),
    (["--distribution-args", "--transport teleport"], "--distribution-args"),
    (["--clients-args", "--targets other.yaml"], "--clients-args"),
    (["--clients-args", "'unbalanced"], "--clients-args"),
    (["--cycles", "0"], "--cycles"),
])
def test_bad_input_is_one_line_exit_2(replay20, capsys, argv, field):
    _, targets = replay20
    assert main(["watch", "--targets", str(targets), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and field in err and "Traceback" not in err, err


def test_needs_exactly_one_source(capsys):
    assert main(["watch", "--namespace", "mqtt"]) == 2
    assert "give exactly one source" in capsys.readouterr().err


def test_bad_targets_file_refused_before_listening(tmp_path, capsys):
    bad = tmp_path / "t.yaml"
    bad.write_text("nodes: [{name: nope}]\n")
    assert main(["watch", "--targets", str(bad)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_default_commands_follow_the_source(replay20):
    _, targets = replay20
    assert plan_of("--targets", str(targets)).commands == ["distribution", "clients", "preflight"]
    p = plan_of("--context", "c", "--namespace", "mqtt", "--release", "r")
    assert p.commands == ["cluster", "distribution", "clients", "preflight"]
    p = plan_of("--in-cluster", "--namespace", "mqtt", "--release", "r", "--distribution-args", "--transport direct")
    assert p.commands == ["cluster", "distribution", "clients"]
    assert p.namespaces["distribution"].transport == "direct" and p.namespaces["distribution"].in_cluster
    assert p.interval == 60 and p.deadline == 60 and p.listen == ("127.0.0.1", 9910)


def test_one_cycle_metrics_and_report(replay20):
    rc, targets = replay20
    plan = plan_of("--targets", str(targets), "--commands", "clients,preflight", "--clients-args", "--samples 1",
                   "--preflight-args", "--interval 0", "--interval", "30s")
    cycle = run_cycle(plan)
    assert not cycle.cut and [r.outcome for r in cycle.runs] == ["ok", "ok"], [r.error for r in cycle.runs]
    state = State(plan)
    state.update(cycle)
    samples = scrape(state)
    status = [s for s in samples if s.name == "vmq_validate_check_status"]
    pairs = {(s.labels["check"], s.labels["subject"]) for s in status}
    assert len(status) == len(pairs) * len(STATUSES)
    for key in pairs:  # exactly one status is current
        assert sum(s.value for s in status if (s.labels["check"], s.labels["subject"]) == key) == 1
    # the severity label is the check's (stable across its statuses), not the result's
    assert {s.labels["severity"] for s in status if s.labels["check"] == "CLIENTS-001"} == {"error"}
    current = {(s.labels["check"], s.labels["subject"]): s.labels["status"] for s in status if s.value == 1}
    assert current[("CLIENTS-003", "VerneMQ20@10.42.0.20")] == "pass"
    assert not any(c == "PREFLIGHT-007" or c == "PREFLIGHT-005" for c, _ in pairs), "outside the watch subset"
    outcome = {(s.labels["command"], s.labels["outcome"]): s.value for s in samples
               if s.name == "vmq_validate_last_run_outcome"}
    assert outcome == {(c, o): float(o == "ok") for c in ("clients", "preflight") for o in OUTCOMES}
    doc = json.loads(state.report_json)
    assert doc["command"] == "watch" and doc["meta"]["commands"]["clients"]["outcome"] == "ok"
    assert len(doc["results"]) == len(pairs)
    text = state.report_json.decode() + generate_latest(_registry(state)).decode()
    assert rc.api_key not in text


def _registry(state):
    reg = CollectorRegistry(auto_describe=False)
    reg.register(WatchCollector(state))
    return reg


def test_a_run_over_the_deadline_is_cut_and_marked(tmp_path):
    """A node that accepts TCP and never answers: the run is killed at the 1 s deadline, not at the 30 s timeout."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    key = tmp_path / "key"
    key.write_text("silent-key-0123")
    (tmp_path / "t.yaml").write_text(f"cluster: {{api_key_file: {key}}}\n"
                                     f"nodes: [{{name: VerneMQ@127.0.0.1, host: 127.0.0.1, "
                                     f"http: 'http://127.0.0.1:{port}'}}]\n")
    try:
        plan = plan_of("--targets", str(tmp_path / "t.yaml"), "--commands", "clients", "--interval", "2s",
                       "--deadline", "1s", "--clients-args", "--timeout 30 --samples 1")
        start = time.monotonic()
        cycle = run_cycle(plan)
        took = time.monotonic() - start
    finally:
        silent.close()
    assert cycle.cut and took < 5
    (run,) = cycle.runs
    assert run.outcome == "deadline" and "deadline" in run.error
    state = State(plan)
    state.update(cycle)
    samples = scrape(state)
    assert [s.value for s in samples if s.name == "vmq_validate_collection_errors_total"] == [1.0]
    assert [s.value for s in samples if s.name == "vmq_validate_deadline_exceeded_total"] == [1.0]
    assert not [s for s in samples if s.name == "vmq_validate_check_status"]


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_serves_http_and_stops_on_sigterm(replay20, tmp_path):
    rc, targets = replay20
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "validators", "watch", "--targets", str(targets),
                                 "--commands", "clients", "--clients-args", "--samples 1", "--interval", "1s",
                                 "--listen", f"127.0.0.1:{port}"], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                code, text = _get(base + "/metrics")
                if "vmq_validate_runs_total 2.0" in text:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError(log.read_text())
        assert _get(base + "/healthz") == (200, "ok\n")
        code, report = _get(base + "/report")
        assert code == 200 and json.loads(report)["meta"]["commands"]["clients"]["outcome"] == "ok"
        assert _get(base + "/nothing")[0] == 404
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert "stopped" in log.read_text()


def _cluster_subjects(n: int) -> int:
    """(check, subject) pairs of `cluster` on a fake API server holding a healthy release of n pods."""
    import tests.traffic.test_cluster_live as live
    from tests.fakekube import FakeKube
    from validators.cli import execute

    base = live.load()

    def load_n():
        out = copy.deepcopy(base)
        for o in out:
            if o["kind"] == "StatefulSet":
                o["spec"]["replicas"] = n
        return out

    orig = live.load
    live.load = load_n
    try:
        objs = live.live_objects(ready=tuple(range(n)), endpoints=tuple(range(n)),
                                 nodes=tuple(i % 2 for i in range(n)))
    finally:
        live.load = orig
    with FakeKube(objs) as kube:
        cfg = kube.write_kubeconfig(Path(os.environ.get("TMPDIR", "/tmp")) / f"kc-{os.getpid()}", context="t")
        try:
            rep = execute(["cluster", "--kubeconfig", str(cfg), "--context", "t", "-n", "mqtt", "--release", "r"])
        finally:
            cfg.unlink()
    assert len([o for o in objs if o["kind"] == "Pod" and o["metadata"]["name"].startswith("r-vernemq-")]) == n
    return len({(r.check, r.subject) for r in rep.results})


def test_series_count_of_a_20_node_cluster(replay20):
    """The numbers docs/watch.md quotes, computed: clients and preflight from the 20-node replay, cluster from
    the fake API server with 20 pods, distribution from its pair/node structure (4 checks per ordered pair
    and 4 per node pod to pod, verified on real Erlang nodes in tests/distribution/test_lab.py and
    tests/watch/test_lab.py; 8 per node from the validator with --transport direct)."""
    _, targets = replay20
    n = 20
    plan = plan_of("--targets", str(targets), "--commands", "clients,preflight", "--clients-args", "--samples 1",
                   "--preflight-args", "--interval 0")
    cycle = run_cycle(plan)
    per = {r.command: len({(x["check"], x["subject"]) for x in r.report["results"]}) for r in cycle.runs}
    clients = per["clients"]
    # preflight from a targets file: PREFLIGHT-003/-004 judge pods and the PDB, "-" (skipped) here; with a
    # Kubernetes source they judge each of the n pods and the one PDB
    preflight_kube = per["preflight"] - 2 + n + 1
    cluster = _cluster_subjects(n)
    dist_pairs, dist_direct = 4 * n * (n - 1) + 4 * n, 8 * n
    assert (clients, per["preflight"], cluster) == (6 * n + 5, 3 * n + 2, 36)

    def fixed(k):  # per command: 4 findings (critical, error, warning, info) + timestamp + duration + 4 outcomes + errors; 5 watcher-wide
        return k * (4 + 1 + 1 + len(OUTCOMES) + 1) + 5

    context = len(STATUSES) * (cluster + dist_pairs + clients + preflight_kube) + fixed(4)
    in_cluster_direct = len(STATUSES) * (cluster + dist_direct + clients) + fixed(3)
    targets_direct = len(STATUSES) * (dist_direct + clients + per["preflight"]) + fixed(3)
    state = State(plan)
    state.update(cycle)
    assert len(scrape(state)) == len(STATUSES) * (clients + per["preflight"]) + fixed(2)
    text = DOC.read_text()
    for label, value in (("context", context), ("in-cluster-direct", in_cluster_direct),
                         ("targets-direct", targets_direct)):
        assert f"<!-- series:{label} -->{value:,}" in text, (label, value)


def test_a_single_option_passes_with_the_equals_form(replay20):
    _, targets = replay20
    plan = plan_of("--targets", str(targets), "--clients-args=--canary", "--distribution-args=--no-views")
    assert plan.namespaces["clients"].canary is True and plan.namespaces["distribution"].no_views is True
