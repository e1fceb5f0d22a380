"""Helpers for the traffic tests: load the fixture release, mutate copies, run the traffic checks."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

from validators.collect import manifests
from validators.core.model import Report, Status
from validators.core.policy import Policy
from validators.core.registry import by_category
from validators.core.runner import run_checks

HERE = Path(__file__).parent
RELEASE = HERE / "manifests" / "release.yaml"


def load(path: Path = RELEASE, namespace: str = "mqtt") -> list[dict]:
    return manifests.normalize(manifests.read_documents([str(path)]), namespace)


def find(objs: list[dict], kind: str, name: str | None = None) -> dict:
    for o in objs:
        if o["kind"] == kind and (name is None or o["metadata"]["name"] == name):
            return o
    raise KeyError(f"{kind} {name}")


def mutated(objs: list[dict], fn: Callable[[list[dict]], Any]) -> list[dict]:
    out = copy.deepcopy(objs)
    fn(out)
    return out


def plan(objs: list[dict], release: str = "r", namespace: str = "mqtt", policy: dict | None = None,
         crds: Any = None) -> Report:
    facts = manifests.plan_facts(objs, manifests.scope(namespace, release, None, "plan"), crds)
    pol = Policy.parse(policy, "test-policy") if policy else Policy.default()
    return run_checks("plan", by_category("traffic"), facts, pol)


def bad(report: Report) -> dict[str, list[str]]:
    """check ID -> subjects with fail/warn/unknown."""
    out: dict[str, list[str]] = {}
    for r in report.results:
        if r.status in (Status.FAIL, Status.WARN, Status.UNKNOWN):
            out.setdefault(r.check, []).append(r.subject)
    return out


def statuses(report: Report, check_id: str) -> list[Status]:
    return [r.status for r in report.results if r.check == check_id]
