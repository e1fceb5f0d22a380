"""Parsers of VerneMQ 2.1.2 answers, on every captured fixture file and on broken input."""

from __future__ import annotations

import json
import math

import pytest

from validators.vernemq.http import session_show_path
from validators.vernemq.parse import (ParseError, parse_health, parse_listener_show, parse_metrics,
                                      parse_session_show, parse_status_json)
from validators.vernemq.sessions import reconcile_bytes, reconcile_stream


def _phases(vmq_fixtures):
    """Every captured moment: the phase folders, and the sub-folders of phases 09, 11, 12."""
    out = []
    for p in sorted(p for p in vmq_fixtures.iterdir() if p.is_dir()):
        subs = sorted(s for s in p.iterdir() if s.is_dir())
        out.extend(subs or [p])
    return out


V1, V2, V3 = "VerneMQ1@127.0.0.1", "VerneMQ2@127.0.0.2", "VerneMQ3@127.0.0.3"
# (online, offline) per node as the README of the captures states them
STATUS_NUMBERS = {
    "00": {V1: (0, 0), V2: (0, 0)}, "01": {V1: (5, -5), V2: (3, -3)}, "02": {V1: (3, 2), V2: (2, 2)},
    "03": {V1: (3, 2)}, "04": {V1: (3, 2)}, "05": {V1: (0, 3), V2: (0, 3)},
    "06": {V1: (4, 3), V2: (4, 3), V3: (4, 3)}, "07": {V1: (4, 3), V2: (4, 3)}, "08": {V1: (0, 5), V2: (0, 4)},
    "09/before": {V1: (0, 3), V2: (0, 3)}, "09/healed": {V1: (0, 3), V2: (0, 3)},
    # during the split each node lists only itself
    "09/during/node1": {V1: (0, 3)}, "09/during/node2": {V2: (0, 3)},
    "10": {V1: (0, 3), V2: (0, 3)},
    "11/t02s": {V1: (7, -4), V2: (0, 3)}, "11/t65s": {V1: (4, -1), V2: (0, 3)},
    "12": {V1: (0, 3), V2: (0, 3)},
}


def _expected_numbers(phase, f):
    key = phase.name[:2] if phase.name[:2].isdigit() else f"{phase.parent.name[:2]}/{phase.name}"
    for k in (f"{key}/{f.name.split('_')[0]}", key, key[:2]):
        if k in STATUS_NUMBERS:
            return STATUS_NUMBERS[k]
    raise AssertionError(f"no documented numbers for {phase}")


def test_every_status_json_parses_with_the_documented_numbers(vmq_fixtures):
    seen = 0
    for phase in _phases(vmq_fixtures):
        for f in phase.glob("node*_status.json"):
            doc = parse_status_json(json.loads(f.read_bytes()))
            got = {n: (s.num_online, s.num_offline) for n, s in doc.items()}
            assert got == _expected_numbers(phase, f), f
            first = next(iter(doc))
            assert f.name.startswith("node" + first[7]), "the answering node comes first"
            seen += 1
    assert seen == 35


def test_status_json_mystatus_and_listeners(vmq_fixtures):
    doc = parse_status_json(json.loads((vmq_fixtures / "03_node2_killed_t10s/node1_status.json").read_bytes()))
    (st,) = doc.values()
    assert st.mystatus == {"VerneMQ2@127.0.0.2": False, "VerneMQ1@127.0.0.1": True}
    assert [(lst.type, lst.port) for lst in st.listeners] == [("mqtt", 1883), ("mqttws", 8080), ("http", 8888),
                                                             ("vmq", 44053)]
    assert st.queues == 5 and st.version == "2.1.2"


@pytest.mark.parametrize("doc, field", [
    ({}, "(top level)"),
    ([], "(top level)"),
    ([{}], "[0]"),
    ([{"notanode": {}}], "[0] key"),
    ([{"A@h": {"num_online": "5", "num_offline": 0}}], "[0].A@h.num_online"),
    ([{"A@h": {"num_online": 5}}], "[0].A@h.num_offline"),
    ([{"A@h": {"num_online": 5, "num_offline": True}}], "[0].A@h.num_offline"),
    ([{"A@h": {"num_online": 5, "num_offline": 0, "mystatus": [{"B@h": "yes"}]}}], "[0].A@h.mystatus[0].B@h"),
    ([{"A@h": {"num_online": 5, "num_offline": 0, "listeners": [{"type": "mqtt"}]}}], "[0].A@h.listeners[0].status"),
])
def test_status_json_errors_name_the_field(doc, field):
    with pytest.raises(ParseError) as e:
        parse_status_json(doc)
    assert e.value.field.startswith(field) and e.value.what == "status.json"


