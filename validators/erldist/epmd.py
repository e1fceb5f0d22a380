"""EPMD client: NAMES and PORT_PLEASE2 (one request per connection, as EPMD expects)."""

from __future__ import annotations

from . import wire
from .net import Conn


def names(host: str, port: int = 4369, timeout: float = 3.0) -> tuple[int, list[tuple[str, int]]]:
    """(epmd_port_reported, [(name, port)]). Raises NetError or wire.ProtocolError."""
    with Conn(host, port, timeout) as c:
        c.send(wire.names_request())
        return wire.parse_names(c.recv_all())


def port_please2(host: str, name: str, port: int = 4369, timeout: float = 3.0) -> wire.PortInfo | None:
    """The registration of short name ``name`` or None. Raises NetError or wire.ProtocolError."""
    with Conn(host, port, timeout) as c:
        c.send(wire.port_please2_request(name))
        return wire.parse_port2(c.recv_all())
