"""What a canary run observed. Plain data: the checks (validators/checks/clients.py) decide."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from ..core.model import Unavailable
from ..vernemq.parse import SessionRow

#: the stages of one canary, in order; ``stage`` of a result is the last one that completed
STAGES = ("connect", "connack", "subscribe", "publish", "receive", "disconnect", "cleanup")


@dataclass(frozen=True)
class SessionView:
    """session/show rows for the canary's client id, plus status.json num_online per node, at one moment."""

    rows: tuple[SessionRow, ...]
    num_online: Mapping[str, int] = field(default_factory=dict)
    asked: str = ""
    #: how long the observer re-asked until the view matched the moment (bounded by its settle time)
    waited_ms: float = 0.0


@dataclass
class CanaryResult:
    entry: str
    url: str
    client_id: str
    #: the last stage that completed ("" if even the TCP connect failed)
    stage: str = ""
    #: why the next stage failed (None when every stage completed)
    error: str | None = None
    received: bool = False
    #: milliseconds: connect (TCP+CONNACK), subscribe (SUBACK), roundtrip (publish -> own message back), total
    timings_ms: dict[str, float] = field(default_factory=dict)
    #: "online" (after the roundtrip), "offline" (after DISCONNECT with clean_session=false),
    #: "cleaned" (after the cleanup connect with clean_session=true) -> SessionView or Unavailable
    views: dict[str, SessionView | Unavailable] = field(default_factory=dict)

    @property
    def completed(self) -> bool:
        return self.error is None and self.stage == STAGES[-1]


@dataclass
class HeartbeatRun:
    entry: str
    url: str
    interval_s: float
    duration_s: float
    results: list[CanaryResult] = field(default_factory=list)
