"""The client heartbeat: the canary repeated every ``interval`` seconds for ``duration`` seconds."""

from __future__ import annotations

import re
import time
from typing import Callable, Sequence

from ..core.errors import InputError
from .model import HeartbeatRun
from .runner import CanaryOptions, Entry, run_canaries

_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?")
#: a week: longer is a typo, and much longer overflows the timers
MAX_DURATION_S = 7 * 86400.0
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str, where: str) -> float:
    """``90``, ``90s``, ``5m``, ``1h``, ``500ms`` -> seconds."""
    m = _DURATION.fullmatch(str(text).strip())
    if not m or len(m.group(1)) > 12:
        raise InputError(where, f"{text!r} is not a duration.", "write e.g. 90, 90s, 5m or 1h (ASCII digits).")
    value = float(m.group(1)) * _UNIT[m.group(2)]
    if value > MAX_DURATION_S:
        raise InputError(where, f"{text!r} is longer than a week.", "write e.g. 90s, 5m or 1h.")
    return value


def run_heartbeat(entries: Sequence[Entry], duration: float, interval: float, opts: CanaryOptions | None = None,
                  clock: Callable[[], float] = time.monotonic,
                  sleep: Callable[[float], None] = time.sleep) -> list[HeartbeatRun]:
    """One canary per entry (all entries at once) every ``interval`` seconds: round(duration / interval) rounds.

    A round that takes longer than the interval delays the next one (no overlap, no catch-up burst).
    """
    runs = [HeartbeatRun(entry=e.name, url=e.url, interval_s=interval, duration_s=duration) for e in entries]
    attempts = max(1, int(round(duration / interval)))
    start = clock()
    for tick in range(attempts):
        due = start + tick * interval
        now = clock()
        if due > now:
            sleep(due - now)
        for run, result in zip(runs, run_canaries(entries, opts)):
            run.results.append(result)
    return runs
