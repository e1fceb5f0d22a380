"""The `joined` readiness probe, run for real (sh + jq) against VerneMQ 2.1.2 responses with a stand-in curl."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import FULLNAME, container, find

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "vernemq" / "2.1.2"

FAKE_CURL = """#!/bin/sh
# stand-in for curl: answers http://IP:8888/<path> with $FAKE_CURL_DIR/<path with / as _>, else fails like curl -f
url=""
for a in "$@"; do case "$a" in http://*) url="$a";; esac; done
echo "$url" >> "$FAKE_CURL_DIR/requests"
path="${url#http://*/}"
f="$FAKE_CURL_DIR/$(printf %s "$path" | tr / _)"
[ -f "$f" ] || exit 22
cat "$f"
"""


@pytest.fixture(scope="module")
def probe_script(default_docs) -> str:
    if not shutil.which("jq"):
        pytest.skip("jq is not installed (the probe runs jq inside the VerneMQ image)")
    probe = container(find(default_docs, "StatefulSet", FULLNAME))["readinessProbe"]
    assert probe["exec"]["command"][:2] == ["sh", "-c"]
    return probe["exec"]["command"][2]


def run_probe(script, tmp_path, *, listeners: str | None, status: str | None):
    d = tmp_path / "http"
    d.mkdir()
    if listeners is not None:
        (d / "health_listeners").write_text(listeners)
    if status is not None:
        (d / "status.json").write_text(status)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "curl").write_text(FAKE_CURL)
    (bindir / "curl").chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "MY_POD_IP": "10.1.2.3", "FAKE_CURL_DIR": str(d)}
    proc = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=30)
    requests = (d / "requests").read_text().split() if (d / "requests").exists() else []
    return proc, requests


def fixture(phase, name):
    return (FIX / phase / name).read_text()


def test_ready_when_joined(probe_script, tmp_path):
    proc, requests = run_probe(probe_script, tmp_path, listeners=fixture("02_steady_clients", "node1_health_listeners.json"),
                               status=fixture("02_steady_clients", "node1_status.json"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert requests == ["http://10.1.2.3:8888/health/listeners", "http://10.1.2.3:8888/status.json"]


def test_stays_ready_when_a_peer_is_down(probe_script, tmp_path):
    """Phase 03: node2 was killed; node1 still knows it (running: false) and keeps serving its clients."""
    status = fixture("03_node2_killed_t10s", "node1_status.json")
    assert {k: v for s in json.loads(status) for n in s.values() for k, v in n["mystatus"][0].items()} == {
        "VerneMQ1@127.0.0.1": True, "VerneMQ2@127.0.0.2": False}
    proc, _ = run_probe(probe_script, tmp_path, listeners=fixture("03_node2_killed_t10s", "node1_health_listeners.json"),
                        status=status)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_not_ready_before_joining(probe_script, tmp_path):
    """A node that has not joined sees only itself in its cluster view."""
    status = json.loads(fixture("00_fresh_cluster_no_clients", "node1_status.json"))
    for entry in status:
        for node in entry.values():
            node["mystatus"] = [{"VerneMQ1@127.0.0.1": True}]
    entry = status[0]
    for k in [k for k in entry if k != "VerneMQ1@127.0.0.1"]:
        del entry[k]
    proc, _ = run_probe(probe_script, tmp_path, listeners='{"status":"OK"}', status=json.dumps(status))
    assert proc.returncode != 0
    assert "not joined: cluster view has 1 node(s)" in proc.stdout


def test_not_ready_when_listeners_down(probe_script, tmp_path):
    proc, requests = run_probe(probe_script, tmp_path, listeners=None,
                               status=fixture("02_steady_clients", "node1_status.json"))
    assert proc.returncode != 0
    assert requests == ["http://10.1.2.3:8888/health/listeners"]


def test_not_ready_when_status_unreadable(probe_script, tmp_path):
    proc, _ = run_probe(probe_script, tmp_path, listeners='{"status":"OK"}', status=None)
    assert proc.returncode != 0
    (tmp_path / "garbage").mkdir()
    proc2, _ = run_probe(probe_script, tmp_path / "garbage", listeners='{"status":"OK"}', status="<html>")
    assert proc2.returncode != 0
