"""Strict parsers of VerneMQ 2.1 answers. Malformed input raises ParseError naming the field.

Every parser here takes what the HTTP answer decoded to (or the raw text for Prometheus
metrics) and either returns typed values or raises :class:`ParseError` with the document,
the field path and what was expected.  Collectors turn a ParseError into an ``Unavailable``
fact; checks never see malformed input.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping


class ParseError(ValueError):
    def __init__(self, what: str, field: str, problem: str):
        super().__init__(f"{what}: {field}: {problem}")
        self.what, self.field, self.problem = what, field, problem


@dataclass(frozen=True)
class Member:
    node: str
    running: bool


def _table(doc: Any, what: str) -> list[dict]:
    if not isinstance(doc, dict) or doc.get("type") != "table" or not isinstance(doc.get("table"), list):
        raise ParseError(what, "table", 'expected {"type": "table", "table": [...]}')
    for i, row in enumerate(doc["table"]):
        if not isinstance(row, dict):
            raise ParseError(what, f"table[{i}]", "expected an object")
    return doc["table"]


def parse_cluster_show(doc: Any) -> list[Member]:
    """``/api/v1/cluster/show`` -> the members this node sees, with their Running flag."""
    what = "cluster/show"
    out = []
    for i, row in enumerate(_table(doc, what)):
        node, running = row.get("Node"), row.get("Running")
        if not isinstance(node, str) or "@" not in node:
            raise ParseError(what, f"table[{i}].Node", f"expected a node name, got {node!r}")
        if not isinstance(running, bool):
            raise ParseError(what, f"table[{i}].Running", f"expected true/false, got {running!r}")
        out.append(Member(node, running))
    return out


# --------------------------------------------------------------------------- helpers

def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _int(what: str, where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParseError(what, where, f"expected a whole number, got {_short(value)}")
    return value


def _str(what: str, where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ParseError(what, where, f"expected a string, got {_short(value)}")
    return value


def _node_name(what: str, where: str, value: Any) -> str:
    if not isinstance(value, str) or "@" not in value:
        raise ParseError(what, where, f"expected an Erlang node name like VerneMQ@10.0.0.1, got {_short(value)}")
    return value


# --------------------------------------------------------------------------- status.json

@dataclass(frozen=True)
class StatusListener:
    type: str
    status: str
    ip: str
    port: int


@dataclass(frozen=True)
class NodeStatus:
    """One node's entry of ``/status.json`` (vmq_info:node_status/0 as the status page shows it)."""

    node: str
    num_online: int
    num_offline: int
    version: str
    #: the cluster view of the node that produced the document: node -> reachable
    mystatus: Mapping[str, bool]
    listeners: tuple[StatusListener, ...]
    #: the remaining integer counters (msg_in, queue_in, num_subscriptions, ...)
    counters: Mapping[str, int] = field(default_factory=dict)

    @property
    def queues(self) -> int:
        """VerneMQ computes num_offline = queues - sockets, so queues = num_online + num_offline."""
        return self.num_online + self.num_offline


_STATUS_INTS = ("msg_in", "msg_out", "queue_in", "queue_out", "queue_drop", "queue_unhandled",
                "num_subscriptions", "num_retained", "matches_local", "matches_remote")


def parse_status_json(doc: Any) -> dict[str, NodeStatus]:
    """``/status.json`` -> {node name: NodeStatus}, in the document's order (the answering node first).

    The document is ``[{"Node@host": {...}, "Other@host": {...}}]``: one object whose keys are every
    node the answering node can reach. A node that is down is simply absent.
    """
    what = "status.json"
    if not isinstance(doc, list) or len(doc) != 1 or not isinstance(doc[0], dict):
        raise ParseError(what, "(top level)", 'expected a list with one object: [{"Node@host": {...}}]')
    if not doc[0]:
        raise ParseError(what, "[0]", "the object lists no node at all")
    out: dict[str, NodeStatus] = {}
    for name, entry in doc[0].items():
        where = f"[0].{name}"
        _node_name(what, f"[0] key {_short(name)}", name)
        if not isinstance(entry, dict):
            raise ParseError(what, where, f"expected an object, got {_short(entry)}")
        for key in ("num_online", "num_offline"):
            if key not in entry:
                raise ParseError(what, f"{where}.{key}", "missing")
        mystatus_raw = entry.get("mystatus", [])
        if not isinstance(mystatus_raw, list):
            raise ParseError(what, f"{where}.mystatus", f"expected a list of objects, got {_short(mystatus_raw)}")
        mystatus: dict[str, bool] = {}
        for i, item in enumerate(mystatus_raw):
            if not isinstance(item, dict):
                raise ParseError(what, f"{where}.mystatus[{i}]", f"expected an object, got {_short(item)}")
            for peer, up in item.items():
                _node_name(what, f"{where}.mystatus[{i}] key", peer)
                if not isinstance(up, bool):
                    raise ParseError(what, f"{where}.mystatus[{i}].{peer}", f"expected true/false, got {_short(up)}")
                mystatus[peer] = up
        listeners_raw = entry.get("listeners", [])
        if not isinstance(listeners_raw, list):
            raise ParseError(what, f"{where}.listeners", f"expected a list, got {_short(listeners_raw)}")
        listeners = []
        for i, item in enumerate(listeners_raw):
            lw = f"{where}.listeners[{i}]"
            if not isinstance(item, dict):
                raise ParseError(what, lw, f"expected an object, got {_short(item)}")
            listeners.append(StatusListener(
                type=_str(what, f"{lw}.type", item.get("type")),
                status=_str(what, f"{lw}.status", item.get("status")),
                ip=_str(what, f"{lw}.ip", item.get("ip")),
                port=_int(what, f"{lw}.port", item.get("port")),
            ))
        counters = {k: _int(what, f"{where}.{k}", entry[k]) for k in _STATUS_INTS if k in entry}
        version = entry.get("version", "")
        out[name] = NodeStatus(
            node=name,
            num_online=_int(what, f"{where}.num_online", entry["num_online"]),
            num_offline=_int(what, f"{where}.num_offline", entry["num_offline"]),
            version=_str(what, f"{where}.version", version),
            mystatus=mystatus,
            listeners=tuple(listeners),
            counters=counters,
        )
    return out


