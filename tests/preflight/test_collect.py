"""The pre-flight collector and command, end to end over HTTP: real VerneMQ 2.1.2 answers served
from the fixtures, by plain HTTP servers (targets file) and through a fake API server's pod proxy."""

from __future__ import annotations

import http.server
import json
import re
import threading
from pathlib import Path

import pytest
import yaml

from tests.conftest import VMQ_FIXTURES
from tests.fakekube import FakeKube
from validators.cli import execute, main
from validators.collect.preflight import parse_metrics, parse_status
from validators.commands.preflight import Preflight
from validators.core.errors import InputError
from validators.core.model import Status


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    slept = []
    monkeypatch.setattr(Preflight, "sleep", staticmethod(slept.append))
    return slept


def test_parse_status_and_metrics_from_real_answers():
    d = VMQ_FIXTURES / "03_node2_killed_t10s"
    views = parse_status(json.loads((d / "node1_status.json").read_text()))
    assert views["VerneMQ1@127.0.0.1"]["members"] == {"VerneMQ2@127.0.0.2": False, "VerneMQ1@127.0.0.1": True}
    m = parse_metrics((d / "node1_metrics.prom").read_text())
    assert m["netsplit_detected"] == 2 and m["netsplit_resolved"] == 1 and m["queue_message_in"] == 13
    with pytest.raises(ValueError):
        parse_status({"not": "a list"})


class _Node:
    """Serves /status.json and /metrics of one node from a fixture phase; ``phases`` advance per /metrics."""

    def __init__(self, prefix: str, phases: list[str]):
        self.prefix, self.phases, self.metrics_calls = prefix, phases, 0
        node = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path == "/metrics":
                    phase = node.phases[min(node.metrics_calls, len(node.phases) - 1)]
                    node.metrics_calls += 1
                    body = (VMQ_FIXTURES / phase / f"{node.prefix}_metrics.prom").read_bytes()
                elif self.path == "/status.json":
                    body = (VMQ_FIXTURES / node.phases[0] / f"{node.prefix}_status.json").read_bytes()
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _targets(tmp_path: Path, nodes: dict[str, str]) -> str:
    doc = {"cluster": {"transport": "direct"},
           "nodes": [{"name": name, "host": "127.0.0.1", "http": url} for name, url in nodes.items()]}
    path = tmp_path / "targets.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.fixture
def nodes():
    made = []

    def make(prefix, phases):
        n = _Node(prefix, phases)
        made.append(n)
        return n
    yield make
    for n in made:
        n.close()


def _by_check(report):
    out = {}
    for r in report.results:
        out.setdefault(r.check, []).append(r)
    return out


def test_steady_cluster_over_http_passes(tmp_path, nodes, no_waiting):
    a, b = nodes("node1", ["02_steady_clients"]), nodes("node2", ["02_steady_clients"])
    t = _targets(tmp_path, {"VerneMQ1@127.0.0.1": a.url, "VerneMQ2@127.0.0.2": b.url})
    report = execute(["preflight", "--targets", t, "--target-version", "2.1.3", "--interval", "7"])
    assert report.findings_at_or_above("error") == [], [r.message for r in report.findings_at_or_above("error")]
    assert no_waiting == [7.0] and a.metrics_calls == 2
    checks = _by_check(report)
    assert [r.status for r in checks["PREFLIGHT-003"]] == [Status.SKIP]
    assert {r.subject for r in checks["PREFLIGHT-001"]} == {"VerneMQ1@127.0.0.1", "VerneMQ2@127.0.0.2"}


def test_node_killed_netsplit_rising_and_negative_counts_block(tmp_path, nodes):
    # node1 sees node2 down, and its netsplit counter rises between the two samples
    a = nodes("node1", ["02_steady_clients", "03_node2_killed_t10s"])
    a.phases = ["03_node2_killed_t10s", "03_node2_killed_t10s"]
    a_metrics = ["02_steady_clients", "03_node2_killed_t10s"]
    a.phases = a_metrics
    t = _targets(tmp_path, {"VerneMQ1@127.0.0.1": a.url, "VerneMQ2@127.0.0.2": "http://127.0.0.1:9"})
    report = execute(["preflight", "--targets", t, "--target-version", "2.1.2"])
    blocked = {r.check for r in report.findings_at_or_above("error")}
    assert {"PREFLIGHT-001", "PREFLIGHT-002"} <= blocked
    rising = [r for r in report.results if r.check == "PREFLIGHT-002" and r.status is Status.FAIL]
    assert any("rose from 1 to 2" in r.message for r in rising)
    unreachable = [r for r in report.results if r.check == "PREFLIGHT-001" and r.subject == "VerneMQ2@127.0.0.2"]
    assert unreachable and "cannot" in unreachable[0].message

    c, d = nodes("node1", ["01_raw_sockets_no_sessions"]), nodes("node2", ["01_raw_sockets_no_sessions"])
    t = _targets(tmp_path, {"VerneMQ1@127.0.0.1": c.url, "VerneMQ2@127.0.0.2": d.url})
    report = execute(["preflight", "--targets", t])
    bad = [r for r in report.findings_at_or_above("error")]
    assert {r.check for r in bad} == {"PREFLIGHT-005"}
    assert any("offline -5" in r.message for r in bad)


