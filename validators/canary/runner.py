"""MQTT canaries: a real client (paho-mqtt) through one entry point, start to finish.

One canary:
  1. connects with a unique client id and ``clean_session=false`` (TCP, TLS, WebSocket ``/mqtt``, WSS),
  2. subscribes (QoS 1) to its own topic, publishes one QoS 1 message there and waits for it to come
     back before the deadline,
  3. lets ``observe("online")`` look at session/show while it is connected,
  4. disconnects; ``observe("offline")`` (the persistent session must now be offline),
  5. cleans up: connects once more with ``clean_session=true`` and disconnects, which deletes the
     session; ``observe("cleaned")``.
Many canaries run in one thread: a selector drives every paho client's socket (no thread per client),
so a thousand canaries cost about as much wall time as the slowest of them.
The runner only records what happened (stage reached, error, timings, views); checks decide.
"""

from __future__ import annotations

import os
import selectors
import socket
import ssl
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence
from urllib.parse import urlparse

import paho.mqtt.client as mqtt

from ..core.addr import host_port
from ..core.errors import InputError
from ..core.inputs import url_port
from ..core.model import Unavailable
from ..core.secret import PASSWORD, Secret, reveal
from .model import CanaryResult, SessionView

_SCHEMES = {"tcp": ("tcp", False), "mqtt": ("tcp", False), "ssl": ("tcp", True), "mqtts": ("tcp", True),
            "tls": ("tcp", True), "ws": ("websockets", False), "wss": ("websockets", True)}
_DEFAULT_PORTS = {("tcp", False): 1883, ("tcp", True): 8883, ("websockets", False): 8080, ("websockets", True): 8443}

Observer = Callable[[str, str], "SessionView | Unavailable"]


@dataclass(frozen=True)
class Entry:
    """One way into the cluster: a node's listener, the LoadBalancer address, the Ingress URL."""

    name: str
    url: str
    host: str
    port: int
    transport: str  # tcp | websockets
    tls: bool
    path: str = "/mqtt"


def parse_entry(spec: str, where: str = "--entry") -> Entry:
    """``[NAME=]URL`` with URL tcp://, mqtt://, ssl://, mqtts://, tls://, ws://HOST:PORT/mqtt or wss://..."""
    name, _, url = spec.rpartition("=") if "=" in spec.split("://", 1)[0] else ("", "", spec)
    u = urlparse(url)
    if u.scheme not in _SCHEMES or not u.hostname:
        raise InputError(where, f"{spec!r} is not an MQTT entry point URL.",
                         "write e.g. tcp://10.0.0.1:1883, ssl://mqtt.example.com:8883 or ws://10.0.0.1:8080/mqtt "
                         "(optionally NAME=URL).")
    if u.username or u.password:
        raise InputError(where, "credentials may not be written into an entry URL.",
                         "use --canary-user and --canary-password-env.")
    transport, tls = _SCHEMES[u.scheme]
    port = url_port(u, where, spec) or _DEFAULT_PORTS[(transport, tls)]  # ":0" is refused, not the default
    path = u.path or "/mqtt"
    return Entry(name=name or url, url=url, host=u.hostname, port=port, transport=transport, tls=tls, path=path)


#: the most a WebSocket handshake answer's head may be (a server streaming bytes without end is cut here)
WS_HEAD_MAX = 64 << 10
#: how long the driver waits past the deadline for a connect worker to say what hung
CONNECT_GRACE = 1.0


class _ConnectFailure(Exception):
    """A connect attempt that failed for a reason the guard knows better than paho's exception."""


