"""The one HTTP client for every call to a VerneMQ node (stdlib only: the probe imports it under ``python -S``).

Every request:

* has **one overall deadline** (``timeout`` seconds from the first byte of the connect to the last byte of
  the body; a stream has ``stream_timeout``): each socket wait gets only what is left, so a server
  trickling one byte per second hits the deadline like a silent one;
* follows **no redirect**: a 3xx answer is an :class:`HttpRedirect` naming the Location's host, and the
  request is never repeated, so the API key never goes to a host that is in no targets file;
* reads at most ``max_bytes`` of a buffered body, ``stream_max_bytes`` of a streamed one (session/show is
  parsed as it streams, so memory stays flat; the cap bounds the work) (:class:`HttpTooLarge` beyond it;
  http.client already caps the status line and headers);
* fails with a typed :class:`HttpFailure` whose ``reason`` is fit for a report: :class:`HttpTimeout`,
  :class:`HttpConnectError` (refused, unreachable, unknown host, TLS), :class:`HttpTooLarge`,
  :class:`HttpRedirect`, :class:`HttpBadStatus`, :class:`HttpBadBody` (not JSON, or nested too deeply)
  and :class:`HttpProtocolError` (not HTTP, connection lost).

The API key (a :class:`~validators.core.secret.Secret`) goes as the basic-auth user (``curl -u KEY:``),
as VerneMQ 2.1 expects, or in the ``x-api-key`` header (``key_header=True``); it is revealed only
while the request headers are written, and never appears in a reason.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import selectors
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, Iterator
from urllib.parse import quote, urlparse

from ..core.addr import host_port, url  # noqa: F401 - re-exported
from ..core.secret import API_KEY, Secret

#: default cap of a buffered answer (status.json, metrics, health, cluster/show, listener/show)
DEFAULT_MAX_BYTES = 64 << 20
#: default cap of a streamed answer: session/show rows are about 200 bytes, and the limit is per node
DEFAULT_STREAM_MAX_BYTES = 1 << 30
#: default deadline of a streamed answer (session/show), whatever ``timeout`` is
DEFAULT_STREAM_TIMEOUT = 120.0


class HttpFailure(Exception):
    """The request did not give a usable answer; ``reason`` is fit for a report (it names the URL),
    ``detail`` is the same without the URL, ``kind`` is the failure's type name for observations."""

    kind = "error"

    def __init__(self, reason: str, status: int | None = None, detail: str | None = None):
        super().__init__(reason)
        self.reason, self.status, self.detail = reason, status, detail or reason


class HttpTimeout(HttpFailure):
    kind = "timeout"


class HttpConnectError(HttpFailure):
    kind = "connect"


class HttpTooLarge(HttpFailure):
    kind = "too_large"


class HttpRedirect(HttpFailure):
    kind = "redirect"

    def __init__(self, reason: str, status: int | None = None, detail: str | None = None,
                 location_host: str | None = None):
        super().__init__(reason, status, detail)
        self.location_host = location_host


class HttpBadStatus(HttpFailure):
    kind = "http"


class HttpBadBody(HttpFailure):
    kind = "bad_body"


class HttpProtocolError(HttpFailure):
    kind = "protocol"


class JsonError(ValueError):
    """A body that is not JSON (also: nested deeper than the decoder's recursion allows)."""


def loads(data: bytes | str) -> Any:
    """``json.loads`` that turns every way a hostile body can fail it (bad UTF-8, bad syntax, 100k nested
    ``[``: RecursionError) into a :class:`JsonError` (a ValueError)."""
    try:
        return json.loads(data)
    except RecursionError:
        raise JsonError("is JSON nested too deeply to be read (a hostile or broken answer)") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise JsonError(f"is not JSON ({type(exc).__name__})") from None


# --------------------------------------------------------------------------- deadline plumbing

class _Expired(Exception):
    pass


class _Clock:
    def __init__(self, budget: float):
        self.deadline = time.monotonic() + budget

    def left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _Expired()
        return left


class _DeadlineReader(io.RawIOBase):
    """A socket read end whose every wait is bounded by what is left of the request's deadline."""

    def __init__(self, sock: socket.socket, clock: _Clock):
        super().__init__()
        self._sock, self._clock = sock, clock

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        self._sock.settimeout(self._clock.left())
        return self._sock.recv_into(b)


class _DeadlineSocket:
    """What http.client needs of a socket (sendall, makefile, close), every wait bounded by the deadline.
    ``close`` is left to the client, which closes the real socket once the body is read."""

    def __init__(self, sock: socket.socket, clock: _Clock):
        self._sock, self._clock = sock, clock

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(self._clock.left())
        self._sock.sendall(data)

    def makefile(self, mode: str = "rb", *args, **kwargs):
        return io.BufferedReader(_DeadlineReader(self._sock, self._clock))

    def close(self) -> None:
        pass