# --------------------------------------------------------------------------- health

@dataclass(frozen=True)
class Health:
    ok: bool
    status: str
    reasons: tuple[str, ...] = ()
    http_status: int | None = None


def parse_health(doc: Any, http_status: int | None = None, what: str = "health") -> Health:
    """``/health*`` -> Health. ``{"status":"OK"}`` (200) or ``{"status":"DOWN","reasons":[...]}`` (503)."""
    if not isinstance(doc, dict):
        raise ParseError(what, "(top level)", f'expected {{"status": "OK"}}, got {_short(doc)}')
    status = doc.get("status")
    if status not in ("OK", "DOWN"):
        raise ParseError(what, "status", f'expected "OK" or "DOWN", got {_short(status)}')
    reasons = doc.get("reasons", [])
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise ParseError(what, "reasons", f"expected a list of strings, got {_short(reasons)}")
    return Health(ok=status == "OK", status=status, reasons=tuple(reasons), http_status=http_status)


# --------------------------------------------------------------------------- listener/show

@dataclass(frozen=True)
class ListenerConns:
    type: str
    status: str
    address: str
    port: int
    active_conns: int
    all_conns: int


def parse_listener_show(doc: Any) -> list[ListenerConns]:
    """``/api/v1/listener/show`` -> listeners with ranch's active/all connection counts (port is a string there)."""
    what = "listener/show"
    out = []
    for i, row in enumerate(_table(doc, what)):
        where = f"table[{i}]"
        port = row.get("port")
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        out.append(ListenerConns(
            type=_str(what, f"{where}.type", row.get("type")),
            status=_str(what, f"{where}.status", row.get("status")),
            address=_str(what, f"{where}.address", row.get("address")),
            port=_int(what, f"{where}.port", port),
            active_conns=_int(what, f"{where}.active_conns", row.get("active_conns")),
            all_conns=_int(what, f"{where}.all_conns", row.get("all_conns")),
        ))
    return out


# --------------------------------------------------------------------------- Prometheus text

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


def _parse_value(what: str, where: str, text: str) -> float:
    low = text.lower()
    if low in ("+inf", "inf"):
        return math.inf
    if low == "-inf":
        return -math.inf
    if low == "nan":
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise ParseError(what, where, f"the value {_short(text)} is not a number") from None


def _parse_labels(what: str, where: str, line: str, i: int) -> tuple[dict[str, str], int]:
    """Labels from ``line[i] == '{'``; returns (labels, index after '}')."""
    labels: dict[str, str] = {}
    i += 1
    n = len(line)
    while True:
        while i < n and line[i] == " ":
            i += 1
        if i < n and line[i] == "}":
            return labels, i + 1
        m = _LABEL_NAME.match(line, i)
        if not m:
            raise ParseError(what, where, f"expected a label name at column {i + 1}")
        name = m.group(0)
        i = m.end()
        if line[i:i + 2] != '="':
            raise ParseError(what, where, f'expected =" after label {name}')
        i += 2
        buf = []
        while True:
            if i >= n:
                raise ParseError(what, where, f"label {name}: the value is not closed with a quote")
            c = line[i]
            if c == "\\":
                if i + 1 >= n or line[i + 1] not in _ESCAPES:
                    raise ParseError(what, where, f"label {name}: invalid escape in the value")
                buf.append(_ESCAPES[line[i + 1]])
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                buf.append(c)
                i += 1
        if name in labels:
            raise ParseError(what, where, f"label {name} appears twice")
        labels[name] = "".join(buf)
        while i < n and line[i] == " ":
            i += 1
        if i < n and line[i] == ",":
            i += 1
            continue
        if i < n and line[i] == "}":
            return labels, i + 1
        raise ParseError(what, where, f"expected , or }} after label {name}")


