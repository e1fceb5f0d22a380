"""Passive parsers for the byte streams the stand-in forwards: MQTT packets and WebSocket frames.

The stand-in never changes a byte; it only watches both directions of each connection to learn
what VerneMQ would know: was CONNECT sent (and with which client id, clean_session flag, protocol
level, user), what did the broker answer in CONNACK, was the WebSocket upgraded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

CONNECT, CONNACK, PUBLISH, SUBSCRIBE, DISCONNECT = 1, 2, 3, 8, 14
#: CONNACK return codes of MQTT 3.1.1 as VerneMQ labels them in mqtt_connack_sent
RETURN_CODES = {0: "success", 1: "unsupported_protocol_version", 2: "client_identifier_not_valid",
                3: "server_unavailable", 4: "bad_username_or_password", 5: "not_authorized"}
MAX_PACKET = 16 * 1024 * 1024


class ProtocolError(ValueError):
    pass


@dataclass
class Connect:
    client_id: str
    clean_session: bool
    protocol: int
    keepalive: int
    username: str | None


def _string(body: bytes, i: int) -> tuple[bytes, int]:
    if i + 2 > len(body):
        raise ProtocolError("truncated string length")
    n = struct.unpack_from("!H", body, i)[0]
    if i + 2 + n > len(body):
        raise ProtocolError("truncated string")
    return body[i + 2:i + 2 + n], i + 2 + n


def _varint(buf: bytes | bytearray, i: int) -> tuple[int | None, int]:
    """(value, next index) or (None, i) if incomplete."""
    value, mult = 0, 1
    for k in range(4):
        if i + k >= len(buf):
            return None, i
        b = buf[i + k]
        value += (b & 0x7F) * mult
        if not b & 0x80:
            return value, i + k + 1
        mult *= 128
    raise ProtocolError("remaining length longer than 4 bytes")


def parse_connect(body: bytes) -> Connect:
    name, i = _string(body, 0)
    if name not in (b"MQTT", b"MQIsdp"):
        raise ProtocolError(f"unknown protocol name {name!r}")
    if i + 4 > len(body):
        raise ProtocolError("truncated CONNECT header")
    level, flags = body[i], body[i + 1]
    keepalive = struct.unpack_from("!H", body, i + 2)[0]
    i += 4
    if level == 5:
        plen, i = _varint(body, i)
        if plen is None:
            raise ProtocolError("truncated properties")
        i += plen
    cid, i = _string(body, i)
    if flags & 0x04:  # will flag
        if level == 5:
            plen, i = _varint(body, i)
            if plen is None:
                raise ProtocolError("truncated will properties")
            i += plen
        _topic, i = _string(body, i)
        _payload, i = _string(body, i)
    user = None
    if flags & 0x80:
        u, i = _string(body, i)
        user = u.decode("utf-8", "replace")
    return Connect(client_id=cid.decode("utf-8", "replace"), clean_session=bool(flags & 0x02), protocol=level,
                   keepalive=keepalive, username=user)


def parse_subscribe(body: bytes, level: int) -> dict[str, int]:
    """SUBSCRIBE body -> {topic filter: requested QoS}."""
    i = 2  # packet identifier
    if level == 5:
        plen, i = _varint(body, i)
        if plen is None:
            raise ProtocolError("truncated properties")
        i += plen
    out = {}
    while i < len(body):
        topic, i = _string(body, i)
        if i >= len(body):
            raise ProtocolError("truncated subscription options")
        out[topic.decode("utf-8", "replace")] = body[i] & 0x03
        i += 1
    return out


class MqttStream:
    """Feed bytes of one direction; get (packet type, body) for the packets the stand-in cares about."""

    WANT = (CONNECT, CONNACK, PUBLISH, SUBSCRIBE, DISCONNECT)

    def __init__(self):
        self.buf = bytearray()
        self.skip = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        out = []
        if self.skip:
            n = min(self.skip, len(data))
            self.skip -= n
            data = data[n:]
        self.buf += data
        while len(self.buf) >= 2:
            ptype = self.buf[0] >> 4
            length, start = _varint(self.buf, 1)
            if length is None:
                break
            if length > MAX_PACKET:
                raise ProtocolError("packet larger than 16 MiB")
            end = start + length
            if ptype in (CONNECT, CONNACK, DISCONNECT, SUBSCRIBE):
                if len(self.buf) < end:
                    break
                out.append((ptype, bytes(self.buf[start:end])))
                del self.buf[:end]
            else:  # PUBLISH and the rest: only count, never hold large payloads
                out.append((ptype, b""))
                if len(self.buf) >= end:
                    del self.buf[:end]
                else:
                    self.skip = end - len(self.buf)
                    self.buf.clear()
        return out


class WsStream:
    """Feed bytes of one direction of a WebSocket connection: HTTP head first, then frames -> payload bytes."""

    def __init__(self):
        self.head: bytes | None = None
        self.buf = bytearray()

    def feed(self, data: bytes) -> tuple[bytes | None, bytes]:
        """(the HTTP head if it completed now, the WebSocket payload bytes decoded from frames)."""
        self.buf += data
        head = None
        if self.head is None:
            i = self.buf.find(b"\r\n\r\n")
            if i < 0:
                if len(self.buf) > 65536:
                    raise ProtocolError("HTTP head larger than 64 KiB")
                return None, b""
            head = self.head = bytes(self.buf[:i + 4])
            del self.buf[:i + 4]
        payload = bytearray()
        while len(self.buf) >= 2:
            b0, b1 = self.buf[0], self.buf[1]
            opcode, masked, n = b0 & 0x0F, b1 & 0x80, b1 & 0x7F
            i = 2
            if n == 126:
                if len(self.buf) < 4:
                    break
                n = struct.unpack_from("!H", self.buf, 2)[0]
                i = 4
            elif n == 127:
                if len(self.buf) < 10:
                    break
                n = struct.unpack_from("!Q", self.buf, 2)[0]
                i = 10
            if n > MAX_PACKET:
                raise ProtocolError("WebSocket frame larger than 16 MiB")
            mask = None
            if masked:
                if len(self.buf) < i + 4:
                    break
                mask = bytes(self.buf[i:i + 4])
                i += 4
            if len(self.buf) < i + n:
                break
            data = bytes(self.buf[i:i + n])
            del self.buf[:i + n]
            if mask:
                data = bytes(b ^ mask[k % 4] for k, b in enumerate(data))
            if opcode in (0, 2):
                payload += data
        return head, bytes(payload)
