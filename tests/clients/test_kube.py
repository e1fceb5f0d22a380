"""`vmq-validate clients --context`: pods, API key and Service from the Kubernetes API, the nodes' HTTP through
the API server's pod proxy. The API server is tests/fakekube.py behind a small front that implements the
pod proxy route (`/api/v1/namespaces/NS/pods/POD:PORT/proxy/...`) by forwarding to the stand-in nodes.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from tests.fakekube import FakeKube
from tests.standin.lab import StandinLab
from validators.cli import main

NS = "vmq"
TOKEN = "fake-token"
PROXY = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/:]+):(\d+)/proxy(/.*)$")


def _pod(name, node, labels):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": labels},
            "spec": {"containers": [{"name": "vernemq", "image": "vernemq/vernemq:2.1.2",
                                     "ports": [{"name": "http", "containerPort": node.http_port},
                                               {"name": "mqtt", "containerPort": node.mqtt_port},
                                               {"name": "ws", "containerPort": node.ws_port}]}]},
            "status": {"phase": "Running", "podIP": node.addr}}


class _Front(BaseHTTPRequestHandler):
    """The API server: pod proxy paths go to the pod, everything else to the fake API server."""

    kube_url = ""
    pods: dict = {}
    proxied: list = []

    def log_message(self, *a):  # quiet
        pass

    def do_GET(self):  # noqa: N802
        path, _, query = self.path.partition("?")
        m = PROXY.match(path)
        headers = {}
        if m:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._send(401, b"{}", {})
            ns, pod, port, rest = m.groups()
            url = f"http://{self.pods[(ns, pod)]}:{port}{rest}" + (f"?{query}" if query else "")
            if self.headers.get("x-api-key"):
                headers["x-api-key"] = self.headers["x-api-key"]
            self.proxied.append(rest + (f"?{query}" if query else ""))
        else:
            url = self.kube_url + self.path
            headers["Authorization"] = self.headers.get("Authorization", "")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
                self._send(r.status, r.read(), dict(r.headers))
        except urllib.error.HTTPError as e:
            self._send(e.code, e.read(), dict(e.headers))
        except OSError:
            self._send(503, b"error trying to reach service", {})

    def _send(self, code, body, headers):
        self.send_response(code)
        self.send_header("Content-Type", headers.get("Content-Type") or headers.get("content-type")
                         or "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def cluster(tmp_path):
    with StandinLab(nodes=2, node_names="VerneMQ@{addr}") as lab:
        lab.wait_converged()
        labels = {"app.kubernetes.io/name": "vernemq", "app.kubernetes.io/instance": "r1"}
        secret = {"apiVersion": "v1", "kind": "Secret",
                  "metadata": {"name": "r1-api-key", "namespace": NS,
                               "labels": {"app.kubernetes.io/instance": "r1", "vernemq-toolkit/secret": "api-key"}},
                  "data": {"api-key": base64.b64encode(lab.api_key.encode()).decode()}}
        svc = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "r1-vernemq", "namespace": NS,
                            "annotations": {"service.beta.kubernetes.io/azure-load-balancer-health-probe-protocol":
                                            "tcp"}},
               "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Cluster", "selector": labels,
                        "ports": [{"name": "mqtt", "port": 1883, "targetPort": "mqtt"}]}}
        headless = {"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "r1-vernemq-headless", "namespace": NS},
                    "spec": {"clusterIP": "None", "selector": labels, "ports": [{"name": "mqtt", "port": 1883}]}}
        pods = [_pod(f"r1-vernemq-{i}", n, labels) for i, n in enumerate(lab.nodes)]
        with FakeKube(pods + [secret, svc, headless], token=TOKEN) as kube:
            front = type("Front", (_Front,), {"kube_url": kube.url, "proxied": [],
                                              "pods": {(NS, f"r1-vernemq-{i}"): n.addr for i, n in enumerate(lab.nodes)}})
            server = ThreadingHTTPServer(("127.0.0.1", 0), front)
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
            cfg = tmp_path / "kubeconfig"
            cfg.write_text(yaml.safe_dump({
                "apiVersion": "v1", "kind": "Config", "current-context": "fake",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"}}],
                "users": [{"name": "u", "user": {"token": TOKEN}}],
                "contexts": [{"name": "fake", "context": {"cluster": "c", "user": "u", "namespace": NS}}]}))
            try:
                yield lab, cfg, front
            finally:
                server.shutdown()
                server.server_close()


def _run(cfg, tmp_path, capsys, *extra):
    out = tmp_path / "r.json"
    code = main(["clients", "--kubeconfig", str(cfg), "--context", "fake", "--namespace", NS, "--release", "r1",
                 "--samples", "1", "--report-json", str(out), "--format", "json", *extra])
    text = capsys.readouterr()
    doc = json.loads(out.read_text())
    return code, doc, text.out + text.err + out.read_text()


def test_live_cluster_through_the_pod_proxy(cluster, tmp_path, capsys):
    lab, cfg, front = cluster
    n0, n1 = lab.nodes
    code, doc, text = _run(cfg, tmp_path, capsys)
    assert doc["meta"]["source"] == "kubernetes" and doc["meta"]["http"] == "API server pod proxy"
    assert code == 0, [r["message"] for r in doc["results"] if r["status"] in ("fail", "unknown")]
    assert any(p.startswith("/api/v1/session/show?--client_id&--node") for p in front.proxied)
    socks = lab.bare_sockets(0, "mqtt", 4)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with urllib.request.urlopen(n0.http_url + "/status.json") as r:
                if json.loads(r.read())[0][n0.name]["num_online"] == 4:
                    break
            time.sleep(0.05)
        code, doc, text = _run(cfg, tmp_path, capsys)
    finally:
        for s in socks:
            s.close()
    ghost = next(r for r in doc["results"] if r["check"] == "CLIENTS-001" and r["subject"] == n0.name)
    assert code == 1 and ghost["status"] == "fail" and ghost["evidence"]["ghost_sockets"] == 4
    top = ghost["evidence"]["likely_causes"][0]
    assert top["cause"] == "load-balancer TCP probes on the MQTT port"
    assert "Service r1-vernemq is a LoadBalancer with externalTrafficPolicy Cluster" in top["why"]
    assert "azure-load-balancer-health-probe-protocol" in top["why"]
    assert lab.api_key not in text


def test_canary_on_pods_needs_in_cluster(cluster, tmp_path, capsys):
    _lab, cfg, _front = cluster
    assert main(["clients", "--kubeconfig", str(cfg), "--context", "fake", "--namespace", NS, "--release", "r1",
                 "--canary"]) == 2
    assert "--in-cluster" in capsys.readouterr().err
