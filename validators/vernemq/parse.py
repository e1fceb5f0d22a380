"""Strict parsers of VerneMQ 2.1 answers. Malformed input raises ParseError naming the field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
