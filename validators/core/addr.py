"""Host:port and URLs to nodes, built in one place: IPv6 literals get their brackets
(``[fd00::1]:8888``, ``http://[fd00::1]:8888``), so an IPv6 pod IP gives URLs that parse.
Stdlib only (the probe imports it under ``python -S``)."""

from __future__ import annotations


def host_port(host: str, port: int | None = None) -> str:
    """``host:port`` with IPv6 literals in brackets; without a port, the host part only."""
    h = host.strip("[]")
    if ":" in h:
        h = f"[{h}]"
    return h if port is None else f"{h}:{int(port)}"


def url(scheme: str, host: str, port: int | None = None, path: str = "") -> str:
    """``scheme://host:port/path`` with IPv6 literals in brackets."""
    return f"{scheme}://{host_port(host, port)}{path}"
