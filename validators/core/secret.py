"""The one type for secret values (Erlang cookie, API keys, the canary's MQTT password).

A :class:`Secret` is read once (an environment variable, a file, a Kubernetes Secret or a value handed
over by a caller), stripped of surrounding whitespace (the trailing CR/LF an editor or ``echo`` leaves)
and validated once: an empty value, or one with a control character inside (an inner newline, CR, NUL,
ESC ...), is an :class:`~validators.core.errors.InputError` (exit 2) that names the *source* and never
shows the value. Every Secret registers itself with the redactor (:mod:`validators.core.redact`).

``str()``, ``repr()`` and ``format()`` of a Secret give ``***``, so it never reaches output, logs or
exception texts by accident. Only :meth:`Secret.reveal` gives the value, and only the code that puts
bytes on the wire calls it (the HTTP client's auth header, the handshake digest, a probe job's stdin).
Stdlib only: the probe runs with ``python -S`` inside network namespaces.
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path
from typing import Mapping

from . import redact
from .errors import InputError

MASK = redact.MASK

#: API keys travel in HTTP headers: printable ASCII only
API_KEY = "api key"
COOKIE = "cookie"
PASSWORD = "password"


def _bad_char(value: str, kind: str) -> str | None:
    """What is wrong with ``value`` (no value in the text), or None."""
    for ch in value:
        o = ord(ch)
        if o < 0x20 or o == 0x7F or 0x80 <= o < 0xA0:
            return "contains a control character (e.g. an inner newline, CR or NUL)"
        if kind == API_KEY and not 0x20 <= o <= 0x7E:
            return "contains a character that is not printable ASCII (an API key travels in an HTTP header)"
    return None


class Secret:
    """A secret value that never shows itself. ``source`` says where it came from (safe to print)."""

    __slots__ = ("_value", "source", "kind")

    def __init__(self, value: str | bytes, source: str, kind: str = COOKIE):
        if isinstance(value, (bytes, bytearray)):
            try:
                value = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                raise InputError(source, "the secret is not UTF-8 text.",
                                 "store the secret as plain UTF-8 text (the value is never printed).") from None
        if not isinstance(value, str):
            raise InputError(source, f"a secret must be text, not {type(value).__name__}.",
                             "give the secret as a string (the value is never printed).")
        value = value.strip(" \t\r\n")
        if not value:
            raise InputError(source, "the secret is empty.", "put the secret value there (it is never printed).")
        bad = _bad_char(value, kind)
        if bad:
            raise InputError(source, f"the secret {bad}.",
                             "write the secret on one line without control characters (the value is never printed).")
        object.__setattr__(self, "_value", value)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "kind", kind)
        redact.register(value)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_env(cls, name: str, source: str, env: Mapping[str, str] | None = None, kind: str = COOKIE,
                 required: bool = True) -> "Secret | None":
        """The secret in environment variable ``name`` (an unset or empty variable is an InputError
        when ``required``, else None)."""
        if not isinstance(name, str) or not name:
            raise InputError(source, "must name an environment variable.", "e.g. VMQ_COOKIE.")
        value = (os.environ if env is None else env).get(name)
        if not value or not value.strip():
            if not required:
                return None
            raise InputError(source, f"environment variable {name} is not set or empty.",
                             f"export {name}=... before running (the value is never printed).")
        return cls(value, f"{source} (environment variable {name})", kind)

    @classmethod
    def from_file(cls, path: str | os.PathLike, source: str, base: Path | None = None,
                  kind: str = COOKIE) -> "Secret":
        """The secret in file ``path`` (relative paths are taken from ``base``)."""
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            raise InputError(source, f"{path!r} is not a file path.", "write the path of the file holding the secret.")
        p = Path(path)
        if not p.is_absolute() and base is not None:
            p = base / p
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise InputError(source, f"cannot read {p}: {exc.strerror or type(exc).__name__}.",
                             "point it at a readable file.") from None
        if not data.strip():
            raise InputError(source, f"{p} is empty.", "write the secret into the file.")
        return cls(data, f"{source} (file {p})", kind)

    @classmethod
    def coerce(cls, value: "Secret | str | bytes | None", source: str, kind: str = COOKIE) -> "Secret | None":
        """A Secret from whatever a caller hands over (None and empty stay None)."""
        if value is None or isinstance(value, Secret):
            return value
        if isinstance(value, (str, bytes, bytearray)) and not value.strip():
            return None
        return cls(value, source, kind)

    # ------------------------------------------------------------------ use
    def reveal(self) -> str:
        """The value. Call it only where the bytes go on the wire."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK}, source={self.source!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __bool__(self) -> bool:
        return True

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return hmac.compare_digest(self._value.encode(), other._value.encode())
        return NotImplemented

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __setattr__(self, name, value):
        raise AttributeError("a Secret is immutable")

    def __copy__(self) -> "Secret":
        return self

    def __deepcopy__(self, memo) -> "Secret":
        return self

    def __reduce__(self):
        raise TypeError("a Secret is not pickled (it would leave the process in clear)")


def reveal(value: "Secret | str | None") -> str | None:
    """The plain value of a Secret (a str passes through; None stays None), for wire-level code."""
    if isinstance(value, Secret):
        return value.reveal()
    return value