@dataclass
class Metrics:
    """Parsed Prometheus text: samples by metric name, plus the TYPE of each family."""

    samples: dict[str, list[tuple[dict[str, str], float]]] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)

    def __contains__(self, name: str) -> bool:
        return name in self.samples

    def total(self, name: str, **match: str) -> float | None:
        """Sum of every sample of ``name`` whose labels include ``match``; None if the metric is absent."""
        rows = self.samples.get(name)
        if rows is None:
            return None
        return sum(v for labels, v in rows if all(labels.get(k) == val for k, val in match.items()))

    def node_labels(self) -> set[str]:
        return {labels["node"] for rows in self.samples.values() for labels, _ in rows if "node" in labels}


def parse_metrics(text: str | bytes, what: str = "metrics") -> Metrics:
    """Prometheus text exposition format 0.0.4 (what VerneMQ's ``/metrics`` serves)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(what, f"byte {exc.start}", "the text is not UTF-8") from None
    if not isinstance(text, str):
        raise ParseError(what, "(top level)", f"expected text, got {type(text).__name__}")
    out = Metrics()
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        where = f"line {lineno}"
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 2 and parts[1] in ("HELP", "TYPE"):
                if len(parts) < 3 or not _METRIC_NAME.fullmatch(parts[2]):
                    raise ParseError(what, where, f"# {parts[1]} needs a metric name")
                if parts[1] == "TYPE":
                    kind = parts[3].strip() if len(parts) > 3 else ""
                    if kind not in ("counter", "gauge", "histogram", "summary", "untyped"):
                        raise ParseError(what, where, f"unknown metric type {_short(kind)}")
                    out.types[parts[2]] = kind
            continue
        m = _METRIC_NAME.match(line)
        if not m:
            raise ParseError(what, where, f"expected a metric name at the start of {_short(line)}")
        name = m.group(0)
        i = m.end()
        labels: dict[str, str] = {}
        if i < len(line) and line[i] == "{":
            labels, i = _parse_labels(what, f"{where} ({name})", line, i)
        rest = line[i:].split()
        if not rest or (i < len(line) and line[i] not in " \t"):
            raise ParseError(what, f"{where} ({name})", "expected a space and a value after the name")
        if len(rest) > 2:
            raise ParseError(what, f"{where} ({name})", "too many fields after the value")
        value = _parse_value(what, f"{where} ({name})", rest[0])
        if len(rest) == 2 and not re.fullmatch(r"-?\d+", rest[1]):
            raise ParseError(what, f"{where} ({name})", f"the timestamp {_short(rest[1])} is not an integer")
        out.samples.setdefault(name, []).append((labels, value))
    return out


# --------------------------------------------------------------------------- session/show rows

#: the columns the client validator asks for (``--node`` is needed to attribute a session to a node)
SESSION_COLUMNS = ("client_id", "node", "is_online", "clean_session", "statename", "offline_messages",
                   "peer_host", "peer_port")


@dataclass(frozen=True)
class SessionRow:
    client_id: str
    is_online: bool
    node: str | None = None
    clean_session: bool | None = None
    offline_messages: int | None = None
    peer_host: str | None = None
    peer_port: int | None = None


def session_row(row: Any, index: int, what: str = "session/show", client_id: str | None = None) -> SessionRow:
    """Validate one row of ``/api/v1/session/show`` (any column selection that includes client_id, is_online).

    ``client_id``: the value of a ``--client_id=X`` filter; VerneMQ then leaves the column out of the rows.
    """
    where = f"table[{index}]"
    if not isinstance(row, dict):
        raise ParseError(what, where, f"expected an object, got {_short(row)}")
    cid = row.get("client_id", client_id)
    if not isinstance(cid, str):
        raise ParseError(what, f"{where}.client_id", f"expected a string, got {_short(cid)}"
                         + ("" if "client_id" in row else " (ask for the column with --client_id)"))
    online = row.get("is_online")
    if not isinstance(online, bool):
        raise ParseError(what, f"{where}.is_online", f"expected true/false, got {_short(online)}"
                         + ("" if "is_online" in row else " (ask for the column with --is_online)"))
    node = row.get("node")
    if node is not None:
        _node_name(what, f"{where}.node", node)
    clean = row.get("clean_session")
    if clean is not None and not isinstance(clean, bool):
        raise ParseError(what, f"{where}.clean_session", f"expected true/false, got {_short(clean)}")
    offline_messages = row.get("offline_messages")
    if offline_messages is not None:
        _int(what, f"{where}.offline_messages", offline_messages)
    peer_host = row.get("peer_host")
    if peer_host is not None:
        _str(what, f"{where}.peer_host", peer_host)
    peer_port = row.get("peer_port")
    if peer_port is not None:
        _int(what, f"{where}.peer_port", peer_port)
    return SessionRow(cid, online, node, clean, offline_messages, peer_host, peer_port)


def parse_session_show(doc: Any, client_id: str | None = None) -> list[SessionRow]:
    """A whole ``/api/v1/session/show`` document (small answers; see sessions.py for streaming)."""
    return [session_row(r, i, client_id=client_id) for i, r in enumerate(_table(doc, "session/show"))]