def test_cli_exit_code_and_json_report(tmp_path, nodes, capsys):
    a, b = nodes("node1", ["02_steady_clients"]), nodes("node2", ["02_steady_clients"])
    t = _targets(tmp_path, {"VerneMQ1@127.0.0.1": a.url, "VerneMQ2@127.0.0.2": b.url})
    out = tmp_path / "r.json"
    assert main(["preflight", "--targets", t, "--target-version", "2.0.0", "--report-json", str(out)]) == 1
    doc = json.loads(out.read_text())
    assert doc["summary"]["failed"] is True
    assert [r["check"] for r in doc["results"] if r["status"] == "fail"] == ["PREFLIGHT-007"]
    assert main(["preflight", "--targets", t, "--interval", "-1"]) == 2
    assert "--interval" in capsys.readouterr().err


class ProxyKube(FakeKube):
    """The fake API server plus the pod proxy subresource, answering from fixture files."""

    proxy = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/:]+):(\d+)/proxy(/.*)$")

    def __init__(self, objects, files: dict[str, Path]):
        super().__init__(objects)
        self.files = files  # pod name -> fixture dir + prefix

    def _route(self, path, query):
        m = self.proxy.match(path)
        if not m:
            return super()._route(path, query)
        pod, port, sub = m.group(2), m.group(3), m.group(4)
        base = self.files.get(pod)
        if base is None or port != "8888":
            return 503, {"kind": "Status", "code": 503, "message": "no endpoints"}
        name = {"/status.json": "_status.json", "/metrics": "_metrics.prom"}.get(sub)
        if not name:
            return 404, {"kind": "Status", "code": 404}
        return 200, (base.parent / (base.name + name)).read_bytes()


def _pod(i: int, ready=True):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"vmq-{i}", "namespace": "mq",
                         "labels": {"app.kubernetes.io/name": "vernemq", "app.kubernetes.io/instance": "vmq"}},
            "spec": {"containers": [{"name": "vernemq", "image": "vernemq/vernemq:2.1.2",
                                     "ports": [{"name": "http", "containerPort": 8888}]}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


STS = {"apiVersion": "apps/v1", "kind": "StatefulSet",
       "metadata": {"name": "vmq", "namespace": "mq",
                    "labels": {"app.kubernetes.io/name": "vernemq", "app.kubernetes.io/instance": "vmq"}},
       "spec": {"replicas": 2},
       "status": {"readyReplicas": 2, "currentRevision": "vmq-abc", "updateRevision": "vmq-abc"}}
PDB = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "vmq", "namespace": "mq"},
       "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/instance": "vmq"}}},
       "status": {"disruptionsAllowed": 1, "expectedPods": 2, "currentHealthy": 2}}


def test_kubernetes_source_through_the_pod_proxy(tmp_path):
    d = VMQ_FIXTURES / "02_steady_clients"
    files = {"vmq-0": d / "node1", "vmq-1": d / "node2"}
    with ProxyKube([_pod(0), _pod(1), STS, PDB], files) as kube:
        cfg = kube.write_kubeconfig(tmp_path / "kc", context="fake")
        argv = ["preflight", "--kubeconfig", str(cfg), "--context", "fake", "--namespace", "mq",
                "--release", "vmq", "--target-version", "2.1.3"]
        report = execute(argv)
        assert report.findings_at_or_above("error") == [], [
            (r.check, r.message) for r in report.findings_at_or_above("error")]
        assert report.meta["context"] == "fake"
        assert any("/pods/vmq-1:8888/proxy/metrics" in p for _m, p, _q in kube.requests)

        # a pod that is not ready, a PDB with no room, and a pod whose proxy fails: each blocks
        kube.add(_pod(1, ready=False))
        kube.add({**PDB, "status": {"disruptionsAllowed": 0, "expectedPods": 2, "currentHealthy": 1}})
        kube.files.pop("vmq-1")
        report = execute(argv)
        blocked = {r.check for r in report.findings_at_or_above("error")}
        assert {"PREFLIGHT-001", "PREFLIGHT-003", "PREFLIGHT-004"} <= blocked


def test_kubernetes_source_needs_an_explicit_context(tmp_path):
    with pytest.raises(InputError) as exc:
        execute(["preflight", "--namespace", "mq", "--release", "vmq"])
    assert exc.value.field == "--context"
