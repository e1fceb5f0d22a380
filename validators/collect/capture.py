"""Captured answers of VerneMQ nodes, read the way a live collector reads the nodes.

One directory per moment (the layout of ``tests/fixtures/vernemq/2.1.2/<phase>/``): ``nodeN_<what>``
files hold the bodies, ``_capture_log.txt`` names the request and the HTTP code of each file
(``HTTP 000`` = no connection, so no body), and ``<file>.headers.txt`` the response headers where they
were kept. A ``401`` is read as a 401 (from the log, else from the headers file), whatever the file is
called: ``…_KEY.txt`` with an empty body is a refused key, not a missing answer.
Used by the ``--replay`` source of ``clients`` and ``preflight``; nothing here decides anything.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..core.inputs import read_text
from ..core.model import Unavailable

_LOG_LINE = re.compile(r"^(?P<file>node\d+_[\w.-]+?)\s+<-\s+GET\s+(?P<url>\S+).*?->\s+HTTP\s+(?P<code>\d{3})")
_CAPTURED_AT = re.compile(r"^#\s*captured_at\s+(\S+)")
#: a prefix is a node of this moment when one of its standard answers was asked for (a file such as
#: node3_status_before_leave.json alone does not make node3 a node of the moment)
_STANDARD = re.compile(r"^(node\d+)_(status\.json|metrics\.prom|health(_[a-z_]+)?\.json|"
                       r"api_v1_(cluster|listener|session)_show(_fields|_KEY)?\.(json|txt))$")
_STATUS_LINE = re.compile(r"^HTTP/\d(?:\.\d)?\s+(\d{3})")

#: why a request with the API key got a 401, as the checks report it
KEY_REFUSED = ("401 Unauthorized with the API key: the key is not added on this node (or not yet), or it is "
               "wrong; a 401 looks the same for both")


class CaptureDir:
    """One captured moment: node prefixes, and each file's answer as (HTTP code, body) or Unavailable."""

    def __init__(self, path: Path):
        if not path.is_dir():
            raise FileNotFoundError(path)
        self.path = path
        self.name = path.name
        self.log: dict[str, tuple[str, int]] = {}
        self.captured_at: str | None = None
        log = path / "_capture_log.txt"
        if log.is_file():
            text = read_text(log, "--replay", "the capture log must be the text file the capture script wrote.")
            for line in text.splitlines():
                line = line.strip()
                if m := _LOG_LINE.match(line):
                    self.log[m.group("file")] = (m.group("url"), int(m.group("code")))
                elif (m := _CAPTURED_AT.match(line)) and self.captured_at is None:
                    self.captured_at = m.group(1)
        files = [p.name for p in path.iterdir() if p.is_file()]
        self.prefixes = sorted({m.group(1) for f in files + list(self.log) if (m := _STANDARD.match(f))},
                               key=lambda p: int(p[4:]))
        self.subdirs = sorted(p.name for p in path.iterdir() if p.is_dir())

    def has(self, fname: str) -> bool:
        return (self.path / fname).is_file() or fname in self.log

    def first(self, *candidates: str) -> str | None:
        """The first candidate file that was captured or at least asked for."""
        return next((c for c in candidates if self.has(c)), None)

    def url(self, fname: str) -> str | None:
        return self.log.get(fname, (None, 0))[0]

    def host(self, prefix: str) -> str | None:
        url = self.url(f"{prefix}_status.json")
        return re.sub(r"^\w+://([^/:]+).*$", r"\1", url) if url else None

    def code(self, fname: str) -> int | None:
        """The HTTP code of ``fname``: from the log, else from its headers file, else None."""
        if fname in self.log:
            return self.log[fname][1]
        stem = fname.rsplit(".", 1)[0]
        headers = self.path / f"{stem}.headers.txt"
        if headers.is_file():
            first = headers.read_text(errors="replace").splitlines()[:1]
            if first and (m := _STATUS_LINE.match(first[0])):
                return int(m.group(1))
        return None

    def answer(self, fname: str, what: str) -> tuple[int | None, bytes] | Unavailable:
        """(HTTP code, body) of ``fname``, or why there is no answer (no connection, not captured)."""
        path = self.path / fname
        code = self.code(fname)
        url = self.url(fname) or what
        if code == 0:
            return Unavailable(f"GET {url}: cannot connect (HTTP 000 in the capture)")
        if path.is_file():
            return code, path.read_bytes()
        if code is not None:
            return code, b""
        return Unavailable(f"{what}: not captured in {self.name}")
