"""`vmq-validate clients` live against the stand-in cluster on loopback (real Mosquitto behind it)."""

from __future__ import annotations

import json
import time
import urllib.request

import paho.mqtt.client as mqtt
import pytest

from tests.standin.lab import StandinLab
from validators.cli import main
from validators.collect.clients import node_clients, sample_cluster
from validators.collect.targets import load_targets
from validators.core.model import Facts, Status
from validators.core.registry import by_category
from validators.core.runner import run_checks


def _wait(pred, what, timeout=8.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _status(node):
    with urllib.request.urlopen(node.http_url + "/status.json", timeout=5) as r:
        return json.loads(r.read())[0]


def _run_cli(args, tmp_path, capsys):
    report = tmp_path / "report.json"
    code = main(["clients", *args, "--report-json", str(report), "--format", "json"])
    out = capsys.readouterr()
    return code, json.loads(report.read_text()), out.out + out.err + report.read_text()


def _results(doc, check):
    return {r["subject"]: r for r in doc["results"] if r["check"] == check}


def test_bare_sockets_give_the_ghost_socket_finding_and_the_key_stays_secret(tmp_path, capsys):
    with StandinLab(nodes=2) as lab:
        lab.wait_converged()
        n1, n2 = lab.nodes
        targets = lab.write_targets(tmp_path / "targets.yaml")
        code, doc, text = _run_cli(["--targets", str(targets), "--samples", "1"], tmp_path, capsys)
        assert code == 0 and doc["summary"]["failed"] is False
        socks = lab.bare_sockets(0, "mqtt", 5) + lab.bare_sockets(1, "ws", 3)
        try:
            _wait(lambda: _status(n1)[n1.name]["num_online"] == 5 and _status(n2)[n2.name]["num_online"] == 3,
                  "the sockets to be counted")
            code, doc, text = _run_cli(["--targets", str(targets), "--samples", "1"], tmp_path, capsys)
        finally:
            for s in socks:
                s.close()
        assert code == 1
        ghosts = _results(doc, "CLIENTS-001")
        e1, e2 = ghosts[n1.name]["evidence"], ghosts[n2.name]["evidence"]
        assert ghosts[n1.name]["status"] == ghosts[n2.name]["status"] == "fail"
        assert (e1["num_online"], e1["num_offline"], e1["online_sessions"], e1["ghost_sockets"]) == (5, -5, 0, 5)
        assert (e2["num_online"], e2["num_offline"], e2["online_sessions"], e2["ghost_sockets"]) == (3, -3, 0, 3)
        assert e2["likely_causes"][0]["cause"].startswith("idle HTTP connections on the WebSocket port")
        assert e1["likely_causes"][0]["cause"].startswith("load-balancer TCP probes")
        assert lab.api_key not in text


def test_without_the_key_session_checks_are_unknown_with_the_reason(tmp_path, capsys):
    with StandinLab(nodes=1) as lab:
        raw = lab.targets()
        raw["cluster"]["api_key_file"] = str(tmp_path / "wrong-key")
        (tmp_path / "wrong-key").write_text("not-the-right-key")
        import yaml
        (tmp_path / "t.yaml").write_text(yaml.safe_dump(raw))
        code, doc, text = _run_cli(["--targets", str(tmp_path / "t.yaml"), "--samples", "1"], tmp_path, capsys)
        r = _results(doc, "CLIENTS-002")[lab.nodes[0].name]
        assert r["status"] == "unknown" and "401 Unauthorized" in r["message"]
        assert "not-the-right-key" not in text


def _persistent_client(node, cid, online=True):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, clean_session=False, protocol=mqtt.MQTTv311)
    c.connect(node.addr, node.mqtt_port, keepalive=30)
    c.loop_start()
    _wait(c.is_connected, f"{cid} connected")
    if not online:
        c.disconnect()
        c.loop_stop()
    return c


def test_killed_node_is_missing_with_its_sessions_and_the_netsplit_counted(tmp_path):
    with StandinLab(nodes=2) as lab:
        lab.wait_converged()
        n1, n2 = lab.nodes
        spec = load_targets(str(lab.write_targets(tmp_path / "t.yaml")), need_cookie=False)
        clients = node_clients(spec, timeout=3)
        held = [_persistent_client(n2, "k-on-1"), _persistent_client(n2, "k-on-2"),
                _persistent_client(n2, "k-off", online=False)]
        try:
            _wait(lambda: _status(n1)[n2.name]["num_offline"] == 1, "node2's sessions")
            before = sample_cluster(clients, "before the kill", True)
            lab.kill(1)
            _wait(lambda: _status(n1)[n1.name]["mystatus"][0][n2.name] is False, "node1 to notice node2 is gone")
            after = sample_cluster(clients, "after the kill", True)
        finally:
            for c in held:
                c.loop_stop()
        facts = Facts({"clients.samples": [before, after], "clients.expected": [n.name for n in spec.nodes]})
        report = run_checks("clients", by_category("clients"), facts)
        res = {(r.check, r.subject): r for r in report.results}
        missing = res[("CLIENTS-003", n2.name)]
        assert missing.status is Status.FAIL
        assert missing.evidence["sessions_on_node"]["before the kill"] == {"online": 2, "offline": 1}
        assert missing.evidence["missing_from_status_of"] == [n1.name]
        assert missing.evidence["running_false_in"] == [n1.name]
        assert "cannot connect" in missing.evidence["http"]
        split = res[("CLIENTS-006", n1.name)]
        assert split.status is Status.FAIL and split.evidence["detected_rise_during_run"] == 1
        health = res[("CLIENTS-007", n1.name)]
        assert health.status is Status.FAIL and health.evidence["listeners_full_cluster_http"] == 503
        assert res[("CLIENTS-001", n1.name)].status is Status.PASS


def test_sockets_that_never_connect_rank_the_connect_timeout_first(tmp_path):
    with StandinLab(nodes=1, connect_timeout=2.0) as lab:
        n1 = lab.nodes[0]
        spec = load_targets(str(lab.write_targets(tmp_path / "t.yaml")), need_cookie=False)
        clients = node_clients(spec, timeout=3)
        first = lab.bare_sockets(0, "mqtt", 3)
        s1 = sample_cluster(clients, "s1", True)
        time.sleep(1.0)  # the second batch times out about 1 s after the first: room for the second sample
        second = lab.bare_sockets(0, "mqtt", 2)

        def timed_out():
            with urllib.request.urlopen(n1.http_url + "/metrics", timeout=5) as r:
                return b'vernemq_socket_close_timeout{node="' + n1.name.encode() + b'"} 3' in r.read()
        _wait(timed_out, "the first three sockets to time out")
        s2 = sample_cluster(clients, "s2", True)
        for s in first + second:
            s.close()
        report = run_checks("clients", by_category("clients"), Facts({"clients.samples": [s1, s2]}))
        r = next(r for r in report.results if r.check == "CLIENTS-001")
        if r.evidence["num_online"] != 2:
            pytest.fail(f"the second batch was not open at the second sample: {dict(r.evidence)}")
        assert r.status is Status.FAIL and r.evidence["socket_close_timeout_rise"] == 3
        assert r.evidence["likely_causes"][0]["cause"] == "clients that open a socket but do not finish CONNECT"
