"""The distribution handshake (version 6) as a hidden node; closes right after the challenge ack.

Outcomes (``HandshakeResult.outcome``):
  ok               the peer accepted our digest and proved it knows the same cookie
  cookie_rejected  connected, status ok, challenge received, our reply sent, and the peer closed
                   the connection without a challenge_ack: the cookies differ
  ack_mismatch     the peer acknowledged with a digest of another cookie
  status_<s>       the peer refused at recv_status (not_allowed, nok, alive)
  connect_failed   no TCP connection (``error`` says refused/timeout/unreachable)
  protocol_error   the peer sent bytes outside the protocol (``detail`` names the field)
  timeout          connected, but a step got no answer in time (``stage`` names the step)
  closed           the peer closed before the challenge (``stage``)
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import asdict, dataclass

from . import wire
from .net import Conn, NetError

#: Cookies that VerneMQ's packaging ships as defaults, tried against every node (check DIST-008). The official
#: image's /vernemq/etc/vm.args holds ``-setcookie vmq``, and ``distributed_cookie`` defaults to ``vmq`` in the
#: release's vmq.schema and stock vernemq.conf; no other default is documented. Public, not secrets.
WELL_KNOWN_COOKIES = ("vmq",)

#: outcomes that mean the peer accepted our digest: it sent a challenge_ack (ack_mismatch: with an odd digest)
ACCEPTED = ("ok", "ack_mismatch")
#: outcomes that got as far as the challenge: the peer answered our digest, one way or the other
REACHED_CHALLENGE = (*ACCEPTED, "cookie_rejected")


@dataclass
class HandshakeResult:
    outcome: str
    stage: str = ""
    error: str = ""
    detail: str = ""
    peer_name: str = ""
    peer_flags: int = 0
    peer_version: int = 0
    elapsed_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ok"] = self.ok
        return d


def probe_name(local_ip: str) -> str:
    return f"vmq_validate_{os.getpid()}_{secrets.token_hex(3)}@{local_ip}"


def handshake(host: str, port: int, cookie: str, timeout: float = 3.0, name: str | None = None) -> HandshakeResult:
    t0 = time.monotonic()

    def done(outcome: str, **kw) -> HandshakeResult:
        return HandshakeResult(outcome, elapsed_ms=int((time.monotonic() - t0) * 1000), **kw)

    try:
        conn = Conn(host, port, timeout)
    except NetError as exc:
        return done("connect_failed", stage="connect", error=exc.kind, detail=exc.detail)
    stage = "send_name"
    try:
        with conn:
            conn.send(wire.send_name(name or probe_name(conn.local_ip())))
            stage = "recv_status"
            status = wire.parse_status(conn.recv_frame())
            if status not in ("ok", "ok_simultaneous"):
                return done(f"status_{status.split(':')[0]}", stage=stage, detail=f"peer answered {status!r}")
            stage = "recv_challenge"
            ch = wire.parse_challenge(conn.recv_frame())
            stage = "send_challenge_reply"
            mine = secrets.randbits(32)
            conn.send(wire.challenge_reply(mine, ch.challenge, cookie))
            stage = "recv_challenge_ack"
            try:
                ack = wire.parse_challenge_ack(conn.recv_frame())
            except NetError as exc:
                if exc.kind in ("closed", "reset"):
                    return done("cookie_rejected", stage=stage, error=exc.kind, peer_name=ch.name,
                                peer_flags=ch.flags, peer_version=ch.version,
                                detail="connected and sent the challenge reply; the peer closed without "
                                       "a challenge_ack (it computed another digest: the cookies differ)")
                raise
            peer = dict(peer_name=ch.name, peer_flags=ch.flags, peer_version=ch.version)
            if ack != wire.digest(cookie, mine):
                return done("ack_mismatch", stage=stage, detail="the challenge_ack digest is not of our cookie",
                            **peer)
            return done("ok", stage="done", **peer)
    except NetError as exc:
        outcome = "timeout" if exc.kind == "timeout" else "closed" if exc.kind in ("closed", "reset") else "error"
        return done(outcome, stage=stage, error=exc.kind, detail=exc.detail)
    except wire.ProtocolError as exc:
        return done("protocol_error", stage=stage, detail=str(exc))
