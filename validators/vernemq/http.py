"""A small HTTP client for one VerneMQ node (stdlib only, timeouts on every call).

The API key goes as the basic-auth user (``curl -u KEY:``), as VerneMQ 2.1 expects, or in the
``x-api-key`` header (``key_header=True``); it is registered with the redactor and never appears
in errors. :meth:`NodeHttp.stream` reads large answers (session/show) chunk by chunk.
"""

from __future__ import annotations

import base64
import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Iterator
from urllib.parse import quote

from ..core.secret import API_KEY, Secret


class HttpFailure(Exception):
    """The request did not give a usable answer; ``reason`` is fit for a report."""

    def __init__(self, reason: str, status: int | None = None):
        super().__init__(reason)
        self.reason, self.status = reason, status


@dataclass
class NodeHttp:
    base_url: str
    api_key: Secret | str | None = field(default=None, repr=False)
    timeout: float = 5.0
    #: send the key as ``x-api-key: KEY`` instead of basic-auth user
    key_header: bool = False

    def __post_init__(self):
        self.base_url = self.base_url.rstrip("/")
        self.api_key = Secret.coerce(self.api_key, "the API key", API_KEY)

    def _request(self, path: str, auth: bool) -> urllib.request.Request:
        req = urllib.request.Request(self.base_url + path, method="GET")
        if auth and self.api_key and self.key_header:
            req.add_header("x-api-key", self.api_key.reveal())
        elif auth and self.api_key:
            token = base64.b64encode(f"{self.api_key.reveal()}:".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        return req

    def _failure(self, path: str, status: int) -> HttpFailure:
        why = ("401 Unauthorized: the API key is missing or has the wrong scope (needs mgmt for /api/v1)"
               if status == 401 else f"HTTP {status}")
        return HttpFailure(f"GET {self.base_url}{path}: {why}", status)

    def _open(self, path: str, auth: bool):
        """The open response of a 2xx/3xx answer, or ``(status, body)`` of an HTTP error answer.
        Raises HttpFailure when there is no answer at all."""
        try:
            return urllib.request.urlopen(self._request(path, auth), timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            return exc.code, (exc.read() if exc.fp else b"")
        except (socket.timeout, TimeoutError):
            raise HttpFailure(f"GET {self.base_url}{path}: no answer within {self.timeout:g}s") from None
        except urllib.error.URLError as exc:
            raise HttpFailure(f"GET {self.base_url}{path}: cannot connect ({exc.reason})") from None
        except (ConnectionError, OSError) as exc:
            raise HttpFailure(f"GET {self.base_url}{path}: connection failed ({type(exc).__name__})") from None

    def _read(self, resp, path: str, size: int = -1) -> bytes:
        try:
            return resp.read(size)
        except (socket.timeout, TimeoutError):
            raise HttpFailure(f"GET {self.base_url}{path}: the answer stalled for {self.timeout:g}s") from None
        except (ConnectionError, OSError) as exc:
            raise HttpFailure(f"GET {self.base_url}{path}: connection lost ({type(exc).__name__})") from None

    def get(self, path: str, auth: bool = False, ok: tuple[int, ...] = (200,)) -> tuple[int, bytes]:
        """(status, body) for GET ``path``; raises HttpFailure with a readable reason."""
        opened = self._open(path, auth)
        if isinstance(opened, tuple):
            status, body = opened
        else:
            with opened:
                status, body = opened.status, self._read(opened, path)
        if status not in ok:
            raise self._failure(path, status)
        return status, body

    def get_json_status(self, path: str, auth: bool = False, ok: tuple[int, ...] = (200,)) -> tuple[int, Any]:
        """(status, decoded JSON) for answers whose status code carries meaning (health: 200 OK / 503 DOWN)."""
        status, body = self.get(path, auth=auth, ok=ok)
        try:
            return status, json.loads(body)
        except ValueError:
            raise HttpFailure(f"GET {self.base_url}{path}: the answer is not JSON", status) from None

    def stream(self, path: str, auth: bool = False, chunk: int = 1 << 20) -> Iterator[bytes]:
        """Yield the body of a 200 answer in chunks (raises HttpFailure before the first chunk otherwise)."""
        opened = self._open(path, auth)
        if isinstance(opened, tuple):
            raise self._failure(path, opened[0])

        def chunks() -> Iterator[bytes]:
            with opened:
                while True:
                    data = self._read(opened, path, chunk)
                    if not data:
                        return
                    yield data

        return chunks()

    def get_json(self, path: str, auth: bool = False, ok: tuple[int, ...] = (200,)) -> Any:
        _status, body = self.get(path, auth=auth, ok=ok)
        try:
            return json.loads(body)
        except ValueError:
            raise HttpFailure(f"GET {self.base_url}{path}: the answer is not JSON") from None


def session_show_path(columns: tuple[str, ...] | list[str], limit: int | None = None,
                      filters: dict[str, str] | None = None) -> str:
    """``/api/v1/session/show?--client_id&--node...&--limit=N&--client_id=X`` (vmq-admin flags as query keys)."""
    parts = []
    for key, value in (filters or {}).items():
        parts.append(f"--{key}={quote(str(value), safe='')}")
    parts.extend(f"--{c}" for c in columns if c not in (filters or {}))
    if limit is not None:
        parts.append(f"--limit={int(limit)}")
    return "/api/v1/session/show" + ("?" + "&".join(parts) if parts else "")
