"""Socket helpers with a deadline on every call and errors mapped to a short, stable word."""

from __future__ import annotations

import errno
import socket
import struct
import time


class NetError(Exception):
    """``kind`` is one of: refused, timeout, unreachable, reset, closed, error."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail = kind, detail


def classify(exc: BaseException) -> NetError:
    if isinstance(exc, NetError):
        return exc
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return NetError("timeout", "no answer in time")
    if isinstance(exc, ConnectionRefusedError):
        return NetError("refused", "connection refused (nothing listens or a firewall rejects)")
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return NetError("reset", "connection reset by peer")
    if isinstance(exc, socket.gaierror):
        return NetError("unreachable", f"name resolution failed ({exc.strerror})")
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL):
        return NetError("unreachable", exc.strerror or "no route to host")
    if isinstance(exc, OSError):
        return NetError("error", f"{type(exc).__name__}: {exc.strerror or exc}")
    return NetError("error", f"{type(exc).__name__}")


class Conn:
    """A TCP connection whose every operation respects one overall deadline."""

    def __init__(self, host: str, port: int, timeout: float):
        self.deadline = time.monotonic() + timeout
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - mapped
            raise classify(exc) from None

    def _left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise NetError("timeout", "no answer in time")
        return left

    def send(self, data: bytes) -> None:
        try:
            self.sock.settimeout(self._left())
            self.sock.sendall(data)
        except Exception as exc:  # noqa: BLE001
            raise classify(exc) from None

    def recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            try:
                self.sock.settimeout(self._left())
                chunk = self.sock.recv(n - len(buf))
            except Exception as exc:  # noqa: BLE001
                raise classify(exc) from None
            if not chunk:
                raise NetError("closed", f"peer closed the connection after {len(buf)} of {n} bytes")
            buf += chunk
        return bytes(buf)

    def recv_frame(self) -> bytes:
        (length,) = struct.unpack(">H", self.recv_exact(2))
        return self.recv_exact(length)

    def recv_all(self, limit: int = 1 << 20) -> bytes:
        buf = bytearray()
        while True:
            try:
                self.sock.settimeout(self._left())
                chunk = self.sock.recv(65536)
            except Exception as exc:  # noqa: BLE001
                raise classify(exc) from None
            if not chunk:
                return bytes(buf)
            buf += chunk
            if len(buf) > limit:
                raise NetError("error", f"answer larger than {limit} bytes")

    def local_ip(self) -> str:
        return self.sock.getsockname()[0]

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "Conn":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def tcp_check(host: str, port: int, timeout: float) -> None:
    """Connect and close; raises NetError."""
    Conn(host, port, timeout).close()
