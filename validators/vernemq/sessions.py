"""Reconcile ``/api/v1/session/show`` answers of any size without holding them in memory.

VerneMQ's session/show answers for the whole cluster (every running node adds its own rows,
``--limit`` applies per node), so a cluster with a million sessions answers with a few hundred
megabytes of JSON.  :func:`reconcile_stream` reads that answer chunk by chunk, decodes one row
at a time with the C JSON scanner and keeps only what the checks need: per-node counts, the
nodes every online client id is attached to, and the client ids seen twice online.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from .parse import ParseError

WHAT = "session/show"
#: a single row longer than this is not a VerneMQ session row (guards memory on broken input)
MAX_ROW_CHARS = 1 << 20
_WS = re.compile(r"[ \t\n\r]*")
_NO_NODE = "?"


@dataclass
class NodeSessions:
    online: int = 0
    offline: int = 0
    offline_messages: int = 0

    @property
    def total(self) -> int:
        return self.online + self.offline


@dataclass
class SessionSummary:
    """What the checks need from a session/show answer. ``by_node`` keys are node names ("?" = no node column)."""

    rows: int = 0
    by_node: dict[str, NodeSessions] = field(default_factory=dict)
    #: client_id -> the nodes it is online on, only for ids online on more than one node
    duplicates: dict[str, list[str]] = field(default_factory=dict)
    #: the per-node limit the request used (None = VerneMQ's default of 100)
    limit: int | None = None
    #: True when the rows carried a node column
    has_node: bool = True

    def truncated_nodes(self) -> list[str]:
        """Nodes that returned exactly ``limit`` rows: their counts may be incomplete."""
        limit = 100 if self.limit is None else self.limit
        return sorted(n for n, c in self.by_node.items() if c.total >= limit)

    def node(self, name: str) -> NodeSessions:
        return self.by_node.get(name, NodeSessions())

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "limit": self.limit,
                "by_node": {n: {"online": c.online, "offline": c.offline, "offline_messages": c.offline_messages}
                            for n, c in sorted(self.by_node.items())},
                "duplicates": dict(sorted(self.duplicates.items()))}


class _Reader:
    """A str buffer over an iterator of byte chunks, decoded incrementally as UTF-8."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = iter(chunks)
        self._dec = codecs.getincrementaldecoder("utf-8")()
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.consumed = 0  # characters dropped from the front of buf (for error positions)

    def more(self) -> bool:
        if self.eof:
            return False
        try:
            chunk = next(self._chunks)
        except StopIteration:
            chunk, self.eof = b"", True
        try:
            text = self._dec.decode(chunk, final=self.eof)
        except UnicodeDecodeError:
            raise ParseError(WHAT, f"character {self.consumed + len(self.buf)}", "the answer is not UTF-8") from None
        if self.pos:
            self.consumed += self.pos
            self.buf = self.buf[self.pos:] + text
            self.pos = 0
        else:
            self.buf += text
        return True

    def peek(self) -> str:
        """The next non-blank character ('' at the end of the input), without consuming it."""
        while True:
            buf, pos = self.buf, self.pos
            if pos < len(buf):
                if buf[pos] in " \t\n\r":
                    pos = _WS.match(buf, pos).end()
                    self.pos = pos
                    if pos >= len(buf):
                        if not self.more():
                            return ""
                        continue
                return buf[pos]
            if not self.more():
                return ""

    def expect(self, chars: str, where: str) -> str:
        c = self.peek()
        if not c or c not in chars:
            got = "the end of the answer" if not c else repr(c)
            raise ParseError(WHAT, where, f"expected {' or '.join(repr(x) for x in chars)} "
                             f"at character {self.consumed + self.pos}, got {got}")
        self.pos += 1
        return c

    def value(self, decode, where: str) -> Any:
        self.peek()
        while True:
            try:
                obj, end = decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if len(self.buf) - self.pos > MAX_ROW_CHARS or not self.more():
                    raise ParseError(WHAT, where, f"invalid JSON at character {self.consumed + exc.pos}: {exc.msg}") \
                        from None
                continue
            # a number at the very end of the buffer may continue in the next chunk
            if end >= len(self.buf) and not self.eof and not isinstance(obj, (dict, list, str)):
                if self.more():
                    continue
            self.pos = end
            return obj


def reconcile_stream(chunks: Iterable[bytes], limit: int | None = None,
                     online_at: dict[str, str] | None = None) -> SessionSummary:
    """Stream a session/show answer (an iterable of byte chunks) into a :class:`SessionSummary`.

    ``online_at`` (client id -> node it is online on) may be shared between the answers of the two sides of
    a netsplit, so that a client id online on both sides is found (see :func:`merge_side`).
    Raises ParseError naming the row and field for malformed input (also for JSON nested too deeply
    for the decoder: a hostile answer must not end the run with a RecursionError).
    """
    try:
        return _reconcile(chunks, limit, online_at)
    except RecursionError:
        raise ParseError(WHAT, "table", "the JSON is nested too deeply to be read") from None


