"""The socket side of erldist against scripted loopback peers (no root): every handshake outcome,
EPMD error mapping, and bounded waits. The real-node outcomes are proven on the lab (test_lab.py)."""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from validators.erldist import epmd, wire
from validators.erldist.handshake import handshake
from validators.erldist.net import NetError

COOKIE = "loopback-cookie-42"


class Peer:
    """Accepts one connection and runs ``script(conn)``."""

    def __init__(self, script):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.t = threading.Thread(target=self._run, args=(script,), daemon=True)
        self.t.start()

    def _run(self, script):
        conn, _ = self.sock.accept()
        conn.settimeout(5)
        try:
            script(self, conn)
        except OSError:
            pass
        finally:
            conn.close()
            self.sock.close()

    def read_frame(self, conn):
        (n,) = struct.unpack(">H", _exact(conn, 2))
        data = _exact(conn, n)
        self.received += data
        return data


def _exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise OSError("closed")
        buf += chunk
    return buf


def challenge_frame(ch=4242):
    name = b"VerneMQ@127.0.0.1"
    return wire.frame(b"N" + struct.pack(">QIIH", wire.PROBE_FLAGS, ch, 1, len(name)) + name)


def node(status=b"sok", cookie=COOKIE, ack=True, stall_at=None, garbage_challenge=False):
    def script(peer, conn):
        peer.read_frame(conn)
        if stall_at == "status":
            threading.Event().wait(3)
            return
        conn.sendall(wire.frame(b"s" + status[1:]))
        if status not in (b"sok", b"sok_simultaneous"):
            return
        conn.sendall(wire.frame(b"Nxx") if garbage_challenge else challenge_frame())
        reply = peer.read_frame(conn)
        theirs = struct.unpack(">I", reply[1:5])[0]
        if reply[5:] != wire.digest(cookie, 4242) or not ack:
            return  # like a real node: close without an ack
        conn.sendall(wire.frame(b"a" + wire.digest(cookie, theirs)))
    return script


def test_ok_and_the_probe_announces_itself_hidden():
    p = Peer(node())
    r = handshake("127.0.0.1", p.port, COOKIE, timeout=3)
    assert (r.outcome, r.peer_name, r.peer_version) == ("ok", "VerneMQ@127.0.0.1", 6)
    p.t.join(5)
    flags = struct.unpack(">Q", p.received[1:9])[0]
    assert p.received[:1] == b"N" and not flags & wire.DFLAG_PUBLISHED
    (nlen,) = struct.unpack(">H", p.received[13:15])
    assert p.received[15:15 + nlen].decode().startswith("vmq_validate_")
    assert p.received[15:15 + nlen].decode().endswith("@127.0.0.1")


def test_wrong_cookie_is_cookie_rejected_after_a_connection():
    r = handshake("127.0.0.1", Peer(node(cookie="another-cookie")).port, COOKIE, timeout=3)
    assert (r.outcome, r.stage, r.peer_name) == ("cookie_rejected", "recv_challenge_ack", "VerneMQ@127.0.0.1")


def test_ack_of_another_cookie_is_ack_mismatch():
    def script(peer, conn):
        peer.read_frame(conn)
        conn.sendall(wire.frame(b"sok") + challenge_frame())
        reply = peer.read_frame(conn)
        conn.sendall(wire.frame(b"a" + wire.digest("x" + COOKIE, struct.unpack(">I", reply[1:5])[0])))
    # the peer accepts anything here (a misbehaving proxy); our verification catches it
    assert handshake("127.0.0.1", Peer(script).port, COOKIE, timeout=3).outcome == "ack_mismatch"


@pytest.mark.parametrize("status,outcome", [(b"snot_allowed", "status_not_allowed"), (b"salive", "status_alive"),
                                            (b"snok", "status_nok")])
def test_refusing_statuses(status, outcome):
    assert handshake("127.0.0.1", Peer(node(status=status)).port, COOKIE, timeout=3).outcome == outcome


def test_stalled_peer_times_out_at_the_step_and_within_the_bound():
    r = handshake("127.0.0.1", Peer(node(stall_at="status")).port, COOKIE, timeout=0.5)
    assert (r.outcome, r.stage, r.error) == ("timeout", "recv_status", "timeout")
    assert r.elapsed_ms < 3000


def test_garbage_is_a_protocol_error_naming_the_field():
    r = handshake("127.0.0.1", Peer(node(garbage_challenge=True)).port, COOKIE, timeout=3)
    assert r.outcome == "protocol_error" and "recv_challenge" in r.detail


def test_nothing_listening_is_connect_failed_refused():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = handshake("127.0.0.1", port, COOKIE, timeout=1)
    assert (r.outcome, r.error) == ("connect_failed", "refused")
    with pytest.raises(NetError) as e:
        epmd.names("127.0.0.1", port, timeout=1)
    assert e.value.kind == "refused"


def test_epmd_client_reads_until_close_and_maps_garbage():
    def names(peer, conn):
        assert _exact(conn, 3) == b"\x00\x01n"
        conn.sendall(struct.pack(">I", 4369) + b"name VerneMQ at port 9100\n")
    assert epmd.names("127.0.0.1", Peer(names).port, timeout=2) == (4369, [("VerneMQ", 9100)])

    def port2(peer, conn):
        assert _exact(conn, 10) == b"\x00\x08zVerneMQ"
        conn.sendall(bytes([119, 1]))
    assert epmd.port_please2("127.0.0.1", "VerneMQ", Peer(port2).port, timeout=2) is None

    def http(peer, conn):
        conn.recv(100)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    with pytest.raises(wire.ProtocolError):
        epmd.names("127.0.0.1", Peer(http).port, timeout=2)
