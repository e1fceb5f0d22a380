"""`vmq-validate watch` against the lab: real Erlang nodes in network namespaces with the VerneMQ stand-in
(tests/standin, a stand-in for VerneMQ's HTTP side in front of real Mosquitto) on each of them.

The watcher runs as its own process (`python -m validators watch`, 2 s interval). All checks pass; node 1 is
killed (stand-in and Erlang VM) and its series flip in the first run that starts after the kill; node 1 is
restarted and they recover; SIGTERM stops the watcher cleanly. /metrics is parsed with prometheus_client's
parser. The series of the healthy and the node-down phases are what the chart's alert rules are tested with:

    VMQ_WATCH_RECORD=1 python -m pytest tests/watch/test_lab.py     # rewrites tests/fixtures/watch/series.json

Without VMQ_WATCH_RECORD the test checks that the recorded fixture still matches what watch produces.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.lab.fixtures import require_lab
from tests.standin.lab import ROOT, lab_standin_argv

pytestmark = pytest.mark.lab
INTERVAL = 2.0
FIXTURE = ROOT / "tests" / "fixtures" / "watch" / "series.json"
#: stable stand-ins for the per-run lab addresses in recorded labels
FIXED_ADDRS = ("10.213.0.1", "10.213.0.2")


def _get(url, timeout=3):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def _get_json(url, timeout=2):
    return json.loads(_get(url, timeout)[1])


def _wait(pred, what, timeout=40.0, step=0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except OSError:
            pass
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Scrape:
    """One /metrics scrape, parsed by prometheus_client's own parser."""

    def __init__(self, text: str):
        self.text = text
        self.samples = [s for fam in text_string_to_metric_families(text) for s in fam.samples]

    def get(self, name, **labels):
        return [s for s in self.samples if s.name == name and labels.items() <= s.labels.items()]

    def value(self, name, **labels) -> float:
        (s,) = self.get(name, **labels)
        return s.value

    def current(self) -> dict[tuple[str, str], str]:
        """(check, subject) -> the status whose series is 1."""
        return {(s.labels["check"], s.labels["subject"]): s.labels["status"]
                for s in self.get("vmq_validate_check_status") if s.value == 1}

    def last_run(self, command) -> float:
        got = self.get("vmq_validate_last_run_timestamp_seconds", command=command)
        return got[0].value if got else 0.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    require_lab()
    from tests.lab import Lab
    from tests.standin.lab import StandinLab

    with Lab(n=2, http_port=8889) as lab:
        bridge = str(list(lab.subnet.hosts())[-1])
        with StandinLab(nodes=0, broker_addr=bridge) as broker:
            tcp, ws = broker.broker_ports

            def start_standin(i):
                node = lab.nodes[i]
                argv = lab_standin_argv(node, lab.nodes, f"{bridge}:{tcp}", f"{bridge}:{ws}", lab.api_key_file)
                return lab.spawn(i, argv, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
                                 log=f"standin-n{i}-{time.monotonic_ns()}.log")

            procs = [start_standin(i) for i in range(len(lab.nodes))]
            for node in lab.nodes:
                _wait(lambda: len(_get_json(f"http://{node.addr}:8888/status.json")[0]) == 2,
                      f"the stand-in on {node.name} to see both nodes")
            targets = lab.targets(transport="netns", http_port=8888)
            for t, n in zip(targets["nodes"], lab.nodes):
                t["mqtt"] = f"tcp://{n.addr}:1883"
            path = tmp_path_factory.mktemp("watch") / "targets.yaml"
            path.write_text(yaml.safe_dump(targets, sort_keys=False))
            yield lab, procs, start_standin, path