def test_metrics_fixture_values(vmq_fixtures):
    m = parse_metrics((vmq_fixtures / "02_steady_clients/node1_metrics.prom").read_bytes())
    assert m.total("vernemq_socket_open") == 11
    assert m.total("vernemq_socket_close") == 8
    assert m.total("vernemq_active_mqtt_connections") == 2
    assert m.total("vernemq_active_mqttws_connections") == 1
    assert m.total("vernemq_queue_processes") == 5
    assert m.total("vernemq_mqtt_connack_sent", return_code="success") == 6
    assert m.total("vernemq_mqtt_connect_received") == 6
    assert m.types["vernemq_metadata_put_microseconds"] == "histogram"
    assert m.node_labels() == {"VerneMQ1@127.0.0.1"}
    assert m.total("vernemq_not_there") is None
    for phase in _phases(vmq_fixtures):
        for f in phase.glob("node*_metrics.prom"):
            assert parse_metrics(f.read_bytes()).total("vernemq_netsplit_detected") is not None, f


def test_metrics_special_values_escapes_and_timestamps():
    m = parse_metrics('a{l="x\\"y\\\\z\\n"} +Inf 123\nb NaN\nc -Inf\nd 1e3\n# HELP e text\n# TYPE e gauge\ne 2\n')
    assert m.samples["a"] == [({"l": 'x"y\\z\n'}, math.inf)]
    assert math.isnan(m.samples["b"][0][1]) and m.total("c") == -math.inf and m.total("d") == 1000
    assert m.types == {"e": "gauge"}


@pytest.mark.parametrize("text, needle", [
    ("vernemq_x{node=\"a\"} abc\n", "line 1 (vernemq_x): the value 'abc' is not a number"),
    ("vernemq_x{node=\"a} 1\n", "line 1 (vernemq_x): label node: the value is not closed"),
    ("vernemq_x{node=a} 1\n", 'line 1 (vernemq_x): expected =" after label node'),
    ("ok 1\n{bad} 2\n", "line 2: expected a metric name"),
    ("# TYPE x flavour\n", "line 1: unknown metric type 'flavour'"),
    ("x{a=\"1\",a=\"2\"} 1\n", "label a appears twice"),
    ("x 1 2 3\n", "too many fields"),
    ("x1\n", "line 1 (x1): expected a space and a value"),
    (b"\xff\xfe", "byte 0: the text is not UTF-8"),
])
def test_metrics_errors_name_the_line(text, needle):
    with pytest.raises(ParseError) as e:
        parse_metrics(text)
    assert needle in str(e.value)


def test_health_and_listener_show(vmq_fixtures):
    down = parse_health(json.loads((vmq_fixtures / "03_node2_killed_t10s/node1_health_listeners_full_cluster.json")
                                   .read_bytes()), 503)
    assert (down.ok, down.reasons, down.http_status) == (False, ("At least one node is offline",), 503)
    assert parse_health({"status": "OK"}).ok
    with pytest.raises(ParseError, match="status: expected \"OK\" or \"DOWN\""):
        parse_health({"status": "fine"})
    rows = parse_listener_show(json.loads((vmq_fixtures / "01_raw_sockets_no_sessions/node2_api_v1_listener_show.json")
                                          .read_bytes()))
    assert [(r.type, r.port, r.active_conns) for r in rows][:2] == [("mqtt", 1883, 0), ("mqttws", 8080, 3)]
    with pytest.raises(ParseError, match=r"table\[0\].port"):
        parse_listener_show({"type": "table", "table": [{"type": "mqtt", "status": "running", "address": "a",
                                                         "port": "x", "active_conns": 1, "all_conns": 1}]})


def _reference(doc):
    """The per-node counts computed the obvious way from a parsed document."""
    out = {}
    for row in doc["table"]:
        c = out.setdefault(row.get("node", "?"), [0, 0])
        c[0 if row["is_online"] else 1] += 1
    return out


