"""`vmq-validate preflight` whose nodes' HTTP endpoints are hostile servers on loopback (tests/hostile.py):
each bad node is reported with the reason, the run ends with exit 1/2 within a bound (every read has the
client's overall deadline, 5 s), never a traceback, and the API key never reaches the redirect target."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from tests.hostile import HostileServer
from validators.cli import main
from validators.commands.preflight import Preflight

KEY = "hostile-preflight-key-0123456789"
MODES = ("silent", "trickle", "endless", "nested", "redirect")
REASONS = {"silent": "within 5s", "trickle": "within 5s", "endless": "larger than", "nested": "nested too deeply",
           "redirect": "redirects are not followed"}


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    monkeypatch.setattr(Preflight, "sleep", staticmethod(lambda s: None))


def test_preflight_node_reads_from_hostile_nodes(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VMQ_HOSTILE_KEY", KEY)
    servers = {m: HostileServer(m).__enter__() for m in MODES}
    try:
        nodes = [{"name": f"VerneMQ{i}@127.0.0.1", "host": "127.0.0.1", "http": s.url}
                 for i, s in enumerate(servers.values())]
        t = tmp_path / "targets.yaml"
        t.write_text(yaml.safe_dump({"cluster": {"api_key_env": "VMQ_HOSTILE_KEY"}, "nodes": nodes}))
        report = tmp_path / "r.json"
        t0 = time.monotonic()
        code = main(["preflight", "--targets", str(t), "--report-json", str(report)])
        took = time.monotonic() - t0
    finally:
        for s in servers.values():
            s.__exit__(None, None, None)
    out, err = capsys.readouterr()
    text = report.read_text()
    assert code in (1, 2) and took < 60
    assert "Traceback" not in out + err and KEY not in out + err + text
    doc = json.loads(text)
    for i, mode in enumerate(MODES):
        mine = [r for r in doc["results"] if f"VerneMQ{i}@127.0.0.1" in json.dumps(r)]
        assert any(REASONS[mode] in json.dumps(r) and r["status"] in ("fail", "unknown") for r in mine), (mode, mine)
    assert servers["redirect"].leaked_keys == [] and servers["redirect"].target.requests == []
