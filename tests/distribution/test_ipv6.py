"""IPv6 pod IPs: every URL and Host header built for a node has the brackets (one helper, core/addr.py).
Pods come from the fake API server; the cluster/show view is read for real from an HTTP server on ::1,
both by the Python probe and by the kube-exec bash script (run here with plain `bash -s`)."""

from __future__ import annotations

import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tests.conftest import VMQ_FIXTURES
from tests.distribution.test_kube_targets import API_SECRET, COOKIE_SECRET, NS, SEL, pod
from tests.fakekube import FakeKube
from validators.canary.runner import parse_entry
from validators.collect.distribution import build_jobs, parse_views
from validators.collect.kube_targets import targets_from_kube
from validators.collect.kubeclient import connect
from validators.erldist.probe import fetch_view
from validators.transports.shell import build_script, parse_output

CLUSTER_SHOW = (VMQ_FIXTURES / "02_steady_clients" / "node1_api_v1_cluster_show.json").read_bytes()


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_ipv6_pod_ips_give_bracketed_urls(tmp_path):
    with FakeKube([pod("r1-vernemq-0", "fd00::a"), pod("r1-vernemq-1", "fd00::b"), COOKIE_SECRET, API_SECRET]) as kube:
        cfg = kube.write_kubeconfig(tmp_path / "kubeconfig", context="fake")
        spec, _meta = targets_from_kube(connect(str(cfg), "fake"), NS, SEL)
    n = spec.nodes[0]
    assert n.host == "fd00::a" and n.http == "http://[fd00::a]:8888"
    assert n.mqtt == "tcp://[fd00::a]:1883" and n.ws == "ws://[fd00::a]:8080/mqtt"
    entry = parse_entry(n.ws)
    assert (entry.host, entry.port, entry.transport) == ("fd00::a", 8080, "websockets")
    jobs = build_jobs(spec)
    assert {j["view"]["url"] for j in jobs} == {"http://[fd00::a]:8888", "http://[fd00::b]:8888"}
    script = build_script(jobs[0])
    assert "view 'fd00::a' 8888 '[fd00::a]:8888'" in script or "view fd00::a 8888 '[fd00::a]:8888'" in script


class _Server(HTTPServer):
    address_family = socket.AF_INET6


@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback")
def test_cluster_show_view_over_ipv6_python_probe_and_bash_script():
    hosts = []

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *a):
            pass

        def do_GET(self):  # noqa: N802
            hosts.append(self.headers.get("Host"))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(CLUSTER_SHOW)))
            self.end_headers()
            self.wfile.write(CLUSTER_SHOW)

    srv = _Server(("::1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    try:
        view = {"url": f"http://[::1]:{port}", "api_key": "ipv6-test-key-0123"}
        obs = fetch_view("VerneMQ@::1", view, 3.0)
        assert obs["ok"], obs
        job = {"source": "VerneMQ@::1", "targets": [], "timeout": 3, "view": view}
        cp = subprocess.run(["bash", "-s"], input=build_script(job), capture_output=True, text=True, timeout=30)
        shell_obs = [o for o in parse_output(job, cp.stdout) if o.get("kind") == "view"]
        assert shell_obs and shell_obs[0]["ok"], (shell_obs, cp.stderr)
    finally:
        srv.shutdown()
        srv.server_close()
    assert hosts == [f"[::1]:{port}", f"[::1]:{port}"]
    views = parse_views([obs], ["VerneMQ@::1"])
    assert views["VerneMQ@::1"]["ok"] and views["VerneMQ@::1"]["members"]