def _reconcile(chunks: Iterable[bytes], limit: int | None, online_at: dict[str, str] | None) -> SessionSummary:
    r = _Reader(chunks)
    decode = json.JSONDecoder().raw_decode
    summary = SessionSummary(limit=limit)
    by_node = summary.by_node
    online_at = {} if online_at is None else online_at
    dups = summary.duplicates
    saw_table = False
    doc_type = None
    r.expect("{", "(top level)")
    if r.peek() == "}":
        r.pos += 1
    else:
        while True:
            if r.peek() != '"':
                r.expect('"', "(top level key)")
            key = r.value(decode, "(top level key)")
            r.expect(":", f"{key}")
            if key == "table":
                saw_table = True
                r.expect("[", "table")
                index = 0
                if r.peek() == "]":
                    r.pos += 1
                else:
                    while True:
                        # fast path: whole rows already in the buffer, compact "row,row,..." as VerneMQ sends
                        index, closed = _fast_rows(r, decode, index, by_node, online_at, dups, summary)
                        if closed:
                            break
                        row = r.value(decode, f"table[{index}]")
                        _count(row, index, by_node, online_at, dups, summary)
                        index += 1
                        if r.expect(",]", f"table[{index}]") == "]":
                            break
                summary.rows = index
            else:
                val = r.value(decode, key)
                if key == "type":
                    doc_type = val
            if r.expect(",}", "(top level)") == "}":
                break
    if r.peek() != "":
        raise ParseError(WHAT, "(top level)", f"unexpected data after the document at character {r.consumed + r.pos}")
    if not saw_table or doc_type != "table":
        raise ParseError(WHAT, "table", 'expected {"type": "table", "table": [...]}')
    return summary


def _fast_rows(r: _Reader, decode, index: int, by_node: dict, online_at: dict, dups: dict,
               summary: SessionSummary) -> tuple[int, bool]:
    """Count the rows that are complete in the buffer (each followed by ',' or ']').

    Returns (next row index, True if the closing ']' was consumed). Anything unusual (whitespace,
    a row cut by the chunk boundary, an invalid row) is left to the careful path.
    """
    buf, pos = r.buf, r.pos
    n = len(buf)
    JSONDecodeError = json.JSONDecodeError
    tally = _tally
    while pos < n:
        try:
            row, end = decode(buf, pos)
        except JSONDecodeError:
            break
        if end >= n or type(row) is not dict:
            break
        sep = buf[end]
        if sep != "," and sep != "]":
            break
        cid = row.get("client_id")
        online = row.get("is_online")
        node = row.get("node")
        if type(cid) is not str or type(online) is not bool or type(node) is not str or "@" not in node:
            break
        om = row.get("offline_messages")
        if om is not None and type(om) is not int:
            break
        tally(by_node, online_at, dups, cid, node, online, om)
        index += 1
        pos = end + 1
        if sep == "]":
            r.pos = pos
            return index, True
    r.pos = pos
    return index, False


def _count(row: Any, index: int, by_node: dict, online_at: dict, dups: dict, summary: SessionSummary) -> None:
    if type(row) is not dict:
        raise ParseError(WHAT, f"table[{index}]", "expected an object")
    cid = row.get("client_id")
    online = row.get("is_online")
    if type(cid) is not str or type(online) is not bool:
        from .parse import session_row
        session_row(row, index)  # raises the precise error
    node = row.get("node", _NO_NODE)
    if node is _NO_NODE:
        summary.has_node = False
    elif type(node) is not str or "@" not in node:
        raise ParseError(WHAT, f"table[{index}].node", f"expected an Erlang node name, got {node!r:.60}")
    om = row.get("offline_messages")
    if om is not None and type(om) is not int:
        raise ParseError(WHAT, f"table[{index}].offline_messages", f"expected a whole number, got {om!r:.60}")
    _tally(by_node, online_at, dups, cid, node, online, om)


def _tally(by_node: dict, online_at: dict, dups: dict, cid: str, node: Any, online: bool, om: Any) -> None:
    """Count one valid row: per-node online/offline/offline_messages, and client ids online on two nodes."""
    counts = by_node.get(node)
    if counts is None:
        counts = by_node[node] = NodeSessions()
    if online:
        counts.online += 1
        prev = online_at.setdefault(cid, node)
        if prev != node:
            nodes = dups.setdefault(cid, [prev])
            if node not in nodes:
                nodes.append(node)
    else:
        counts.offline += 1
        if om:
            counts.offline_messages += om


def merge_side(summary: SessionSummary, other: SessionSummary, nodes: Iterable[str]) -> list[str]:
    """Add to ``summary`` the counts of ``nodes`` from ``other`` (another side of a netsplit, reconciled with the
    same ``online_at``), and ``other``'s duplicates. Returns the nodes added."""
    added = []
    for n in nodes:
        if n not in summary.by_node and n in other.by_node:
            summary.by_node[n] = other.by_node[n]
            added.append(n)
    for cid, where in other.duplicates.items():
        mine = summary.duplicates.setdefault(cid, [])
        mine.extend(n for n in where if n not in mine)
    summary.rows += sum(other.by_node[n].total for n in added)
    return added


def reconcile_bytes(data: bytes, limit: int | None = None, chunk: int = 1 << 20) -> SessionSummary:
    return reconcile_stream(_chunks(data, chunk), limit)


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]