def _deadline_connection(base: type) -> type:
    class Conn(base):  # type: ignore[misc, valid-type]
        def __init__(self, host: str, port: int, clock: _Clock, **kw):
            super().__init__(host, port, timeout=clock.left(), **kw)
            self._clock, self.raw_sock = clock, None

        def connect(self) -> None:
            self.timeout = self._clock.left()
            super().connect()  # TCP (and TLS) with what is left as the timeout of every wait
            self.raw_sock = self.sock
            self.sock = _DeadlineSocket(self.sock, self._clock)

    return Conn


_HTTPConn = _deadline_connection(http.client.HTTPConnection)


class _HTTPSConn(http.client.HTTPSConnection):
    """HTTPS with the TLS handshake run non-blocking against the deadline (a blocking handshake has
    per-recv timeouts only, so a server trickling a TLS record would hold the request for hours)."""

    def __init__(self, host: str, port: int, clock: _Clock, context: ssl.SSLContext):
        super().__init__(host, port, timeout=clock.left(), context=context)
        self._clock, self.raw_sock = clock, None

    def connect(self) -> None:
        self.timeout = self._clock.left()
        http.client.HTTPConnection.connect(self)  # TCP only
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host, do_handshake_on_connect=False)
        self.sock.setblocking(False)
        while True:
            left = self._clock.left()
            try:
                self.sock.do_handshake()
                break
            except ssl.SSLWantReadError:
                event = selectors.EVENT_READ
            except ssl.SSLWantWriteError:
                event = selectors.EVENT_WRITE
            with selectors.DefaultSelector() as sel:
                sel.register(self.sock, event)
                sel.select(left)
        self.sock.setblocking(True)
        self.raw_sock = self.sock
        self.sock = _DeadlineSocket(self.sock, self._clock)


class _Exchange:
    """One request/response on its own connection; ``close`` closes the socket."""

    def __init__(self, conn, resp: http.client.HTTPResponse):
        self.conn, self.resp = conn, resp
        self.status = resp.status

    def close(self) -> None:
        try:
            self.resp.close()
        except Exception:  # noqa: BLE001 - closing a broken answer
            pass
        sock = getattr(self.conn, "raw_sock", None)
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass


# --------------------------------------------------------------------------- the client

