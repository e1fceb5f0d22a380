"""Pure encoders and decoders for EPMD requests and the distribution handshake (protocol version 6).

Every decoder raises :class:`ProtocolError` naming the message and field when the bytes are not
what the protocol allows; nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

# EPMD request/response tags
NAMES_REQ = 110            # 'n'
PORT_PLEASE2_REQ = 122     # 'z'
PORT2_RESP = 119           # 'w'

# Distribution flags (erts/doc "Distribution Flags")
DFLAG_PUBLISHED = 0x1
DFLAG_EXTENDED_REFERENCES = 0x4
DFLAG_DIST_MONITOR = 0x8
DFLAG_FUN_TAGS = 0x10
DFLAG_NEW_FUN_TAGS = 0x80
DFLAG_EXTENDED_PIDS_PORTS = 0x100
DFLAG_EXPORT_PTR_TAG = 0x200
DFLAG_BIT_BINARIES = 0x400
DFLAG_NEW_FLOATS = 0x800
DFLAG_UTF8_ATOMS = 0x10000
DFLAG_MAP_TAG = 0x20000
DFLAG_BIG_CREATION = 0x40000
DFLAG_HANDSHAKE_23 = 0x1000000
DFLAG_UNLINK_ID = 0x2000000
DFLAG_V4_NC = 1 << 34
DFLAG_MANDATORY_25_DIGEST = 1 << 36

#: what we announce: every flag a current (OTP 23-27) node requires, and not DFLAG_PUBLISHED (= hidden)
PROBE_FLAGS = (DFLAG_EXTENDED_REFERENCES | DFLAG_FUN_TAGS | DFLAG_NEW_FUN_TAGS | DFLAG_EXTENDED_PIDS_PORTS
               | DFLAG_EXPORT_PTR_TAG | DFLAG_BIT_BINARIES | DFLAG_NEW_FLOATS | DFLAG_UTF8_ATOMS | DFLAG_MAP_TAG
               | DFLAG_BIG_CREATION | DFLAG_HANDSHAKE_23 | DFLAG_UNLINK_ID | DFLAG_V4_NC
               | DFLAG_MANDATORY_25_DIGEST)

STATUSES = ("ok", "ok_simultaneous", "nok", "not_allowed", "alive")


class ProtocolError(ValueError):
    """Bytes that break the protocol: ``what`` (message), ``field``, ``problem``."""

    def __init__(self, what: str, field: str, problem: str):
        super().__init__(f"{what}: {field}: {problem}")
        self.what, self.field, self.problem = what, field, problem


# ---------------------------------------------------------------- EPMD
def epmd_request(payload: bytes) -> bytes:
    if len(payload) > 0xFFFF:
        raise ValueError("EPMD request too long")
    return struct.pack(">H", len(payload)) + payload


def names_request() -> bytes:
    return epmd_request(bytes([NAMES_REQ]))


def parse_names(data: bytes) -> tuple[int, list[tuple[str, int]]]:
    """NAMES_RESP: 4-byte EPMD port, then lines ``name NAME at port PORT``. -> (epmd_port, [(name, port)])."""
    what = "EPMD NAMES response"
    if len(data) < 4:
        raise ProtocolError(what, "EPMDPortNo", f"expected 4 bytes, got {len(data)}")
    (epmd_port,) = struct.unpack(">I", data[:4])
    try:
        text = data[4:].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(what, "NodeInfo", "is not UTF-8 text") from None
    out = []
    for i, line in enumerate(text.split("\n")):
        if not line:
            continue
        parts = line.split(" ")
        if len(parts) != 5 or parts[0] != "name" or parts[2] != "at" or parts[3] != "port" \
                or not parts[4].isascii() or not parts[4].isdigit():
            raise ProtocolError(what, f"NodeInfo line {i + 1}", f"expected 'name N at port P', got {line[:80]!r}")
        port = int(parts[4])
        if not 0 < port < 65536:
            raise ProtocolError(what, f"NodeInfo line {i + 1}", f"port {port} out of range")
        out.append((parts[1], port))
    return epmd_port, out


def port_please2_request(name: str) -> bytes:
    raw = name.encode("utf-8")
    if not raw or len(raw) > 255:
        raise ValueError("node name must be 1..255 bytes")
    return epmd_request(bytes([PORT_PLEASE2_REQ]) + raw)


@dataclass(frozen=True)
class PortInfo:
    port: int
    node_type: int      # 77 = normal Erlang node, 72 = hidden
    protocol: int       # 0 = TCP/IPv4
    highest: int
    lowest: int
    name: str
    extra: bytes = b""


def parse_port2(data: bytes) -> PortInfo | None:
    """PORT2_RESP -> PortInfo, or None when EPMD answers 'no such node' (result != 0)."""
    what = "EPMD PORT2_RESP"
    if len(data) < 2:
        raise ProtocolError(what, "header", f"expected at least 2 bytes, got {len(data)}")
    if data[0] != PORT2_RESP:
        raise ProtocolError(what, "tag", f"expected 119, got {data[0]}")
    if data[1] != 0:
        return None
    if len(data) < 12:
        raise ProtocolError(what, "body", f"expected at least 12 bytes, got {len(data)}")
    port, node_type, proto, hi, lo, nlen = struct.unpack(">HBBHHH", data[2:12])
    if len(data) < 12 + nlen + 2:
        raise ProtocolError(what, "NodeName", f"declared {nlen} bytes, only {len(data) - 12} follow")
    try:
        name = data[12:12 + nlen].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(what, "NodeName", "is not UTF-8") from None
    (elen,) = struct.unpack(">H", data[12 + nlen:14 + nlen])
    extra = data[14 + nlen:14 + nlen + elen]
    if len(extra) != elen:
        raise ProtocolError(what, "Extra", f"declared {elen} bytes, got {len(extra)}")
    if port == 0:
        raise ProtocolError(what, "PortNo", "is 0")
    return PortInfo(port, node_type, proto, hi, lo, name, bytes(extra))


# ---------------------------------------------------------------- handshake
def frame(payload: bytes) -> bytes:
    return struct.pack(">H", len(payload)) + payload


def send_name(name: str, flags: int = PROBE_FLAGS, creation: int = 0) -> bytes:
    """'N' send_name (version 6): Flags(8) Creation(4) NLen(2) Name, with its 2-byte length."""
    raw = name.encode("utf-8")
    return frame(b"N" + struct.pack(">QIH", flags, creation, len(raw)) + raw)


def parse_status(payload: bytes) -> str:
    what = "handshake recv_status"
    if not payload or payload[:1] != b"s":
        raise ProtocolError(what, "tag", f"expected 's', got {payload[:1]!r}")
    try:
        status = payload[1:].decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError(what, "Status", "is not ASCII") from None
    if status not in STATUSES and not status.startswith("named:"):
        raise ProtocolError(what, "Status", f"unknown status {status[:40]!r}")
    return status


@dataclass(frozen=True)
class Challenge:
    flags: int
    challenge: int
    creation: int
    name: str
    version: int   # 6 for 'N', 5 for the old 'n' format


def parse_challenge(payload: bytes) -> Challenge:
    what = "handshake recv_challenge"
    if not payload:
        raise ProtocolError(what, "tag", "empty message")
    tag = payload[:1]
    if tag == b"N":
        if len(payload) < 19:
            raise ProtocolError(what, "body", f"expected at least 19 bytes, got {len(payload)}")
        flags, ch, creation, nlen = struct.unpack(">QIIH", payload[1:19])
        raw = payload[19:]
        if len(raw) != nlen:
            raise ProtocolError(what, "Name", f"declared {nlen} bytes, got {len(raw)}")
        version = 6
    elif tag == b"n":
        if len(payload) < 11:
            raise ProtocolError(what, "body", f"expected at least 11 bytes, got {len(payload)}")
        version, flags, ch = struct.unpack(">HII", payload[1:11])
        creation, raw = 0, payload[11:]
    else:
        raise ProtocolError(what, "tag", f"expected 'N' or 'n', got {tag!r}")
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(what, "Name", "is not UTF-8") from None
    if "@" not in name:
        raise ProtocolError(what, "Name", f"{name[:60]!r} is not a node name")
    return Challenge(flags, ch, creation, name, version)


def digest(cookie: str, challenge: int) -> bytes:
    """MD5(cookie ++ decimal challenge), as in the handshake's challenge_reply and challenge_ack."""
    return hashlib.md5(cookie.encode("utf-8") + str(challenge & 0xFFFFFFFF).encode("ascii")).digest()


def challenge_reply(own_challenge: int, peer_challenge: int, cookie: str) -> bytes:
    return frame(b"r" + struct.pack(">I", own_challenge) + digest(cookie, peer_challenge))


def parse_challenge_ack(payload: bytes) -> bytes:
    what = "handshake recv_challenge_ack"
    if payload[:1] != b"a" or len(payload) != 17:
        raise ProtocolError(what, "message", f"expected 'a' + 16-byte digest, got {len(payload)} bytes")
    return payload[1:]
