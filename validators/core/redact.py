"""Secret redaction at the edge.

Collectors register every secret they read (Erlang cookie, API key) with :func:`register`;
every renderer passes its final text through :func:`scrub`. Checks never need the secret
values themselves in evidence, but this is the second line of defence.
"""

from __future__ import annotations

import threading
from typing import Any

MASK = "***"
_lock = threading.Lock()
_secrets: set[str] = set()
#: public values that are never masked even when configured as a secret: a well-known default such as
#: VerneMQ's cookie `vmq` protects nothing, and reports must be able to name it (check DIST-008)
_public: set[str] = set()


def declare_public(*values: str) -> None:
    with _lock:
        _public.update(v.strip() for v in values if v and v.strip())


def register(value: str | bytes | None) -> None:
    if not value:
        return
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    value = value.strip()
    if len(value) >= 4:  # shorter strings would mask ordinary words
        with _lock:
            _secrets.add(value)


def clear() -> None:
    with _lock:
        _secrets.clear()


def scrub(text: str) -> str:
    with _lock:
        secrets = sorted(_secrets - _public, key=len, reverse=True)
    for s in secrets:
        text = text.replace(s, MASK)
    return text


def scrub_obj(obj: Any) -> Any:
    """Deep copy of a JSON-like object with every registered secret masked."""
    if isinstance(obj, str):
        return scrub(obj)
    if isinstance(obj, dict):
        return {scrub(str(k)): scrub_obj(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [scrub_obj(v) for v in obj]
    return obj