class _HandshakeGuard:
    """The socket under paho's WebSocket handshake (paho 2.2 reads the answer one byte at a time, with a
    per-recv timeout only, and loops forever on a closed connection). While armed, every recv gets what is
    left of the canary's deadline, the answer's head is capped at WS_HEAD_MAX bytes, and a closed
    connection is an error; disarmed after the handshake, it passes everything through."""

    def __init__(self, sock, deadline: float, where: str, timeout: float):
        self._sock, self._deadline, self._where, self._timeout = sock, deadline, where, timeout
        self._armed, self._got = True, 0

    def recv(self, n: int, *args):
        if not self._armed:
            return self._sock.recv(n, *args)
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise self._late()
        self._sock.settimeout(left)
        try:
            data = self._sock.recv(n, *args)
        except (socket.timeout, TimeoutError):
            raise self._late() from None
        if not data:
            raise _ConnectFailure(f"{self._where} accepted the TCP connection, then closed it during the "
                                  "WebSocket handshake (no WebSocket/MQTT listener there?)")
        self._got += len(data)
        if self._got > WS_HEAD_MAX:
            raise _ConnectFailure(f"{self._where} accepted the TCP connection, but its answer to the WebSocket "
                                  f"handshake went on past {WS_HEAD_MAX} bytes without ending (not a WebSocket "
                                  "listener?)")
        return data

    def _late(self) -> _ConnectFailure:
        if self._got == 0:
            return _ConnectFailure(f"{self._where} accepted the TCP connection, but no WebSocket/MQTT answer came "
                                   f"within {self._timeout:g}s")
        return _ConnectFailure(f"{self._where} accepted the TCP connection, but its WebSocket handshake answer "
                               f"did not end within {self._timeout:g}s ({self._got} bytes)")

    def disarm(self) -> None:
        self._armed = False

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


class _Client(mqtt.Client):
    """paho's client with the connect steps bounded by the canary's deadline and named when they fail.
    Overrides ``_create_socket`` (paho 2.2, pinned in requirements/lock.txt) to put a
    :class:`_HandshakeGuard` under the WebSocket handshake, and ``_ssl_wrap_socket`` to run the TLS
    handshake non-blocking against the deadline (paho's blocking one has per-recv timeouts only, so a
    server trickling a TLS record would hold the connect worker, and with it the pool, for hours)."""

    vmq_deadline = 0.0
    vmq_timeout = 5.0
    vmq_stage = ""

    def _create_socket(self):
        if self._transport == "unix":  # pragma: no cover - no canary uses it
            return super()._create_socket()
        sock = self._create_socket_connection()
        self.vmq_stage = "tcp"
        try:
            if self._ssl:
                sock = self._ssl_wrap_socket(sock)
                self.vmq_stage = "tls"
            if self._transport != "websockets":
                return sock
            guard = _HandshakeGuard(sock, self.vmq_deadline, host_port(self._host, self._port), self.vmq_timeout)
            # host only feeds the Host/Origin headers: an IPv6 literal needs its brackets there
            ws = mqtt._WebsocketWrapper(socket=guard, host=host_port(self._host), port=self._port,
                                        is_ssl=self._ssl, path=self._websocket_path,
                                        extra_headers=self._websocket_extra_headers)
        except BaseException:
            sock.close()  # paho never saw this socket: close it here
            raise
        guard.disarm()
        self.vmq_stage = "websocket"
        return ws

    def _ssl_wrap_socket(self, tcp_sock):
        where = host_port(self._host, self._port)
        ssl_sock = self._ssl_context.wrap_socket(tcp_sock, server_hostname=self._host, do_handshake_on_connect=False)
        ssl_sock.setblocking(False)
        while True:
            left = self.vmq_deadline - time.monotonic()
            if left <= 0:
                raise _ConnectFailure(f"{where} accepted the TCP connection, but the TLS handshake did not finish "
                                      f"within {self.vmq_timeout:g}s")
            try:
                ssl_sock.do_handshake()
                break
            except ssl.SSLWantReadError:
                selectors_wait(ssl_sock, selectors.EVENT_READ, left)
            except ssl.SSLWantWriteError:
                selectors_wait(ssl_sock, selectors.EVENT_WRITE, left)
        ssl_sock.setblocking(True)
        ssl_sock.settimeout(self._connect_timeout)
        # paho would call ssl.match_hostname when the context does not check host names itself; its
        # tls_set_context makes that case "insecure" (no check), which is what --canary-insecure asks for
        return ssl_sock


def selectors_wait(sock, event: int, timeout: float) -> None:
    """Wait until ``sock`` is ready for ``event`` or ``timeout`` passes (the caller checks its deadline)."""
    with selectors.DefaultSelector() as sel:
        sel.register(sock, event)
        sel.select(timeout)


@dataclass
class CanaryOptions:
    timeout: float = 5.0
    keepalive: int = 30
    username: str | None = None
    password: Secret | None = field(default=None, repr=False)
    ca_file: str | None = None
    insecure: bool = False
    topic_prefix: str = "vmq-canary"
    client_prefix: str = "vmq-canary"
    cleanup: bool = True

    def __post_init__(self):
        self.password = Secret.coerce(self.password, "the canary's MQTT password", PASSWORD)


