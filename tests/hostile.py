"""Hostile servers on loopback for the tests of every command that makes HTTP or MQTT connections.

Real TCP servers (raw sockets, one thread per connection), each misbehaving in one way:

* ``silent``    accepts, reads the request, never answers;
* ``trickle``   answers ``200`` and then one body byte per second, forever (per-recv timeouts never fire);
* ``endless``   answers ``200`` with no length and an endless body as fast as the socket takes it;
* ``nested``    answers ``200`` with a body of 100 000 ``[`` (json.loads raises RecursionError);
* ``redirect``  answers ``302 Location: http://127.0.0.2:PORT/...`` pointing to a recorder on *another*
                loopback address, which records every request head it gets (``leaked_keys`` says whether
                an ``Authorization`` or ``X-Api-Key`` header ever arrived there);
* ``stream``    raw bytes without end the moment a client connects, whatever it sends (for a ``ws://``
                MQTT entry: the WebSocket handshake never gets its blank line);
* ``tls-trickle`` the header of a 16 KiB TLS handshake record, then one byte of it per second (a TLS
                client waits for the whole record: per-recv timeouts never fire).

``HostileServer(mode)`` is a context manager; ``.port``, ``.url`` (``http://127.0.0.1:PORT``),
``.requests`` (request heads received, as text) and, for ``redirect``, ``.target`` (the recorder).
"""

from __future__ import annotations

import socket
import threading
import time

MODES = ("silent", "trickle", "endless", "nested", "redirect", "stream", "tls-trickle")
NESTED = b"[" * 100_000
SECRET_HEADERS = ("authorization:", "x-api-key:")


def _read_head(conn: socket.socket, limit: int = 65536) -> bytes:
    data = b""
    conn.settimeout(5)
    try:
        while b"\r\n\r\n" not in data and len(data) < limit:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    return data


class LoopbackServer:
    """TCP on 127.0.0.1: one thread accepts, each connection gets a thread running :meth:`handle`; ``close()``
    stops accepting and closes the connections. Subclasses set their own state before calling ``__init__``."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(c)
            threading.Thread(target=self.handle, args=(c,), daemon=True).start()

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self):
        self._stop = True
        for c in self.conns:
            c.close()
        self.sock.close()


class HostileServer:
    def __init__(self, mode: str, host: str = "127.0.0.1"):
        if mode not in MODES:
            raise ValueError(mode)
        self.mode, self.host = mode, host
        self.requests: list[str] = []
        self.target: HostileServer | None = None
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        if mode == "redirect":
            self.target = HostileServer("silent", "127.0.0.2")
            self.target.record_only = True
        self.record_only = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> "HostileServer":
        if self.target is not None:
            self.target.__enter__()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        try:
            self._sock.close()
        except OSError:
            pass
        with self._lock:
            for c in self._conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
        self._thread.join(5)
        if self.target is not None:
            self.target.__exit__(*exc)

    @property
    def leaked_keys(self) -> list[str]:
        """Secret-bearing header lines the redirect target received (must stay empty)."""
        heads = self.target.requests if self.target is not None else self.requests
        return [line for h in heads for line in h.lower().splitlines() if line.startswith(SECRET_HEADERS)]

    # ------------------------------------------------------------------ serving
    def _accept(self) -> None:
        self._sock.settimeout(0.1)  # a closed listening socket does not wake accept(): poll the stop flag
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(None)
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _send(self, conn: socket.socket, data: bytes) -> bool:
        try:
            conn.sendall(data)
            return True
        except OSError:
            return False

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.mode == "tls-trickle":
                self._send(conn, b"\x16\x03\x03\x40\x00")
                while not self._stop.is_set() and self._send(conn, b"\x00"):
                    self._stop.wait(1.0)
                return
            if self.mode == "stream":
                conn.settimeout(5)
                while not self._stop.is_set() and self._send(conn, b"x" * 65536):
                    pass
                return
            head = _read_head(conn)
            with self._lock:
                self.requests.append(head.decode("latin-1"))
            ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            if self.mode == "silent" or self.record_only:
                self._stop.wait(60)
            elif self.mode == "trickle":
                self._send(conn, ok + b"\r\n")
                while not self._stop.is_set() and self._send(conn, b" "):
                    self._stop.wait(1.0)
            elif self.mode == "endless":
                conn.settimeout(5)
                self._send(conn, ok + b"\r\n")
                block = b" " * (1 << 20)
                while not self._stop.is_set() and self._send(conn, block):
                    pass
            elif self.mode == "nested":
                self._send(conn, ok + b"Content-Length: %d\r\n\r\n" % len(NESTED) + NESTED)
                time.sleep(0.2)
            elif self.mode == "redirect":
                assert self.target is not None
                path = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b"/"
                self._send(conn, b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.2:%d%s\r\n"
                                 b"Content-Length: 0\r\n\r\n" % (self.target.port, path))
                time.sleep(0.2)
        finally:
            try:
                conn.close()
            except OSError:
                pass
