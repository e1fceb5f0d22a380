"""EPMD and handshake encoders/decoders: real bytes, round trips, and fuzzing (never a stray exception)."""

from __future__ import annotations

import hashlib
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from validators.erldist import wire
from validators.erldist.wire import ProtocolError

import pytest


def test_names_answer_built_from_the_captured_epmd_listing(vmq_fixtures):
    text = (vmq_fixtures / "00_fresh_cluster_no_clients" / "epmd_names.txt").read_text()
    body = "".join(line + "\n" for line in text.splitlines()[1:])  # `epmd -names` prints a header first
    port, names = wire.parse_names(struct.pack(">I", 4370) + body.encode())
    assert port == 4370
    assert names == [("VerneMQ2", 9115), ("VerneMQ1", 9110)]


def test_requests_have_the_protocol_bytes():
    assert wire.names_request() == b"\x00\x01n"
    assert wire.port_please2_request("VerneMQ") == b"\x00\x08zVerneMQ"
    frame = wire.send_name("probe@10.0.0.1", flags=wire.PROBE_FLAGS, creation=7)
    assert frame[:2] == struct.pack(">H", len(frame) - 2) and frame[2:3] == b"N"
    flags, creation, nlen = struct.unpack(">QIH", frame[3:17])
    assert flags & wire.DFLAG_HANDSHAKE_23 and not flags & wire.DFLAG_PUBLISHED  # version 6, hidden
    assert (creation, nlen, frame[17:]) == (7, 14, b"probe@10.0.0.1")


def test_port2_answer_found_and_not_found():
    name = b"VerneMQ"
    ok = bytes([119, 0]) + struct.pack(">HBBHHH", 9100, 77, 0, 6, 5, len(name)) + name + b"\x00\x00"
    info = wire.parse_port2(ok)
    assert (info.port, info.node_type, info.highest, info.lowest, info.name) == (9100, 77, 6, 5, "VerneMQ")
    assert wire.parse_port2(bytes([119, 1])) is None
    with pytest.raises(ProtocolError, match="tag"):
        wire.parse_port2(bytes([120, 0]))
    with pytest.raises(ProtocolError, match="NodeName"):
        wire.parse_port2(ok[:14])


def test_challenge_new_and_old_format_and_digest():
    name = b"VerneMQ@10.0.0.2"
    new = b"N" + struct.pack(">QIIH", 0x1_0000_0004, 123456, 9, len(name)) + name
    ch = wire.parse_challenge(new)
    assert (ch.challenge, ch.creation, ch.name, ch.version) == (123456, 9, "VerneMQ@10.0.0.2", 6)
    old = b"n" + struct.pack(">HII", 5, 4, 654321) + name
    assert wire.parse_challenge(old).challenge == 654321
    assert wire.digest("secretcookie", 123456) == hashlib.md5(b"secretcookie123456").digest()
    reply = wire.challenge_reply(42, 123456, "secretcookie")
    assert reply == struct.pack(">H", 21) + b"r" + struct.pack(">I", 42) + hashlib.md5(b"secretcookie123456").digest()
    assert wire.parse_challenge_ack(b"a" + bytes(16)) == bytes(16)


def test_bad_status_and_names_lines_name_the_field():
    assert wire.parse_status(b"sok") == "ok"
    assert wire.parse_status(b"snot_allowed") == "not_allowed"
    with pytest.raises(ProtocolError) as e:
        wire.parse_status(b"sweird")
    assert e.value.field == "Status"
    with pytest.raises(ProtocolError) as e:
        wire.parse_names(b"\x00\x00\x11\x11name X at port notaport\n")
    assert e.value.field == "NodeInfo line 1"


PARSERS = [wire.parse_names, wire.parse_port2, wire.parse_status, wire.parse_challenge, wire.parse_challenge_ack]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PARSERS), st.binary(max_size=64))
def test_parsers_fuzzed_raise_only_protocol_error(parser, data):
    try:
        parser(data)
    except ProtocolError as exc:
        assert exc.what and exc.field


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,20}", fullmatch=True),
                          st.integers(1, 65535)), max_size=8), st.integers(0, 2**32 - 1))
def test_names_round_trip(entries, epmd_port):
    body = "".join(f"name {n} at port {p}\n" for n, p in entries).encode()
    assert wire.parse_names(struct.pack(">I", epmd_port) + body) == (epmd_port, entries)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 65535), st.sampled_from([72, 77]), st.integers(0, 65535), st.integers(0, 65535),
       st.text(min_size=1, max_size=40).filter(lambda s: len(s.encode()) <= 255), st.binary(max_size=8))
def test_port2_round_trip(port, ntype, hi, lo, name, extra):
    raw = name.encode()
    data = bytes([119, 0]) + struct.pack(">HBBHHH", port, ntype, 0, hi, lo, len(raw)) + raw + \
        struct.pack(">H", len(extra)) + extra
    info = wire.parse_port2(data)
    assert (info.port, info.node_type, info.highest, info.lowest, info.name, info.extra) == (port, ntype, hi, lo,
                                                                                             name, extra)