def new_client_id(prefix: str = "vmq-canary") -> str:
    return f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


class _Canary:
    """One canary's state machine; every paho call happens in the driver's thread."""

    def __init__(self, entry: Entry, opts: CanaryOptions, observe: Observer | None, client_id: str | None = None):
        self.entry, self.opts, self.observe = entry, opts, observe
        cid = client_id or new_client_id(opts.client_prefix)
        self.result = CanaryResult(entry=entry.name, url=entry.url, client_id=cid)
        self.topic = f"{opts.topic_prefix}/{cid}"
        self.payload = uuid.uuid4().hex.encode()
        self.done = False
        self.phase = "main"  # main -> cleanup
        self.client: mqtt.Client | None = None
        self.t0 = 0.0
        self.t_pub = 0.0
        self.deadline = 0.0
        self._puback = False
        self._got = False
        self._expect_close = False
        self._grace = False
        self.connecting = None
        self.pool: ThreadPoolExecutor | None = None
        self.waker: socket.socket | None = None

    # ---------------------------------------------------------------- paho plumbing
    def _make(self, clean: bool) -> mqtt.Client:
        e, o = self.entry, self.opts
        c = _Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.result.client_id, clean_session=clean,
                    protocol=mqtt.MQTTv311, transport=e.transport)
        c.vmq_deadline, c.vmq_timeout = time.monotonic() + o.timeout, o.timeout
        if e.transport == "websockets":
            c.ws_set_options(path=e.path)
        if e.tls:
            ctx = ssl.create_default_context(cafile=o.ca_file) if o.ca_file else ssl.create_default_context()
            if o.insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            c.tls_set_context(ctx)
        if o.username:
            c.username_pw_set(o.username, reveal(o.password))
        c.on_connect = self._on_connect
        c.on_subscribe = self._on_subscribe
        c.on_publish = self._on_publish
        c.on_message = self._on_message
        c.on_disconnect = self._on_disconnect
        return c

    def _ms(self) -> float:
        return round((time.perf_counter() - self.t0) * 1000.0, 3)

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.deadline = self.t0 + self.opts.timeout
        self._connect(clean=False)

    def _connect(self, clean: bool) -> None:
        """Open the connection in a worker thread: paho's connect blocks (TCP, TLS and WebSocket handshakes)."""
        self.client = self._make(clean)
        self.client.connect_timeout = self.opts.timeout
        self.connecting = self.pool.submit(self._blocking_connect, self.client)
        self.connecting.add_done_callback(self._wake)

    def _wake(self, _fut) -> None:
        if self.waker is not None:
            try:
                self.waker.send(b"x")
            except OSError:
                pass

    def _blocking_connect(self, client: mqtt.Client) -> str | None:
        e = self.entry
        where = host_port(e.host, e.port)
        try:
            client.connect(e.host, e.port, keepalive=self.opts.keepalive)
        except _ConnectFailure as exc:
            return str(exc)
        except ConnectionRefusedError as exc:
            return f"connection refused by {where} ({exc.strerror})"
        except (socket.timeout, TimeoutError):
            if getattr(client, "vmq_stage", "") == "tcp" and e.tls:
                return f"{where} accepted the TCP connection, but the TLS handshake did not finish within " \
                       f"{self.opts.timeout:g}s"
            if getattr(client, "vmq_stage", ""):
                return f"{where} accepted the connection, but no MQTT answer came within {self.opts.timeout:g}s"
            return f"no TCP answer from {where} within {self.opts.timeout:g}s"
        except ssl.SSLError as exc:
            return f"TLS handshake with {where} failed ({exc.reason or exc})"
        except OSError as exc:
            return f"cannot connect to {where} ({exc.strerror or exc})"
        except Exception as exc:  # noqa: BLE001 - paho raises its own types for the WebSocket handshake
            return f"cannot connect to {e.url}: {type(exc).__name__}: {exc}"
        return None

    def poll_connect(self) -> bool:
        """True once the worker has finished connecting (successfully or not)."""
        fut = self.connecting
        if fut is None:
            return True
        if not fut.done():
            return False
        self.connecting = None
        error = fut.result()
        if error:
            self._fail(error)
        elif self.phase == "main":
            self.result.stage = "connect"
        return True

    def _fail(self, why: str) -> None:
        if self.result.error is None:
            self.result.error = why
        self._finish()

    def _finish(self) -> None:
        """Mark done; the driver closes the connection (paho must not be driven from inside its callbacks)."""
        if self.connecting is not None and not self.connecting.done():
            client = self.client
            self.connecting.add_done_callback(lambda _f: _close_quietly(client))
            self.client = None
        self._expect_close = True
        self.result.timings_ms.setdefault("total", self._ms())
        self.done = True

    def close(self) -> None:
        """Best-effort DISCONNECT and close, from the driver (never from a paho callback)."""
        client, self.client = self.client, None
        if client is None or client.socket() is None:
            return
        try:
            client.disconnect()
            client.loop_write()
        except Exception:  # noqa: BLE001 - best effort on a dead connection
            pass
        _close_quietly(client)

    def _view(self, moment: str) -> None:
        if self.observe is None:
            return
        started = time.perf_counter()
        try:
            self.result.views[moment] = self.observe(moment, self.result.client_id)
        except Exception as exc:  # noqa: BLE001 - an observer failure is a fact, not a crash
            self.result.views[moment] = Unavailable(f"session/show for {moment}: {type(exc).__name__}: {exc}")
        self.deadline += time.perf_counter() - started  # the observer's time is not the broker's

    # ---------------------------------------------------------------- callbacks
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._fail(f"CONNACK refused the connection: {reason_code}")
            return
        if self.phase == "cleanup":
            self._expect_close = True
            client.disconnect()
            return
        self.result.stage = "connack"
        self.result.timings_ms["connect"] = self._ms()
        client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if any(rc.is_failure for rc in reason_codes):
            self._fail(f"SUBACK refused {self.topic}: {', '.join(str(rc) for rc in reason_codes)}")
            return
        self.result.stage = "subscribe"
        self.result.timings_ms["subscribe"] = self._ms()
        self.t_pub = time.perf_counter()
        client.publish(self.topic, self.payload, qos=1)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._puback = True
        self._advance(client)

    def _on_message(self, client, userdata, msg) -> None:
        if msg.topic == self.topic and msg.payload == self.payload and not self._got:
            self._got = True
            self.result.received = True
            self.result.timings_ms["roundtrip"] = round((time.perf_counter() - self.t_pub) * 1000.0, 3)
        self._advance(client)

    def _advance(self, client) -> None:
        if self._puback and self.result.stage == "subscribe":
            self.result.stage = "publish"
        if self._puback and self._got and self.result.stage == "publish":
            self.result.stage = "receive"
            self._view("online")
            self._expect_close = True
            client.disconnect()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if not self._expect_close:
            self._fail(f"the broker closed the connection after stage '{self.result.stage or 'none'}' "
                       f"({reason_code})")
            return
        if self.done:
            return
        if self.phase == "main" and self.result.stage == "receive" and self.result.error is None:
            self.result.stage = "disconnect"
            self._view("offline")
            if not self.opts.cleanup:
                self.result.timings_ms["total"] = self._ms()
                self.done = True
                return
            self.phase = "cleanup"
            self._expect_close = False
            self.deadline = time.perf_counter() + self.opts.timeout
            self._connect(clean=True)
        elif self.phase == "cleanup" and self.result.error is None:
            self.result.stage = "cleanup"
            self._view("cleaned")
            self.result.timings_ms["total"] = self._ms()
            self.done = True

    def on_deadline(self) -> None:
        if self.connecting is not None:
            # the connect worker is bounded by the same deadline and names the step that hung: its reason
            # beats a bare "no connect" (take it if it is there, else give it a moment)
            if self.connecting.done():
                self.poll_connect()
                if self.done:
                    return
            elif not self._grace:
                self._grace = True
                self.deadline += CONNECT_GRACE
                return
        stage = self.result.stage
        nxt = {"": "connect", "connect": "CONNACK", "connack": "SUBACK", "subscribe": "PUBACK and the message",
               "publish": "its own message back (published QoS 1, PUBACK received, never delivered)",
               "receive": "the DISCONNECT to complete", "disconnect": "the cleanup connection"}[stage]
        self._fail(f"no {nxt} within {self.opts.timeout:g}s")


