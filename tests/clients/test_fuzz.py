"""Hypothesis: malformed metrics text, status.json and session JSON give ParseError, never another exception."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from validators.vernemq.parse import ParseError, parse_metrics, parse_session_show, parse_status_json
from validators.vernemq.sessions import reconcile_bytes

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)


def _metrics_line():
    name = st.from_regex(r"[a-z_]{1,8}", fullmatch=True)
    label = st.tuples(st.from_regex(r"[a-z]{1,4}", fullmatch=True), st.text(max_size=6))
    value = st.sampled_from(["1", "0.5", "+Inf", "NaN", "-3e2", "x", "", "1 2", "1 2 3"])
    return st.one_of(
        st.builds(lambda n, ls, v: n + ("{" + ",".join(f'{k}="{val}"' for k, val in ls) + "}" if ls else "") + " " + v,
                  name, st.lists(label, max_size=3), value),
        st.text(max_size=30),
        st.sampled_from(["# HELP x y", "# TYPE x counter", "# TYPE x bogus", "#", "# TYPE", "{}", "x{a=\"1\""]))


@SETTINGS
@given(st.lists(_metrics_line(), max_size=12))
def test_metrics_never_crash(lines):
    text = "\n".join(lines)
    try:
        m = parse_metrics(text)
    except ParseError as e:
        assert e.what == "metrics" and e.field.startswith("line") or e.field.startswith("byte")
    else:
        assert all(isinstance(v, float) for rows in m.samples.values() for _, v in rows)


@SETTINGS
@given(st.binary(max_size=200))
def test_metrics_bytes_never_crash(data):
    try:
        parse_metrics(data)
    except ParseError:
        pass


def _status_entry():
    return st.fixed_dictionaries(
        {}, optional={"num_online": json_values | st.integers(), "num_offline": json_values | st.integers(),
                      "mystatus": json_values | st.lists(st.dictionaries(st.sampled_from(["A@h", "B@h", "x"]),
                                                                         json_values | st.booleans(), max_size=2)),
                      "listeners": json_values, "version": json_values, "msg_in": json_values})


@SETTINGS
@given(st.one_of(json_values, st.lists(st.dictionaries(st.sampled_from(["A@h", "B@h", "bad"]), _status_entry(),
                                                       max_size=3), max_size=2)))
def test_status_json_never_crash(doc):
    try:
        out = parse_status_json(doc)
    except ParseError as e:
        assert e.what == "status.json" and e.field
    else:
        assert all(isinstance(s.num_online, int) and isinstance(s.num_offline, int) for s in out.values())


def _row():
    return st.fixed_dictionaries({}, optional={
        "client_id": json_values | st.text(max_size=6), "is_online": json_values | st.booleans(),
        "node": json_values | st.sampled_from(["A@h", "B@h"]), "offline_messages": json_values | st.integers(),
        "clean_session": json_values | st.booleans()})


@SETTINGS
@given(st.fixed_dictionaries({"table": st.lists(_row(), max_size=6) | json_values,
                              "type": st.sampled_from(["table", "text"]) | json_values}),
       st.integers(min_value=1, max_value=40))
def test_session_streaming_never_crashes_and_agrees_with_the_whole_document_parser(doc, chunk):
    data = json.dumps(doc).encode()
    try:
        whole = parse_session_show(doc)
    except ParseError as e:
        whole, whole_error = None, e
    try:
        summary = reconcile_bytes(data, chunk=chunk)
    except ParseError as e:
        assert e.what == "session/show"
        return
    if whole is None:
        # the stream validates only the columns it counts; the whole-document parser also checks the others
        assert whole_error.field.rsplit(".", 1)[-1] in ("clean_session", "peer_host", "peer_port"), whole_error
        return
    # both accepted it: they must agree on the counts
    assert summary.rows == len(whole)
    assert sum(c.online for c in summary.by_node.values()) == sum(r.is_online for r in whole)


@SETTINGS
@given(st.binary(max_size=300), st.integers(min_value=1, max_value=50))
def test_session_bytes_never_crash(data, chunk):
    try:
        reconcile_bytes(data, chunk=chunk)
    except ParseError:
        pass


@SETTINGS
@given(st.data())
def test_mutated_fixture_bytes_never_crash(vmq_fixtures_bytes, data):
    raw = data.draw(st.sampled_from(vmq_fixtures_bytes))
    pos = data.draw(st.integers(min_value=0, max_value=max(0, len(raw) - 1)))
    cut = data.draw(st.integers(min_value=0, max_value=8))
    junk = data.draw(st.binary(max_size=4))
    mutated = raw[:pos] + junk + raw[pos + cut:]
    try:
        reconcile_bytes(mutated, chunk=data.draw(st.integers(min_value=1, max_value=64)))
    except ParseError:
        pass
