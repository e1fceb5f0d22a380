"""A replayed VerneMQ cluster of N nodes over HTTP, built from one captured node of VerneMQ 2.1.2.

The answers are the captured bytes of ``tests/fixtures/vernemq/2.1.2/00_fresh_cluster_no_clients`` (node 1:
/status.json, /metrics, /health..., /api/v1/{cluster,listener,session}/show), with the node's name replaced
by ``VerneMQ<i>@10.42.0.<i>`` and the member lists (status.json, cluster/show) widened to all N nodes. It
is a replay, not VerneMQ: nothing changes between requests. Each node listens on its own 127.0.0.1 port.

    with ReplayCluster(20) as rc:
        rc.write_targets(path)          # a targets file for `vmq-validate clients|preflight|watch --targets`

    python -m tests.watch.replay --nodes 20 --targets FILE   # serve until SIGTERM (the benchmark's server)
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PHASE = ROOT / "tests" / "fixtures" / "vernemq" / "2.1.2" / "00_fresh_cluster_no_clients"
CAPTURED = "VerneMQ1@127.0.0.1"


def node_name(i: int) -> str:
    return f"VerneMQ{i + 1}@10.42.0.{i + 1}"


def build_answers(n: int) -> list[dict[str, tuple[str, bytes]]]:
    """Per node: path -> (content type, body)."""
    names = [node_name(i) for i in range(n)]
    status = json.loads((PHASE / "node1_status.json").read_text())[0][CAPTURED]
    status["mystatus"] = [{m: True for m in names}]
    metrics = (PHASE / "node1_metrics.prom").read_text()
    js = "application/json"
    cluster = json.dumps({"table": [{"Node": m, "Running": True} for m in names], "type": "table"}).encode()
    out = []
    for i, name in enumerate(names):
        out.append({
            "/status.json": (js, json.dumps([{m: status for m in names}]).encode()),
            "/metrics": ("text/plain", metrics.replace(CAPTURED, name).encode()),
            "/health": (js, (PHASE / "node1_health.json").read_bytes()),
            "/health/listeners": (js, (PHASE / "node1_health_listeners.json").read_bytes()),
            "/health/listeners_full_cluster": (js, (PHASE / "node1_health_listeners_full_cluster.json").read_bytes()),
            "/api/v1/cluster/show": (js, cluster),
            "/api/v1/listener/show": (js, (PHASE / "node1_api_v1_listener_show.json").read_bytes()),
            "/api/v1/session/show": (js, (PHASE / "node1_api_v1_session_show.json").read_bytes()),
        })
    return out


class ReplayCluster:
    def __init__(self, n: int):
        self.n = n
        self.api_key = "replay-" + secrets.token_hex(8)
        self.tmp = Path(tempfile.mkdtemp(prefix="vmq-replay-"))
        self.key_file = self.tmp / "api-key"
        self.key_file.write_text(self.api_key)
        os.chmod(self.key_file, 0o600)
        self.servers: list[ThreadingHTTPServer] = []

    def __enter__(self) -> "ReplayCluster":
        for answers in build_answers(self.n):
            self.servers.append(_server(answers))
        for s in self.servers:
            threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        for s in self.servers:
            s.shutdown()
            s.server_close()
        for f in self.tmp.iterdir():
            f.unlink()
        self.tmp.rmdir()

    def targets(self) -> dict:
        return {"cluster": {"api_key_file": str(self.key_file)},
                "nodes": [{"name": node_name(i), "host": "127.0.0.1",
                           "http": f"http://127.0.0.1:{s.server_address[1]}"} for i, s in enumerate(self.servers)]}

    def write_targets(self, path: Path) -> Path:
        path.write_text(yaml.safe_dump(self.targets(), sort_keys=False))
        return path


def _server(answers: dict[str, tuple[str, bytes]]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802
            got = answers.get(self.path.split("?", 1)[0])
            code, (ctype, body) = (200, got) if got else (404, ("text/plain", b"not found"))
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

    return Server(("127.0.0.1", 0), Handler)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.watch.replay")
    p.add_argument("--nodes", type=int, default=20)
    p.add_argument("--targets", required=True, help="write the targets file here once serving")
    a = p.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with ReplayCluster(a.nodes) as rc:
        tmp = Path(a.targets + ".tmp")
        rc.write_targets(tmp)
        os.replace(tmp, a.targets)
        while not stop.wait(1):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
