"""Workload pod templates -> the pods they would run (offline plan mode).

StatefulSet ``name`` with ``replicas: 3`` -> pods ``name-0``, ``name-1``, ``name-2`` (the real names).
Deployment / ReplicaSet -> ``name-0`` … ``name-{replicas-1}`` (the real names carry a hash; these are
stand-ins with the same labels and ports). DaemonSet, Job and CronJob -> one representative pod
``name-0`` (the number of nodes or completions is not known offline). ``replicas: 0`` gives no pods.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

WORKLOAD_KINDS = ("StatefulSet", "Deployment", "ReplicaSet", "DaemonSet", "Job", "CronJob")


def pod_template(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec") or {})
    t = spec.get("template")
    return t if isinstance(t, Mapping) else None


def replicas(obj: Mapping[str, Any]) -> int:
    kind = obj.get("kind")
    if kind in ("StatefulSet", "Deployment", "ReplicaSet"):
        r = (obj.get("spec") or {}).get("replicas", 1)
        return r if isinstance(r, int) and not isinstance(r, bool) and r >= 0 else 1
    return 1


def expand(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The pods a workload object would create (empty for other kinds)."""
    if obj.get("kind") not in WORKLOAD_KINDS:
        return []
    t = pod_template(obj)
    if t is None:
        return []
    md = obj.get("metadata") or {}
    tmd = t.get("metadata") or {}
    out = []
    for i in range(replicas(obj)):
        out.append({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{md.get('name')}-{i}",
                "namespace": md.get("namespace") or "default",
                "labels": dict(tmd.get("labels") or {}),
                "annotations": dict(tmd.get("annotations") or {}),
                "ownerReferences": [{"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
                                     "name": md.get("name")}],
            },
            "spec": copy.deepcopy(dict(t.get("spec") or {})),
            "status": {},
        })
    return out
