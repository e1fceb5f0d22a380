"""Canaries (paho-mqtt) against a real Mosquitto: TCP and WebSocket, and the ways they fail."""

from __future__ import annotations

import json

import pytest

from tests.standin.lab import StandinLab, free_port
from validators.canary.heartbeat import parse_duration, run_heartbeat
from validators.canary.runner import CanaryOptions, parse_entry, run_canaries, run_canary
from validators.cli import main
from validators.commands.clients import session_observer
from validators.core.errors import InputError
from validators.core.model import Facts, Status
from validators.core.registry import get
from validators.core.runner import run_checks
from validators.vernemq.http import NodeHttp

OPTS = CanaryOptions(timeout=3.0)


@pytest.fixture(scope="module")
def broker():
    """Mosquitto with a password file and an ACL: `canary` may do anything, `reader` may only read."""
    acl = "user canary\ntopic readwrite #\nuser reader\ntopic read #\n"
    with StandinLab(nodes=1, mosquitto_users={"canary": "canary-pass-1", "reader": "reader-pass-1"}, acl=acl) as lab:
        yield lab


def _opts(user="canary", password="canary-pass-1", timeout=3.0):
    return CanaryOptions(timeout=timeout, username=user, password=password)


@pytest.mark.parametrize("kind", ["tcp", "ws"])
def test_canary_round_trip_tcp_and_websocket(broker, kind):
    r = run_canary(parse_entry(broker.broker_url(kind)), _opts())
    assert r.error is None and r.received and r.stage == "cleanup", r
    assert r.timings_ms["connect"] <= r.timings_ms["subscribe"] <= r.timings_ms["total"]


def test_wrong_port_is_refused_at_connect(broker):
    port = free_port(broker.broker_addr)
    r = run_canary(parse_entry(f"tcp://{broker.broker_addr}:{port}"), _opts())
    assert (r.stage, r.received) == ("", False) and "connection refused" in r.error


def test_websocket_on_the_tcp_port_fails_the_handshake(broker):
    r = run_canary(parse_entry(f"ws://{broker.broker_addr}:{broker.broker_ports[0]}/mqtt"), _opts())
    assert r.stage == "" and "WebSocket" in r.error


def test_refused_auth_stops_at_connack(broker):
    r = run_canary(parse_entry(broker.broker_url("tcp")), _opts(password="wrong-password"))
    assert r.stage == "connect" and "CONNACK refused" in r.error and not r.received


def test_message_never_delivered_when_publishing_is_denied(broker):
    # mosquitto acknowledges the QoS 1 publish of a user without write access and drops the message
    r = run_canary(parse_entry(broker.broker_url("tcp")), _opts("reader", "reader-pass-1", timeout=1.5))
    assert r.stage == "publish" and not r.received
    assert "never delivered" in r.error
    (res,) = run_checks("c", [get("CLIENTS-010")], Facts({"clients.canaries": [r]})).results
    assert res.status is Status.FAIL and "after stage 'publish'" in res.message


def test_canary_not_visible_in_session_show():
    """The canary reaches a broker, but the cluster's session/show does not know it (wrong backend)."""
    with StandinLab(nodes=1) as lab:
        node = lab.nodes[0]
        observe = session_observer({node.name: NodeHttp(node.http_url, api_key=lab.api_key)}, settle=0.5)
        through = run_canary(parse_entry(node.mqtt_url), OPTS, observe)
        bypass = run_canary(parse_entry("direct=" + lab.broker_url("tcp")), OPTS, observe)
    assert through.received and bypass.received
    res = {r.subject: r for r in run_checks("c", [get("CLIENTS-011")],
                                            Facts({"clients.canaries": [through, bypass]})).results}
    assert res[node.mqtt_url].status is Status.PASS
    assert res[node.mqtt_url].evidence["while_connected"]["online_on"] == [node.name]
    assert res["direct"].status is Status.FAIL and "online on 0 node(s)" in res["direct"].message