def test_streaming_reconcile_matches_every_session_fixture_at_every_chunk_size(vmq_fixtures):
    files = [f for p in _phases(vmq_fixtures) for f in p.glob("node*_api_v1_session_show*.json")]
    assert len(files) > 40
    for f in files:
        data = f.read_bytes()
        want = _reference(json.loads(data))
        for chunk in (1, 3, 7, 64, 1 << 20):
            got = reconcile_bytes(data, chunk=chunk)
            assert {n: [c.online, c.offline] for n, c in got.by_node.items()} == want, (f, chunk)
            assert got.rows == len(json.loads(data)["table"])


def test_session_fixture_fields_and_filtered_rows(vmq_fixtures):
    rows = parse_session_show(json.loads((vmq_fixtures / "02_steady_clients/node1_api_v1_session_show_fields.json")
                                         .read_bytes()))
    assert sum(r.is_online for r in rows) == 5 and {r.node for r in rows} == {"VerneMQ1@127.0.0.1",
                                                                             "VerneMQ2@127.0.0.2"}
    assert sum(r.offline_messages for r in rows if not r.is_online) == 12
    # a --client_id=X filter leaves the column out of the rows: the parser takes it from the filter
    filtered = parse_session_show({"table": [{"is_online": True, "node": "A@h"}], "type": "table"}, client_id="c1")
    assert filtered[0].client_id == "c1"


def test_duplicates_and_limit_truncation():
    doc = {"table": [{"client_id": "a", "is_online": True, "node": "N1@h"},
                     {"client_id": "a", "is_online": True, "node": "N2@h"},
                     {"client_id": "b", "is_online": False, "node": "N2@h"},
                     {"client_id": "b", "is_online": True, "node": "N1@h"}], "type": "table"}
    s = reconcile_bytes(json.dumps(doc, indent=2).encode(), limit=2, chunk=5)
    assert s.duplicates == {"a": ["N1@h", "N2@h"]}
    assert s.truncated_nodes() == ["N1@h", "N2@h"]
    assert reconcile_bytes(json.dumps(doc).encode(), limit=3).truncated_nodes() == []


@pytest.mark.parametrize("data, needle", [
    (b'{"table":[{"client_id":"a","is_online":true}', "table[1]: expected ',' or ']'"),
    (b'{"table":[{"client_id":"a","is_online":"yes"}],"type":"table"}', "table[0].is_online: expected true/false"),
    (b'{"table":[{"is_online":true}],"type":"table"}', "ask for the column with --client_id"),
    (b'{"table":[{"client_id":"a","is_online":true,"node":null}],"type":"table"}', "table[0].node"),
    (b'{"table":[1],"type":"table"}', "table[0]: expected an object"),
    (b'{"table":[],"type":"text"}', 'expected {"type": "table"'),
    (b'{"text":"x","type":"text"}', 'expected {"type": "table"'),
    (b'[]', "(top level): expected '{'"),
    (b'', "(top level): expected '{'"),
    (b'{"table":[]} trailing', "unexpected data after the document"),
    (b'{"table":[{"client_id":"\xff"}]}', "not UTF-8"),
    (b'{"table":[{"client_id":"a","is_online":tru', "invalid JSON"),
])
def test_streaming_errors_name_the_row_and_field(data, needle):
    for chunk in (1, 4, 1 << 20):
        with pytest.raises(ParseError) as e:
            reconcile_bytes(data, chunk=chunk)
        assert needle in str(e.value), (chunk, str(e.value))


def test_reconcile_stream_reads_lazily():
    """The stream is consumed chunk by chunk: an error in the first row stops before later chunks are read."""
    pulled = []

    def chunks():
        for c in (b'{"table":[{"client_id":1,', b'"is_online":true}', b"," * 10):
            pulled.append(c)
            yield c
        raise AssertionError("read past the error")

    with pytest.raises(ParseError, match=r"table\[0\].client_id"):
        reconcile_stream(chunks())
    assert len(pulled) == 2


def test_session_show_path_uses_vmq_admin_flags():
    assert session_show_path(("client_id", "node"), limit=5) == "/api/v1/session/show?--client_id&--node&--limit=5"
    assert session_show_path(("client_id", "is_online"), filters={"client_id": "a b/c"}) == \
        "/api/v1/session/show?--client_id=a%20b%2Fc&--is_online"