@dataclass
class NodeHttp:
    base_url: str
    api_key: Secret | str | None = field(default=None, repr=False)
    timeout: float = 5.0
    #: send the key as ``x-api-key: KEY`` instead of basic-auth user
    key_header: bool = False
    #: body cap of one buffered answer (HttpTooLarge beyond it)
    max_bytes: int = DEFAULT_MAX_BYTES
    #: body cap of one streamed answer
    stream_max_bytes: int = DEFAULT_STREAM_MAX_BYTES
    #: overall deadline of a streamed answer (session/show)
    stream_timeout: float = DEFAULT_STREAM_TIMEOUT

    def __post_init__(self):
        self.base_url = self.base_url.rstrip("/")
        self.api_key = Secret.coerce(self.api_key, "the API key", API_KEY)
        u = urlparse(self.base_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"{self.base_url!r} is not an http(s) URL with a host")
        self._https = u.scheme == "https"
        self._host = u.hostname
        self._port = u.port or (443 if self._https else 80)
        self._prefix = u.path.rstrip("/")

    # ------------------------------------------------------------------ plumbing
    def _where(self, path: str) -> str:
        return f"GET {self.base_url}{path}"

    def _fail(self, cls: type, path: str, detail: str, status: int | None = None, **kw) -> HttpFailure:
        return cls(f"{self._where(path)}: {detail}", status, detail, **kw)

    def _headers(self, auth: bool) -> dict[str, str]:
        headers = {"Accept": "*/*", "Connection": "close", "User-Agent": "vmq-validate"}
        if auth and self.api_key is not None:
            if self.key_header:
                headers["x-api-key"] = self.api_key.reveal()
            else:
                token = base64.b64encode(f"{self.api_key.reveal()}:".encode()).decode()
                headers["Authorization"] = f"Basic {token}"
        return headers

    def _translate(self, exc: BaseException, path: str, connected: bool, budget: float) -> HttpFailure:
        if isinstance(exc, HttpFailure):
            return exc
        if isinstance(exc, (_Expired, socket.timeout, TimeoutError)):
            what = "no complete answer" if connected else "no connection"
            return self._fail(HttpTimeout, path, f"{what} within {budget:g}s")
        if isinstance(exc, ConnectionRefusedError):
            return self._fail(HttpConnectError, path, "cannot connect (connection refused)")
        if isinstance(exc, socket.gaierror):
            return self._fail(HttpConnectError, path, f"cannot connect (unknown host {self._host})")
        if isinstance(exc, ssl.SSLError):
            return self._fail(HttpConnectError, path, f"TLS failed ({exc.reason or type(exc).__name__})")
        if isinstance(exc, http.client.HTTPException):
            return self._fail(HttpProtocolError, path, f"not a valid HTTP answer ({type(exc).__name__})")
        if isinstance(exc, OSError) and not connected:
            return self._fail(HttpConnectError, path, f"cannot connect ({exc.strerror or type(exc).__name__})")
        if isinstance(exc, OSError):
            return self._fail(HttpProtocolError, path, f"connection lost ({type(exc).__name__})")
        return self._fail(HttpProtocolError, path, f"the answer cannot be read ({type(exc).__name__})")

    def _exchange(self, path: str, auth: bool, clock: _Clock, budget: float) -> _Exchange:
        conn = None
        connected = False
        try:
            if self._https:
                conn = _HTTPSConn(self._host, self._port, clock, context=ssl.create_default_context())
            else:
                conn = _HTTPConn(self._host, self._port, clock)
            conn.connect()
            connected = True
            conn.putrequest("GET", self._prefix + path, skip_accept_encoding=True)
            for k, v in self._headers(auth).items():
                conn.putheader(k, v)
            conn.endheaders()
            return _Exchange(conn, conn.getresponse())
        except BaseException as exc:
            if conn is not None and conn.raw_sock is not None:
                conn.raw_sock.close()
            elif conn is not None:
                conn.close()
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise self._translate(exc, path, connected, budget) from None

    def _check_status(self, ex: _Exchange, path: str, ok: tuple[int, ...], cap: int) -> None:
        status = ex.status
        if 300 <= status < 400:
            loc = ex.resp.getheader("Location") or ""
            try:
                target = urlparse(loc)
                host = host_port(target.hostname, target.port) if target.hostname else None
            except ValueError:
                host = None
            where = f"to {host}" if host else ("to a path on the same host" if loc else "without a Location")
            raise self._fail(HttpRedirect, path, f"HTTP {status} redirect {where}: redirects are not followed "
                             "(the API key goes only to the URL given)", status, location_host=host)
        if status not in ok:
            why = ("401 Unauthorized: the API key is missing or has the wrong scope (needs mgmt for /api/v1)"
                   if status == 401 else f"HTTP {status}")
            raise self._fail(HttpBadStatus, path, why, status)
        length = ex.resp.getheader("Content-Length")
        if length and length.strip().isdigit() and int(length) > cap:
            raise self._too_large(path, status, cap)

    def _too_large(self, path: str, status: int | None, cap: int) -> HttpTooLarge:
        return self._fail(HttpTooLarge, path, f"the answer is larger than {cap} bytes "
                          "(the size cap); is this a VerneMQ node?", status)

    def _chunks(self, ex: _Exchange, path: str, clock: _Clock, budget: float, size: int,
                cap: int) -> Iterator[bytes]:
        total = 0
        try:
            while True:
                clock.left()
                data = ex.resp.read1(size) if size > 0 else ex.resp.read1()
                if not data:
                    return
                total += len(data)
                if total > cap:
                    raise self._too_large(path, ex.status, cap)
                yield data
        except GeneratorExit:
            raise
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise self._translate(exc, path, True, budget) from None
        finally:
            ex.close()

    # ------------------------------------------------------------------ interface
    def get(self, path: str, auth: bool = False, ok: tuple[int, ...] = (200,)) -> tuple[int, bytes]:
        """(status, body) for GET ``path``; raises HttpFailure with a readable reason."""
        clock = _Clock(self.timeout)
        ex = self._exchange(path, auth, clock, self.timeout)
        try:
            self._check_status(ex, path, ok, self.max_bytes)
        except BaseException:
            ex.close()
            raise
        return ex.status, b"".join(self._chunks(ex, path, clock, self.timeout, 1 << 16, self.max_bytes))

    def _json(self, path: str, status: int, body: bytes) -> Any:
        try:
            return loads(body)
        except JsonError as exc:
            raise self._fail(HttpBadBody, path, f"the answer {exc}", status) from None

    def get_json_status(self, path: str, auth: bool = False, ok: tuple[int, ...] = (200,)) -> tuple[int, Any]:
        """(status, decoded JSON) for answers whose status code carries meaning (health: 200 OK / 503 DOWN)."""
        status, body = self.get(path, auth=auth, ok=ok)
        return status, self._json(path, status, body)

    def get_json(self, path: str, auth: bool = False, ok: tuple[int, ...] = (200,)) -> Any:
        return self.get_json_status(path, auth=auth, ok=ok)[1]

    def stream(self, path: str, auth: bool = False, chunk: int = 1 << 20) -> Iterator[bytes]:
        """Yield the body of a 200 answer in chunks (raises HttpFailure before the first chunk otherwise).
        The whole stream has ``max(timeout, stream_timeout)`` seconds and ``stream_max_bytes`` bytes."""
        budget = max(self.timeout, self.stream_timeout)
        clock = _Clock(budget)
        ex = self._exchange(path, auth, clock, budget)
        try:
            self._check_status(ex, path, (200,), self.stream_max_bytes)
        except BaseException:
            ex.close()
            raise
        return self._chunks(ex, path, clock, budget, chunk, self.stream_max_bytes)


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
