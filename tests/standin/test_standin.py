"""The stand-in answers in the byte shapes of the captured VerneMQ 2.1.2 responses, from real broker state."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import paho.mqtt.client as mqtt
import pytest

from tests.standin.lab import StandinLab, json_shape, wait_for
from tests.standin.mqtt import MqttStream, WsStream, parse_connect
from validators.vernemq.parse import parse_metrics

PHASE02 = "02_steady_clients"


@pytest.fixture(scope="module")
def lab():
    with StandinLab(nodes=2) as lab:
        lab.wait_converged()
        yield lab


def _get(url, key=None, header=False):
    req = urllib.request.Request(url)
    if key and header:
        req.add_header("x-api-key", key)
    elif key:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{key}:".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


class _Clients:
    """Real paho clients held open for a test."""

    def __init__(self):
        self.clients = []

    def connect(self, url_host, port, cid, clean=True, transport="tcp"):
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, clean_session=clean,
                        protocol=mqtt.MQTTv311, transport=transport)
        if transport == "websockets":
            c.ws_set_options(path="/mqtt")
        c.connect(url_host, port, keepalive=30)
        c.loop_start()
        wait_for(c.is_connected, f"{cid} connected")
        self.clients.append(c)
        return c

    def close(self):
        for c in self.clients:
            c.disconnect()
            c.loop_stop()


def test_status_json_shape_matches_the_capture(lab, vmq_fixtures):
    code, headers, body = _get(lab.nodes[0].http_url + "/status.json")
    assert code == 200 and headers["content-type"] == "application/json"
    mine = json.loads(body)
    real = json.loads((vmq_fixtures / PHASE02 / "node1_status.json").read_bytes())
    assert [n for n in mine[0]] == [lab.nodes[0].name, lab.nodes[1].name], "answering node first, then peers"
    assert json_shape(next(iter(mine[0].values()))) == json_shape(next(iter(real[0].values())))
    assert b" " not in body, "compact JSON like cowboy/jsx"


def test_session_show_shapes_and_auth(lab, vmq_fixtures):
    n1 = lab.nodes[0]
    held = _Clients()
    try:
        held.connect(n1.addr, n1.mqtt_port, "shape-online", clean=False)
        off = held.connect(n1.addr, n1.mqtt_port, "shape-offline", clean=False)
        off.disconnect()
        off.loop_stop()
        held.clients.remove(off)
        wait_for(lambda: json.loads(_get(n1.http_url + "/api/v1/session/show?--is_online=false", lab.api_key)[2])
              ["table"], "the offline session")
        for query, fixture in (("", "node1_api_v1_session_show.json"),
                               ("?--client_id&--node&--is_online&--is_offline&--clean_session&--statename"
                                "&--offline_messages&--online_messages&--num_sessions&--protocol&--peer_host"
                                "&--peer_port", "node1_api_v1_session_show_fields.json")):
            code, _, body = _get(n1.http_url + "/api/v1/session/show" + query, lab.api_key)
            mine = json.loads(body)
            real = json.loads((vmq_fixtures / PHASE02 / fixture).read_bytes())
            assert list(mine) == list(real) == ["table", "type"]
            real_rows = {r["is_online"]: r for r in real["table"]}
            my_rows = {r["is_online"]: r for r in mine["table"]}
            assert set(my_rows) == {True, False}
            for online in (True, False):
                assert json_shape(my_rows[online]) == json_shape(real_rows[online]), (query, online)
        # filters and the per-node limit
        code, _, body = _get(n1.http_url + "/api/v1/session/show?--client_id=shape-offline&--is_online", lab.api_key)
        assert json.loads(body) == {"table": [{"is_online": False}], "type": "table"}
        code, _, body = _get(n1.http_url + "/api/v1/session/show?--limit=1", lab.api_key)
        assert len(json.loads(body)["table"]) == 1
        # the key as x-api-key works too; no key: 401, empty body, the realm header
        assert _get(n1.http_url + "/api/v1/session/show", lab.api_key, header=True)[0] == 200
        code, headers, body = _get(n1.http_url + "/api/v1/cluster/show")
        real_headers = (vmq_fixtures / PHASE02 / "node1_api_v1_cluster_show_NOKEY.headers.txt").read_text()
        assert code == 401 and body == b"" and headers["content-length"] == "0"
        assert f"www-authenticate: {headers['www-authenticate']}" in real_headers
        assert _get(n1.http_url + "/api/v1/cluster/show", "wrong-key")[0] == 401
    finally:
        held.close()


def test_cluster_listener_health_and_metrics_shapes(lab, vmq_fixtures):
    n1 = lab.nodes[0]
    for path, fixture in (("/api/v1/cluster/show", "node1_api_v1_cluster_show.json"),
                          ("/api/v1/listener/show", "node1_api_v1_listener_show.json")):
        mine = json.loads(_get(n1.http_url + path, lab.api_key)[2])
        real = json.loads((vmq_fixtures / PHASE02 / fixture).read_bytes())
        assert json_shape(mine) == json_shape(real), path
    cluster = json.loads(_get(n1.http_url + "/api/v1/cluster/show", lab.api_key)[2])
    assert cluster["table"] == [{"Node": n.name, "Running": True} for n in lab.nodes]
    for path in ("/health", "/health/ping", "/health/listeners", "/health/listeners_full_cluster"):
        code, _, body = _get(n1.http_url + path)
        assert (code, body) == (200, (vmq_fixtures / PHASE02 / "node1_health.json").read_bytes()), path
    text = _get(n1.http_url + "/metrics")[2].decode()
    mine, real = parse_metrics(text), parse_metrics((vmq_fixtures / PHASE02 / "node1_metrics.prom").read_text())
    assert set(mine.samples) <= set(real.samples), set(mine.samples) - set(real.samples)
    for name in mine.samples:
        assert mine.types.get(name) == real.types.get(name), name
        assert {tuple(lbl) for lbl, _ in mine.samples[name]} <= {tuple(lbl) for lbl, _ in real.samples[name]}, name
    help_lines = {line for line in text.splitlines() if line.startswith("# HELP")}
    real_help = {line for line in (vmq_fixtures / PHASE02 / "node1_metrics.prom").read_text().splitlines()
                 if line.startswith("# HELP")}
    assert help_lines <= real_help


def test_bare_sockets_reproduce_online_5_offline_minus_5():
    with StandinLab(nodes=2) as lab:
        lab.wait_converged()
        _bare_sockets(lab)


def _bare_sockets(lab):
    n1, n2 = lab.nodes
    socks = lab.bare_sockets(0, "mqtt", 5) + lab.bare_sockets(1, "ws", 3)
    try:
        def numbers():
            doc = json.loads(_get(n1.http_url + "/status.json")[2])[0]
            got = {n: (doc[n]["num_online"], doc[n]["num_offline"]) for n in doc}
            return got if got == {n1.name: (5, -5), n2.name: (3, -3)} else None
        wait_for(numbers, "5/-5 and 3/-3")
        m2 = parse_metrics(_get(n2.http_url + "/metrics")[2])
        # like VerneMQ: WS sockets count as connections but not in socket_open until upgraded
        assert m2.total("vernemq_active_mqttws_connections") == 3 and m2.total("vernemq_socket_open") == 0
        m1 = parse_metrics(_get(n1.http_url + "/metrics")[2])
        assert m1.total("vernemq_active_mqtt_connections") == 5 and m1.total("vernemq_socket_open") >= 5
    finally:
        for s in socks:
            s.close()
    wait_for(lambda: json.loads(_get(n1.http_url + "/status.json")[2])[0][n1.name]["num_online"] == 0, "sockets closed")


def test_persistent_session_goes_offline_and_moves_between_nodes(lab):
    n1, n2 = lab.nodes
    held = _Clients()
    try:
        c = held.connect(n1.addr, n1.mqtt_port, "mover", clean=False)

        def row():
            rows = json.loads(_get(n1.http_url + "/api/v1/session/show?--client_id=mover&--node&--is_online",
                                   lab.api_key)[2])["table"]
            return rows
        assert wait_for(lambda: row() == [{"is_online": True, "node": n1.name}] and row(), "online on node1")
        c.disconnect()
        c.loop_stop()
        held.clients.remove(c)
        wait_for(lambda: row() == [{"is_online": False, "node": n1.name}], "offline on node1")
        held.connect(n2.addr, n2.ws_port, "mover", clean=False, transport="websockets")
        wait_for(lambda: row() == [{"is_online": True, "node": n2.name}], "taken over by node2 (over WebSocket)")
    finally:
        held.close()


def test_passive_parsers():
    connect = bytes([0x10, 0]) + b"\x00\x04MQTT\x04\xc0\x00\x1e\x00\x03abc\x00\x01u\x00\x01p"
    connect = bytes([0x10, len(connect) - 2]) + connect[2:]
    s = MqttStream()
    pkts = s.feed(connect[:5]) + s.feed(connect[5:] + bytes([0x30, 3, 0, 1, 0x41]) + bytes([0xE0, 0]))
    assert [p for p, _ in pkts] == [1, 3, 14]
    c = parse_connect(pkts[0][1])
    assert (c.client_id, c.clean_session, c.protocol, c.username) == ("abc", False, 4, "u")
    ws = WsStream()
    mask = b"\x01\x02\x03\x04"
    frame = bytes([0x82, 0x80 | 4]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(b"\xe0\x00\xe0\x00"))
    head, payload = ws.feed(b"GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n" + frame[:3])
    assert head.startswith(b"GET") and payload == b""
    assert ws.feed(frame[3:]) == (None, b"\xe0\x00\xe0\x00")
