"""The lab itself: the cluster/show responder speaks VerneMQ's protocol, secrets stay off argv,
labs coexist, and everything is cleaned up (also on KeyboardInterrupt and for detached labs)."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.lab import STATE_DIR, Lab, list_states
from tests.lab.fixtures import require_lab

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]


def netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def links() -> str:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout


def get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_cluster_show_auth_and_shape_like_vernemq(vmq_fixtures):
    require_lab()
    with Lab(n=2, http_port=8889) as lab:
        url = lab.nodes[0].http_url + "/api/v1/cluster/show"
        assert url.endswith(":8889/api/v1/cluster/show")
        status, headers, body = get(url)
        assert (status, body) == (401, b"")
        assert headers["www-authenticate"] == 'Authorization realm="VerneMQ"'
        _s, _h, wrong = get(url, {"x-api-key": "not-the-key"})
        assert _s == 401
        basic = "Basic " + base64.b64encode(f"{lab.api_key}:".encode()).decode()
        for h in ({"Authorization": basic}, {"x-api-key": lab.api_key}):
            status, _h, body = get(url, h)
            doc = json.loads(body)
            assert status == 200
            assert doc == {"table": [{"Node": n.name, "Running": True} for n in lab.nodes], "type": "table"}
        captured = json.loads((vmq_fixtures / "00_fresh_cluster_no_clients" / "node1_api_v1_cluster_show.json")
                              .read_text())
        assert set(captured) == set(doc) and set(captured["table"][0]) == set(doc["table"][0])
        # the cookie and the API key are on no process's argument list
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace")
            except OSError:
                continue
            assert lab.cookie not in cmdline and lab.api_key not in cmdline


def test_two_labs_coexist_and_both_clean_up_even_on_keyboard_interrupt():
    require_lab()
    before = netns_names()
    with pytest.raises(KeyboardInterrupt):
        with Lab(n=1) as a, Lab(n=1) as b:
            assert a.subnet != b.subnet and a.bridge != b.bridge
            assert a.cluster_view(0) == {a.nodes[0].name: True}
            assert b.cluster_view(0) == {b.nodes[0].name: True}
            procs = [p for lab in (a, b) for p in lab._procs]
            ids, dirs = (a.id, b.id), (a.dir, b.dir)
            raise KeyboardInterrupt
    assert netns_names() == before
    assert not any(f"vlb{lab_tag}" in links() for lab_tag in (a.tag, b.tag))
    assert all(p.poll() is not None for p in procs)
    assert not any(d.exists() for d in dirs)
    assert not any((STATE_DIR / f"{i}.json").exists() for i in ids)


def test_cli_up_status_down_for_a_detached_lab():
    require_lab()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    up = subprocess.run([sys.executable, "-m", "tests.lab", "up", "-n", "2"], capture_output=True, text=True,
                        timeout=120, cwd=ROOT, env=env)
    assert up.returncode == 0, up.stderr
    lab_id = re.search(r"lab (\S+) is up", up.stdout).group(1)
    try:
        state = [s for s in list_states() if s["id"] == lab_id][0]
        assert state["detached"] and set(state["netns"]) <= netns_names()
        targets = re.search(r"targets file: (\S+)", up.stdout).group(1)
        assert Path(targets).exists()
        st = subprocess.run([sys.executable, "-m", "tests.lab", "status"], capture_output=True, text=True,
                            timeout=60, cwd=ROOT, env=env)
        assert lab_id in st.stdout and state["nodes"][0]["name"] in st.stdout
    finally:
        down = subprocess.run([sys.executable, "-m", "tests.lab", "down", lab_id], capture_output=True, text=True,
                              timeout=120, cwd=ROOT, env=env)
    assert f"removed lab {lab_id}" in down.stdout
    assert not set(state["netns"]) & netns_names()
    assert state["bridge"] not in links()
