"""`vmq-validate distribution` (direct transport) whose nodes' HTTP endpoints are hostile servers on loopback
(tests/hostile.py): the cluster/show view of each bad node is unknown with the reason, the run ends with
exit 0/1/2 within a bound, never a traceback, and the API key never reaches the redirect target.
EPMD and the cluster port point at a closed loopback port (refused at once)."""

from __future__ import annotations

import json
import socket
import time

import pytest
import yaml

from tests.hostile import HostileServer
from validators.cli import main

KEY = "hostile-dist-key-0123456789"
MODES = ("silent", "trickle", "endless", "nested", "redirect")
REASONS = {"silent": "within 1s", "trickle": "within 1s", "endless": "larger than", "nested": "nested too deeply",
           "redirect": "redirects are not followed"}


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def servers():
    started = {m: HostileServer(m).__enter__() for m in MODES}
    try:
        yield started
    finally:
        for s in started.values():
            s.__exit__(None, None, None)


def test_distribution_views_from_hostile_nodes(tmp_path, capsys, monkeypatch, servers):
    monkeypatch.setenv("VMQ_HOSTILE_KEY", KEY)
    closed = _closed_port()
    nodes = [{"name": f"VerneMQ{i}@127.0.0.1", "host": "127.0.0.1", "http": s.url}
             for i, s in enumerate(servers.values())]
    t = tmp_path / "targets.yaml"
    t.write_text(yaml.safe_dump({"cluster": {"api_key_env": "VMQ_HOSTILE_KEY", "epmd_port": closed,
                                             "cluster_port": closed, "transport": "direct"}, "nodes": nodes}))
    report = tmp_path / "r.json"
    t0 = time.monotonic()
    code = main(["distribution", "--targets", str(t), "--timeout", "1", "--report-json", str(report)])
    took = time.monotonic() - t0
    out, err = capsys.readouterr()
    text = report.read_text()
    assert code in (1, 2) and took < 30
    assert "Traceback" not in out + err and KEY not in out + err + text
    doc = json.loads(text)
    views = [r for r in doc["results"] if r["check"] == "DIST-007"]  # the cluster view of each node
    assert len(views) == len(MODES) and {r["status"] for r in views} == {"unknown"}, views
    blob = json.dumps(views)
    for mode in MODES:
        assert REASONS[mode] in blob, (mode, blob[:3000])
    assert servers["redirect"].leaked_keys == [] and servers["redirect"].target.requests == []
    assert "authorization: basic" in servers["redirect"].requests[0].lower()


def test_pod_script_view_against_hostile_nodes(servers):
    """The kube-exec bash script's cluster/show view (run here with plain `bash -s`): the same outcomes."""
    import subprocess

    from validators.collect.distribution import parse_views
    from validators.transports.shell import build_script, parse_output

    want = dict(REASONS, silent="no answer in time", trickle="no answer in time", endless="larger than")
    for mode, srv in servers.items():
        # the endless answer is cut at the cap and then hex-dumped by od, about 0.8 s of CPU for 4 MiB: give it
        # time to get there on a loaded machine (it ends as soon as it has; the others wait for their timeout)
        timeout = 5 if mode == "endless" else 1
        job = {"source": "VerneMQ@127.0.0.1", "targets": [], "timeout": timeout,
               "view": {"url": srv.url, "api_key": KEY}}
        cp = subprocess.run(["bash", "-s"], input=build_script(job), capture_output=True, text=True, timeout=60)
        obs = [o for o in parse_output(job, cp.stdout) if o.get("kind") == "view"]
        view = parse_views(obs, ["VerneMQ@127.0.0.1"])["VerneMQ@127.0.0.1"]
        assert not view["ok"] and want[mode] in view["reason"], (mode, view, cp.stderr[-500:])
        assert KEY not in view["reason"]
    time.sleep(0.2)
    assert servers["redirect"].leaked_keys == [] and servers["redirect"].target.requests == []