@pytest.fixture(scope="module")
def watcher(cluster, tmp_path_factory):
    lab, _procs, _start, targets = cluster
    port = _free_port()
    log = tmp_path_factory.mktemp("watchlog") / "watch.log"
    argv = [sys.executable, "-m", "validators", "watch", "--targets", str(targets), "--interval", f"{INTERVAL:g}s",
            "--jitter", "0", "--listen", f"127.0.0.1:{port}", "--distribution-args", "--timeout 1",
            "--clients-args", "--samples 1 --timeout 1", "--preflight-args", "--interval 0"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
    base = f"http://127.0.0.1:{port}"
    try:
        yield proc, base, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _scrape(base) -> Scrape:
    return Scrape(_get(base + "/metrics")[1])


def _after(base, command_started_after: float, timeout: float) -> Scrape:
    """The first scrape whose every command ran after the given wall-clock time."""
    def ok():
        s = _scrape(base)
        runs = [s.last_run(c) for c in ("distribution", "clients", "preflight")]
        return s if min(runs) > command_started_after else None
    return _wait(ok, "a run after the change", timeout=timeout, step=0.1)


def _normalize(lab, text: str) -> str:
    for node, fixed in zip(lab.nodes, FIXED_ADDRS):
        text = re.sub(re.escape(node.addr) + r"(?![0-9])", fixed, text)
    return text


def _series(lab, scrape: Scrape) -> list[dict]:
    out = []
    for s in scrape.samples:
        if s.name in ("vmq_validate_check_status", "vmq_validate_findings", "vmq_validate_last_run_outcome"):
            labels = {k: _normalize(lab, v) for k, v in sorted(s.labels.items())}
            out.append({"name": s.name, "labels": labels, "value": s.value})
    return sorted(out, key=lambda d: (d["name"], sorted(d["labels"].items())))


def test_watch_healthy_then_node_killed_then_recovered(cluster, watcher):
    lab, procs, start_standin, _targets = cluster
    proc, base, log = watcher
    n1 = lab.nodes[1]

    healthy = _wait(lambda: (lambda s: s if s.get("vmq_validate_runs_total") and
                             s.value("vmq_validate_runs_total") >= 1 else None)(_scrape(base)),
                    "the first run", timeout=60)
    cur = healthy.current()
    assert cur and {c.split("-")[0] for c, _ in cur} == {"DIST", "CLIENTS", "PREFLIGHT"}
    bad = {k: v for k, v in cur.items() if v not in ("pass", "skip")}
    assert not bad, (bad, log.read_text()[-2000:])
    assert {s.labels["status"] for s in healthy.get("vmq_validate_check_status")} == \
        {"pass", "fail", "warn", "skip", "unknown"}, "one series per status"
    assert sum(s.value for s in healthy.get("vmq_validate_findings")) == 0
    for c in ("distribution", "clients", "preflight"):
        assert healthy.value("vmq_validate_last_run_outcome", command=c, outcome="ok") == 1
    assert {k for k, v in cur.items() if v == "pass"}, "some checks really pass"
    n = len(lab.nodes)  # pod to pod: 4 checks per ordered pair, 3 per node (the count docs/watch.md uses)
    assert len([k for k in cur if k[0].startswith("DIST-")]) == 4 * n * (n - 1) + 4 * n

    status, report = _get(base + "/report")
    doc = json.loads(report)
    assert status == 200 and doc["command"] == "watch" and doc["summary"]["failed"] is False
    assert _get(base + "/healthz")[0] == 200

    # kill node 1: its stand-in (the HTTP side) and its Erlang VM (epmd stays up)
    killed_at = time.time()
    os.killpg(procs[1].pid, signal.SIGKILL)
    procs[1].wait(10)
    with lab.killed(1):
        down = _after(base, killed_at, timeout=3 * INTERVAL + 10)
        seen = time.time() - killed_at
        cur = down.current()
        n0 = lab.nodes[0]
        # node 1's own distribution listener, the pair to its cluster port, its client state: all fail now
        for key in (("DIST-002", n1.name), ("DIST-005", f"{n0.name} -> {n1.name}"), ("CLIENTS-003", n1.name)):
            assert healthy.current()[key] == "pass" and cur[key] == "fail", (key, sorted(cur.items()))
        # node 0's own checks still pass (its epmd, its listener, node 1 -> node 0 as seen from node 1's netns)
        for key in (("DIST-002", n0.name), ("DIST-001", f"{n1.name} -> {n0.name}"), ("CLIENTS-003", n0.name)):
            assert cur[key] == "pass", (key, sorted(cur.items()))
        assert down.value("vmq_validate_findings", command="distribution", severity="error") > 0
        assert down.value("vmq_validate_last_run_outcome", command="distribution", outcome="findings") == 1
        # the first run that started after the kill shows it: one interval plus that run's own duration
        assert seen < 2 * INTERVAL + down.value("vmq_validate_last_cycle_duration_seconds") + 2
        down_series = _series(lab, down)
        procs[1] = start_standin(1)
    # Erlang node 1 is back and converged (lab.killed waits for it); the stand-in is up again
    _wait(lambda: len(_get_json(f"http://{n1.addr}:8888/status.json")[0]) == 2, "the stand-in of node 1")
    back_at = time.time()
    recovered = _wait(lambda: (lambda s: s if all(v in ("pass", "skip") for v in s.current().values()) else None)(
        _after(base, back_at, timeout=3 * INTERVAL + 10)), "the series to recover", timeout=30)
    assert set(recovered.current()) == set(healthy.current())

    # secrets never in labels or /report
    for text in (healthy.text, down.text, recovered.text, _get(base + "/report")[1], log.read_text()):
        assert lab.api_key not in text and lab.cookie not in text

    # a clean stop on SIGTERM
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    assert "stopped" in log.read_text()

    recorded = {"source": "tests/watch/test_lab.py (2-node lab, stand-in HTTP side, real Erlang distribution)",
                "regenerate": "VMQ_WATCH_RECORD=1 python -m pytest tests/watch/test_lab.py",
                "nodes": [_normalize(lab, n.name) for n in lab.nodes],
                "phases": {"healthy": _series(lab, healthy), "node_down": down_series}}
    if os.environ.get("VMQ_WATCH_RECORD"):
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        FIXTURE.write_text(json.dumps(recorded, indent=1) + "\n")
    else:
        old = json.loads(FIXTURE.read_text())

        def current(series):
            return {(d["labels"]["check"], d["labels"]["subject"]): d["labels"]["status"]
                    for d in series if d["name"] == "vmq_validate_check_status" and d["value"] == 1}
        stale = f"{FIXTURE} is stale: regenerate it with VMQ_WATCH_RECORD=1 (see this module's docstring)"
        assert current(old["phases"]["healthy"]) == current(recorded["phases"]["healthy"]), stale
        was, now = current(old["phases"]["node_down"]), current(recorded["phases"]["node_down"])
        a, b = old["nodes"]
        for key in (("DIST-002", b), ("DIST-005", f"{a} -> {b}"), ("CLIENTS-003", b)):
            assert was[key] == now[key] == "fail", stale