def _close_quietly(client: mqtt.Client | None) -> None:
    sock = client.socket() if client is not None else None
    if sock is not None:
        try:
            sock.close()
        except OSError:
            pass


def _register(sel: selectors.BaseSelector, registered: dict, c: "_Canary", sock) -> None:
    """Keep the selector registration of ``c`` on its current socket (by fd: closed fds get reused)."""
    cur = registered.get(c)
    if cur is not None and cur[0] is sock:
        return
    if cur is not None:
        key = sel.get_map().get(cur[1])
        if key is not None and key.data is c:
            sel.unregister(cur[1])
        del registered[c]
    if sock is None:
        return
    try:
        fd = sock.fileno()
    except (OSError, ValueError):
        return
    if fd < 0:
        return
    stale = sel.get_map().get(fd)
    if stale is not None:
        sel.unregister(fd)
        registered.pop(stale.data, None)
    sel.register(fd, selectors.EVENT_READ, c)
    registered[c] = (sock, fd)


def _drive(canaries: Sequence[_Canary], wake: socket.socket, poll: float = 0.05) -> None:
    """Run started canaries until every one is done, in this thread.

    Only canaries with something to do are touched in a round (a socket event, a finished connect
    worker, a queued packet); keepalive and deadlines are looked at every ``poll`` seconds. ``wake``
    turns readable when a connect worker finishes.
    """
    sel = selectors.DefaultSelector()
    registered: dict[_Canary, tuple[object, int]] = {}
    sel.register(wake, selectors.EVENT_READ, None)
    remaining = set(canaries)
    dirty = set(canaries)
    waiting: set[_Canary] = set()
    next_misc = 0.0
    try:
        while remaining:
            for c in [c for c in waiting if c.poll_connect()]:
                waiting.discard(c)
                dirty.add(c)
            while dirty:
                batch, dirty = dirty, set()
                for c in batch:
                    if c.done:
                        _register(sel, registered, c, None)
                        c.close()
                        remaining.discard(c)
                        continue
                    if c.connecting is not None:
                        waiting.add(c)
                        continue
                    sock = c.client.socket() if c.client is not None else None
                    _register(sel, registered, c, sock)
                    if sock is not None and c.client.want_write():
                        client = c.client
                        client.loop_write()
                        # a write can run callbacks: done, a new (cleanup) connection, a closed socket
                        if c.done or c.connecting is not None or c.client is not client or client.socket() is not sock:
                            dirty.add(c)
            if not remaining:
                return
            for key, _mask in sel.select(timeout=poll):
                c = key.data
                if c is None:
                    try:
                        wake.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        pass
                    continue
                if c.done or c.client is None or c.connecting is not None:
                    continue
                c.client.loop_read()
                sock = c.client.socket() if c.client is not None else None
                while sock is not None and hasattr(sock, "pending") and sock.pending() and not c.done:
                    c.client.loop_read()
                dirty.add(c)
            now = time.perf_counter()
            if now >= next_misc:
                next_misc = now + poll
                for c in list(remaining):
                    if not c.done and c.connecting is None and c.client is not None and c.client.socket() is not None:
                        c.client.loop_misc()
                        if c.client is not None and c.client.want_write():
                            dirty.add(c)
                    if not c.done and now > c.deadline:
                        c.on_deadline()
                    if c.done:
                        dirty.add(c)
    finally:
        sel.close()


