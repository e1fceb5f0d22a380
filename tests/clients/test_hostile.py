"""`vmq-validate clients` (live, and with canaries) against hostile servers on loopback (tests/hostile.py):
each run ends with an exit code in {0, 1, 2} within a bound, never a traceback; every bad node is
`unknown` with the reason; the API key never reaches the redirect target; the canary pool never hangs."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from tests.hostile import HostileServer
from validators.canary.runner import CanaryOptions, parse_entry, run_canaries
from validators.cli import main

KEY = "hostile-clients-key-0123456789"
HTTP_MODES = ("silent", "trickle", "endless", "nested", "redirect")
#: what each hostile node's reason must say
REASONS = {"silent": "within 1s", "trickle": "within 1s", "endless": "larger than", "nested": "nested too deeply",
           "redirect": "redirects are not followed"}


@pytest.fixture
def servers():
    started = {m: HostileServer(m).__enter__() for m in HTTP_MODES}
    try:
        yield started
    finally:
        for s in started.values():
            s.__exit__(None, None, None)


def _targets(tmp_path, servers, monkeypatch, **extra_node) -> str:
    monkeypatch.setenv("VMQ_HOSTILE_KEY", KEY + "\r\n")  # a trailing CR/LF is stripped, never a traceback
    nodes = [{"name": f"VerneMQ{i}@127.0.0.1", "host": "127.0.0.1", "http": s.url, **extra_node}
             for i, s in enumerate(servers.values())]
    p = tmp_path / "targets.yaml"
    p.write_text(yaml.safe_dump({"cluster": {"api_key_env": "VMQ_HOSTILE_KEY"}, "nodes": nodes}))
    return str(p)


def _run(argv, capsys, tmp_path):
    t0 = time.monotonic()
    code = main([*argv, "--report-json", str(tmp_path / "r.json"), "--format", "json"])
    took = time.monotonic() - t0
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "internal error" not in err, err
    assert KEY not in out + err + (tmp_path / "r.json").read_text()
    return code, json.loads((tmp_path / "r.json").read_text()), took


@pytest.mark.parametrize("key_header", [False, True])
def test_clients_live_against_hostile_nodes(tmp_path, capsys, monkeypatch, servers, key_header):
    argv = ["clients", "--targets", _targets(tmp_path, servers, monkeypatch), "--samples", "1", "--timeout", "1"]
    code, doc, took = _run(argv + (["--key-header"] if key_header else []), capsys, tmp_path)
    assert code in (1, 2) and took < 60
    text = json.dumps(doc)
    for i, mode in enumerate(HTTP_MODES):
        assert f"VerneMQ{i}@127.0.0.1" in text
        assert REASONS[mode] in text, (mode, text[:2000])
    unknown = [r for r in doc["results"] if r["status"] == "unknown"]
    assert unknown, "the nodes that answered nothing usable are unknown, with the reason"
    assert servers["redirect"].leaked_keys == [] and servers["redirect"].target.requests == []
    assert any("x-api-key" in h.lower() or "authorization" in h.lower() for h in servers["redirect"].requests), \
        "the key did go to the URL given (so not sending it to the redirect target means something)"


def test_canary_against_an_endless_stream_and_a_silent_ws_port(tmp_path, capsys):
    with HostileServer("stream") as stream, HostileServer("silent") as silent:
        entries = [parse_entry(f"stream=ws://127.0.0.1:{stream.port}/mqtt"),
                   parse_entry(f"silent=ws://127.0.0.1:{silent.port}/mqtt")]
        t0 = time.monotonic()
        results = run_canaries(entries, CanaryOptions(timeout=1.5))
        took = time.monotonic() - t0
        assert took < 10, "the pool is not held by a handshake that never ends"
        by = {r.entry: r for r in results}
        assert "past 65536 bytes" in by["stream"].error or "did not end within" in by["stream"].error, by["stream"]
        assert "accepted the TCP connection" in by["silent"].error and "no WebSocket/MQTT answer" in \
            by["silent"].error and "no TCP answer" not in by["silent"].error, by["silent"]
        # and through the command: --canary takes the nodes' ws: entries (their HTTP is silent too)
        nodes = [{"name": f"VerneMQ{i}@127.0.0.1", "host": "127.0.0.1", "http": silent.url,
                  "ws": f"ws://127.0.0.1:{srv.port}/mqtt"} for i, srv in enumerate((stream, silent))]
        t = tmp_path / "targets.yaml"
        t.write_text(yaml.safe_dump({"nodes": nodes}))
        code, doc, took = _run(["clients", "--targets", str(t), "--canary", "--samples", "1", "--timeout", "1.5"],
                               capsys, tmp_path)
    assert code in (1, 2) and took < 40
    text = json.dumps(doc)
    assert "accepted the TCP connection" in text and "no WebSocket/MQTT answer" in text


def test_replay_with_deeply_nested_answers_keeps_going(tmp_path, capsys, vmq_fixtures):
    """--replay: 100k nested `[` in one node's captured answers makes that node's facts unknown, not a crash."""
    import shutil

    from tests.hostile import NESTED

    phase = tmp_path / "02_steady_clients"
    shutil.copytree(vmq_fixtures / "02_steady_clients", phase)
    for name in ("node1_status.json", "node1_api_v1_cluster_show.json"):
        (phase / name).write_bytes(NESTED)
    for name in ("node1_api_v1_session_show_fields.json", "node1_api_v1_session_show.json"):
        (phase / name).write_bytes(b'{"type": "table", "table": [' + NESTED)  # recursion inside a row
    (tmp_path / "r.json").touch()
    code, doc, _took = _run(["clients", "--replay", str(phase)], capsys, tmp_path)
    assert code in (0, 1)
    text = json.dumps(doc)
    assert "nested too deeply" in text and doc["results"]


@pytest.mark.parametrize("scheme", ["ssl", "wss"])
def test_canary_against_a_trickled_tls_record(scheme):
    """A TLS server sending its first record one byte per second: the handshake is cut at the deadline."""
    with HostileServer("tls-trickle") as srv:
        t0 = time.monotonic()
        [r] = run_canaries([parse_entry(f"{scheme}://127.0.0.1:{srv.port}/mqtt")],
                           CanaryOptions(timeout=1.5, insecure=True))
        took = time.monotonic() - t0
    assert took < 8 and "TLS handshake did not finish within 1.5s" in (r.error or ""), r
