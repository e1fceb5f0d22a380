"""Reading what a user hands over (files, stdin, numbers, ports, durations): every failure is one
:class:`~validators.core.errors.InputError` naming the field, never a traceback.

The CLI (:func:`validators.cli.main`) turns those into one line on stderr and exit 2; anything else
that escapes a command is reported there as an internal error (still one line, still exit 2).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, TextIO

from .errors import InputError

#: ASCII digits only: ``int()`` and ``\\d`` also accept other scripts' digits (``١٨٨٣``)
_INT = re.compile(r"[0-9]+")
_FLOAT = re.compile(r"[0-9]+(?:\.[0-9]+)?|\.[0-9]+")
#: no input file is larger (rendered manifests of a big release are a few MiB); /dev/zero ends here, not never
MAX_INPUT_BYTES = 64 << 20


def decode(data: bytes, field: str, what: str) -> str:
    """``data`` as UTF-8 text, or an InputError saying where the first bad byte is."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(field, f"{what} is not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x}).",
                         "pass a text file (YAML or JSON), not a binary or another encoding.") from None


def read_text(path: str | os.PathLike, field: str, fix: str = "pass a readable text file.") -> str:
    """The whole file as UTF-8 text. A folder, a missing or unreadable file, or bytes that are not
    UTF-8 become an InputError naming ``field``."""
    p = Path(path)
    try:
        if p.is_dir():
            raise InputError(field, f"{p} is a directory.", fix)
        with open(p, "rb") as fh:
            data = fh.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise InputError(field, f"cannot read {p}: {exc.strerror or type(exc).__name__}.", fix) from None
    _cap(data, field, str(p))
    return decode(data, field, str(p))


def _cap(data: bytes, field: str, what: str) -> None:
    if len(data) > MAX_INPUT_BYTES:
        raise InputError(field, f"{what} is larger than {MAX_INPUT_BYTES >> 20} MiB.",
                         "pass the YAML file itself (not a device, an archive or a whole dump).")


def read_stdin(stream: TextIO | None, field: str) -> str:
    """All of stdin as UTF-8 text; a closed stdin or bytes that are not UTF-8 are an InputError."""
    if stream is None or getattr(stream, "closed", False):
        raise InputError(field, "stdin is closed (- reads the manifests from stdin).",
                         "pipe the manifests in, e.g. `helm template ... | vmq-validate plan -f -`, or pass a file.")
    try:
        buf = getattr(stream, "buffer", None)
        if buf is not None:
            data = buf.read(MAX_INPUT_BYTES + 1)
            _cap(data, field, "stdin")
            return decode(data, field, "stdin")
        text = stream.read(MAX_INPUT_BYTES + 1)
        _cap(text.encode("utf-8", "surrogateescape"), field, "stdin")
    except OSError as exc:
        raise InputError(field, f"cannot read stdin: {exc.strerror or type(exc).__name__}.",
                         "pipe the manifests in or pass a file.") from None
    except ValueError:  # read of a closed file
        raise InputError(field, "stdin is closed.", "pipe the manifests in or pass a file.") from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # surrogate-escaped bytes that were not UTF-8
        raise InputError(field, f"stdin is not UTF-8 text (character {exc.start}).",
                         "pipe UTF-8 YAML or JSON.") from None
    return text


def load_yaml(text: str, field: str, what: str, fix: str = "fix the YAML syntax.") -> Any:
    """One YAML document (safe loader); syntax errors and documents too deep to load are an InputError."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(field, f"{what} is not valid YAML{at}: {problem}.", fix) from None
    except RecursionError:
        raise InputError(field, f"{what} is nested too deeply to load.", fix) from None


def whole_number(text: Any, field: str, lo: int = 1, hi: int | None = None) -> int:
    """A decimal number of ASCII digits within [lo, hi] (no sign, no ``_``, no other scripts' digits)."""
    s = str(text).strip()
    if not _INT.fullmatch(s) or len(s) > 18:
        raise InputError(field, f"{text!r} is not a whole number.", "write ASCII digits, e.g. 16.")
    n = int(s)
    if n < lo or (hi is not None and n > hi):
        span = f"use {lo} to {hi}." if hi is not None else f"use {lo} or more."
        raise InputError(field, f"{n} is out of range.", span)
    return n


def seconds(text: Any, field: str, hi: float = 86400.0) -> float:
    """A finite number of seconds from 0 to ``hi`` (``0.5``, ``20``; a command that needs more than 0 says so)."""
    s = str(text).strip()
    if not _FLOAT.fullmatch(s):
        raise InputError(field, f"{text!r} is not a number of seconds.", "write e.g. 3 or 0.5.")
    v = float(s)
    if not (math.isfinite(v) and 0 <= v <= hi):
        raise InputError(field, f"{s} seconds is out of range.", f"use 0 to {hi:g}.")
    return v


def port(value: Any, field: str) -> int:
    """A TCP port 1..65535: an int (not a bool), or a string of ASCII digits."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InputError(field, f"{value!r} is not a TCP port.", "use a whole number from 1 to 65535.")
    if isinstance(value, str):
        return whole_number(value, field, 1, 65535)
    if not 1 <= value <= 65535:
        raise InputError(field, f"{value!r} is not a TCP port.", "use a whole number from 1 to 65535.")
    return value


def url_port(parsed, field: str, spec: str) -> int | None:
    """The explicit port of a parsed URL (None when it names none); ``:0``, ``:+1`` and ports out of
    range are an InputError."""
    netloc = parsed.netloc.rsplit("@", 1)[-1]
    raw = netloc.rsplit("]", 1)[-1] if netloc.startswith("[") else netloc
    if ":" not in raw:
        return None
    text = raw.rsplit(":", 1)[1]
    if text == "":
        raise InputError(field, f"{spec!r} has an empty port.", "write the port, e.g. :1883, or leave out the colon.")
    return whole_number(text, field, 1, 65535) if _INT.fullmatch(text) else _bad_port(field, spec)


def _bad_port(field: str, spec: str):
    raise InputError(field, f"{spec!r} has an invalid port.", "use a port from 1 to 65535 (ASCII digits).")