def test_many_canaries_at_once(broker):
    results = run_canaries([parse_entry(broker.broker_url("tcp"))] * 40 + [parse_entry(broker.broker_url("ws"))] * 10,
                           _opts(timeout=10))
    assert [r.completed for r in results] == [True] * 50
    assert len({r.client_id for r in results}) == 50


def test_heartbeat_reports_percentiles_and_drops(broker):
    good = parse_entry("good=" + broker.broker_url("tcp"))
    bad = parse_entry(f"bad=tcp://{broker.broker_addr}:{free_port(broker.broker_addr)}")
    runs = run_heartbeat([good, bad], duration=0.6, interval=0.2, opts=_opts())
    assert [len(r.results) for r in runs] == [3, 3]
    res = {r.subject: r for r in run_checks("c", [get("CLIENTS-012")], Facts({"clients.heartbeat": runs})).results}
    assert res["good"].status is Status.PASS and res["good"].evidence["p50_ms"] is not None
    assert res["bad"].status is Status.FAIL and res["bad"].evidence["drops"] == 3


def test_entry_and_duration_input_errors():
    for bad in ("http://x:1", "tcp://", "tcp://user:pw@host:1883", "tcp://h:99999"):
        with pytest.raises(InputError):
            parse_entry(bad)
    e = parse_entry("lb=wss://mqtt.example.com/mqtt")
    assert (e.name, e.port, e.tls, e.transport, e.path) == ("lb", 8443, True, "websockets", "/mqtt")
    assert parse_duration("5m", "x") == 300 and parse_duration("250ms", "x") == 0.25
    with pytest.raises(InputError):
        parse_duration("soon", "--heartbeat")


def test_cli_canary_and_heartbeat_through_the_stand_in(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CANARY_PW", "not-used-but-secret")
    with StandinLab(nodes=2) as lab:
        lab.wait_converged()
        targets = lab.write_targets(tmp_path / "t.yaml")
        report = tmp_path / "r.json"
        code = main(["clients", "--targets", str(targets), "--samples", "2", "--sample-interval", "0.2",
                     "--canary", "--entry", "broker=" + lab.broker_url("ws"), "--heartbeat", "0.4",
                     "--interval", "0.2", "--report-json", str(report), "--format", "json"])
        out = capsys.readouterr()
    doc = json.loads(report.read_text())
    by = {(r["check"], r["subject"]): r for r in doc["results"]}
    node_entries = [k for k in by if k[0] == "CLIENTS-010" and k[1] != "broker"]
    assert len(node_entries) == 4
    assert [by[k]["message"] for k in node_entries if by[k]["status"] != "pass"] == []
    assert [by[("CLIENTS-011", k[1])]["message"] for k in node_entries
            if by[("CLIENTS-011", k[1])]["status"] != "pass"] == []
    # straight to the broker: it works, but session/show never sees it
    assert by[("CLIENTS-010", "broker")]["status"] == "pass"
    assert by[("CLIENTS-011", "broker")]["status"] == "fail"
    assert by[("CLIENTS-012", "broker")]["evidence"]["attempts"] == 2
    assert code == 1 and lab.api_key not in out.out + out.err + report.read_text()


def test_tls_entry_verifies_the_certificate():
    with StandinLab(nodes=0, tls=True) as lab:
        entry = parse_entry("tls=" + lab.broker_url("ssl"))
        trusted = run_canary(entry, CanaryOptions(timeout=3, ca_file=str(lab.ca_file)))
        untrusted = run_canary(entry, CanaryOptions(timeout=3))
        insecure = run_canary(entry, CanaryOptions(timeout=3, insecure=True))
    assert trusted.completed and insecure.completed, (trusted, insecure)
    assert untrusted.stage == "" and "TLS handshake" in untrusted.error and "CERTIFICATE_VERIFY_FAILED" in \
        untrusted.error