def run_canaries(entries: Iterable[Entry], opts: CanaryOptions | None = None, observe: Observer | None = None,
                 concurrency: int = 256) -> list[CanaryResult]:
    """Run one canary per entry, up to ``concurrency`` at a time; results in the entries' order.

    With an observer the canaries run one at a time: the observer blocks the driver while it asks
    session/show, and another canary's deadline must not run out meanwhile.
    """
    opts = opts or CanaryOptions()
    if observe is not None:
        concurrency = 1
    canaries = [_Canary(e, opts, observe) for e in entries]
    step = max(1, concurrency)
    rsock, wsock = socket.socketpair()
    rsock.setblocking(False)
    wsock.setblocking(False)
    try:
        with ThreadPoolExecutor(max_workers=min(step, 64), thread_name_prefix="canary-connect") as pool:
            for i in range(0, len(canaries), step):
                batch = canaries[i:i + step]
                for c in batch:
                    c.pool, c.waker = pool, wsock
                    c.start()
                _drive(batch, rsock)
    finally:
        rsock.close()
        wsock.close()
    return [c.result for c in canaries]


def run_canary(entry: Entry, opts: CanaryOptions | None = None, observe: Observer | None = None) -> CanaryResult:
    return run_canaries([entry], opts, observe, concurrency=1)[0]
