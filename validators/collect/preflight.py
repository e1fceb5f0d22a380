"""Facts for the upgrade pre-flight (checks in ``validators.checks.preflight``).

Two sources, both read-only:

* a targets file (VMs, the lab): each node's ``/status.json`` and ``/metrics`` over HTTP; the
  Kubernetes facts (pods, StatefulSet, PDB) are NotApplicable;
* a Kubernetes release (explicit context): pods, StatefulSet and PDBs from the API, and each
  pod's ``/status.json`` and ``/metrics`` through the API server's pod proxy
  (``/api/v1/namespaces/NS/pods/POD:8888/proxy/...``), so no port-forward and no extra Service;
* captured answers (``--replay DIR...``, the layout of ``tests/fixtures/vernemq/2.1.2/<phase>/``): the views
  from the last directory, ``/metrics`` from the first and the last (one directory = one sample).

``/metrics`` is read twice, ``interval`` seconds apart, to see whether netsplit counters rise.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping

from ..core.model import Facts, NotApplicable, Unavailable
from ..netpol.model import Selector
from ..vernemq.http import HttpFailure, JsonError, NodeHttp, loads
from .capture import CaptureDir
from .clients import PodProxyHttp
from .kubeclient import Kube, explain_error
from .targets import ClusterSpec

#: metrics the checks read (the exported name may carry a prefix such as ``vernemq_``)
METRICS = ("netsplit_detected", "netsplit_resolved", "queue_message_in", "queue_message_out",
           "queue_message_drop", "queue_message_expired", "queue_message_unhandled")
_LINE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text -> {short name: value summed over label sets} for the metrics in METRICS."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            continue
        name = m.group(1)
        for want in METRICS:
            if name == want or name.endswith("_" + want):
                try:
                    out[want] = out.get(want, 0.0) + float(m.group(3))
                except ValueError:
                    pass
                break
    return out


def parse_status(doc: Any) -> dict[str, dict[str, Any]]:
    """``/status.json`` (``[{node: {...}}]``) -> {node: view}. Raises ValueError on another shape."""
    if not isinstance(doc, list):
        raise ValueError("expected a JSON list")
    views: dict[str, dict[str, Any]] = {}
    for entry in doc:
        if not isinstance(entry, dict):
            raise ValueError("expected objects in the list")
        for node, info in entry.items():
            if not isinstance(info, dict):
                raise ValueError(f"{node}: expected an object")
            members: dict[str, bool] = {}
            for part in info.get("mystatus") or []:
                if isinstance(part, dict):
                    members.update({str(k): bool(v) for k, v in part.items()})
            views[node] = {"members": members, "version": info.get("version"),
                           "num_online": info.get("num_online"), "num_offline": info.get("num_offline")}
    return views


Getter = Callable[[str], str]  # path -> body text; raises HttpFailure/OSError/ValueError with a reason


def _node_facts(getters: Mapping[str, Getter], interval: float, sleep: Callable[[float], None]
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(preflight_views, preflight_metrics) from one getter per node/pod."""
    nodes: dict[str, dict[str, Any]] = {}
    unreachable: dict[str, str] = {}
    metrics: dict[str, Any] = {}
    first: dict[str, dict[str, float]] = {}
    for who, get in getters.items():
        try:
            seen = parse_status(loads(get("/status.json")))
        except JsonError as exc:  # not JSON, or nested too deeply (a hostile answer): this node only
            unreachable[who] = f"/status.json: the answer {exc}"
            continue
        except (HttpFailure, OSError, ValueError) as exc:
            unreachable[who] = getattr(exc, "reason", None) or str(exc)
            continue
        # a node reports itself and (through the cluster) its peers; a node's own entry wins
        for node, view in seen.items():
            nodes.setdefault(node, view)
        try:
            first[who] = parse_metrics(get("/metrics"))
        except (HttpFailure, OSError, ValueError) as exc:
            metrics[who] = {"error": getattr(exc, "reason", None) or str(exc)}
    if first and interval > 0:
        sleep(interval)
    for who, sample in first.items():
        try:
            metrics[who] = {"samples": [sample, parse_metrics(getters[who]("/metrics"))], "interval": interval}
        except (HttpFailure, OSError, ValueError) as exc:
            metrics[who] = {"error": getattr(exc, "reason", None) or str(exc)}
    return {"nodes": nodes, "unreachable": unreachable}, metrics


def _versions(views: Mapping[str, Any], fallback: Mapping[str, str], target: str | None) -> dict[str, Any]:
    current = {n: v.get("version") for n, v in views["nodes"].items() if v.get("version")}
    return {"current": current or dict(fallback), "target": target or None}


def collect_targets(spec: ClusterSpec, target_version: str | None, interval: float,
                    sleep: Callable[[float], None] = time.sleep) -> Facts:
    getters: dict[str, Getter] = {}
    for node in spec.nodes:
        if node.http:
            client = NodeHttp(node.http, spec.api_key)
            getters[node.name] = lambda path, c=client: c.get(path)[1].decode("utf-8", "replace")
    views, metrics = _node_facts(getters, interval, sleep)
    for node in spec.nodes:
        if not node.http:
            views["unreachable"][node.name] = "the targets file gives no http: URL for this node"
    na = NotApplicable("a targets-file run has no Kubernetes objects")
    return Facts({
        "preflight_views": views,
        "preflight_expected": {"count": len(spec.nodes), "names": [n.name for n in spec.nodes],
                               "source": "targets file"},
        "preflight_metrics": metrics,
        "preflight_pods": na, "preflight_workload": na, "preflight_pdbs": na,
        "preflight_versions": _versions(views, {}, target_version),
    })


def _selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A PDB's selector; a missing, empty or malformed one is taken to select none of these pods."""
    return isinstance(selector, Mapping) and bool(selector) and Selector.of(selector).matches(labels)


def _http_port(pod: Mapping[str, Any], default: int) -> int:
    for c in pod.get("spec", {}).get("containers", []):
        for p in c.get("ports") or []:
            if p.get("name") == "http" and p.get("containerPort"):
                return int(p["containerPort"])
    return default


def _image_version(pod: Mapping[str, Any]) -> str | None:
    containers = pod.get("spec", {}).get("containers", [])
    chosen = next((c for c in containers if c.get("name") == "vernemq"), containers[0] if containers else None)
    image = (chosen or {}).get("image", "")
    tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else None
    return tag


def _pod_ready(pod: Mapping[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions") or [])


def collect_kube(kube: Kube, namespace: str, selector: str, target_version: str | None, interval: float,
                 http_port: int = 8888, sleep: Callable[[float], None] = time.sleep) -> Facts:
    def get(path: str, what: str, query: dict[str, str] | None = None) -> Any:
        try:
            return kube.get_json(path, query)
        except Exception as exc:  # noqa: BLE001 - explain_error maps or re-raises
            return Unavailable(explain_error(exc, what))

    pods_doc = get(f"/api/v1/namespaces/{namespace}/pods", f"pods in {namespace}", {"labelSelector": selector})
    sts_doc = get(f"/apis/apps/v1/namespaces/{namespace}/statefulsets", f"statefulsets in {namespace}",
                  {"labelSelector": selector})
    pdb_doc = get(f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets", f"poddisruptionbudgets in {namespace}")

    facts = Facts()
    if isinstance(pods_doc, Unavailable):
        for name in ("preflight_pods", "preflight_views", "preflight_metrics", "preflight_expected",
                     "preflight_versions"):
            facts.set(name, pods_doc)
        pods: list[dict] = []
    else:
        pods = sorted(pods_doc.get("items") or [], key=lambda p: p["metadata"]["name"])
        facts.set("preflight_pods", [{"name": p["metadata"]["name"], "ready": _pod_ready(p),
                                      "phase": p.get("status", {}).get("phase"), "version": _image_version(p)}
                                     for p in pods])

    if isinstance(sts_doc, Unavailable):
        facts.set("preflight_workload", sts_doc)
        replicas = None
    else:
        items = sts_doc.get("items") or []
        if not items:
            facts.set("preflight_workload", Unavailable(f"no StatefulSet in {namespace} matches {selector}"))
            replicas = None
        else:
            s = items[0]
            replicas = s.get("spec", {}).get("replicas", 1)
            st = s.get("status", {})
            facts.set("preflight_workload", {
                "name": s["metadata"]["name"], "replicas": replicas, "ready_replicas": st.get("readyReplicas", 0),
                "current_revision": st.get("currentRevision"), "update_revision": st.get("updateRevision")})

    if isinstance(pdb_doc, Unavailable):
        facts.set("preflight_pdbs", pdb_doc)
    else:
        labels = [p["metadata"].get("labels") or {} for p in pods]
        chosen = [b for b in pdb_doc.get("items") or []
                  if labels and any(_selector_matches(b.get("spec", {}).get("selector"), lb) for lb in labels)]
        facts.set("preflight_pdbs", [{"name": b["metadata"]["name"],
                                      "disruptions_allowed": b.get("status", {}).get("disruptionsAllowed"),
                                      "expected_pods": b.get("status", {}).get("expectedPods"),
                                      "current_healthy": b.get("status", {}).get("currentHealthy")}
                                     for b in chosen])

    if not isinstance(pods_doc, Unavailable):
        def proxy_getter(pod: Mapping[str, Any]) -> Getter:
            proxy = PodProxyHttp(kube, namespace, pod["metadata"]["name"], _http_port(pod, http_port))
            return lambda path: proxy.get(path)[1].decode("utf-8", "replace")

        getters = {p["metadata"]["name"]: proxy_getter(p) for p in pods}
        views, metrics = _node_facts(getters, interval, sleep)
        facts.set("preflight_views", views)
        facts.set("preflight_metrics", metrics)
        count = replicas if replicas is not None else len(pods)
        facts.set("preflight_expected", {"count": count, "names": None,
                                         "source": "StatefulSet replicas" if replicas is not None else "pods"})
        facts.set("preflight_versions", _versions(
            views, {p["metadata"]["name"]: v for p in pods if (v := _image_version(p))}, target_version))
    return facts


def _capture_getter(cap: CaptureDir, prefix: str) -> Getter:
    files = {"/status.json": f"{prefix}_status.json", "/metrics": f"{prefix}_metrics.prom"}

    def get(path: str) -> str:
        got = cap.answer(files[path], path)
        if isinstance(got, Unavailable):
            raise HttpFailure(got.reason)
        code, body = got
        if code not in (None, 200):
            raise HttpFailure(f"GET {cap.url(files[path]) or path}: HTTP {code} in the capture", code)
        return body.decode("utf-8", "replace")

    return get


def _seconds_between(first: CaptureDir, last: CaptureDir) -> float:
    try:
        a, b = (datetime.fromisoformat(c.captured_at.replace("Z", "+00:00")) for c in (first, last))
    except (AttributeError, ValueError):
        return 0.0
    return max(0.0, (b - a).total_seconds())


def collect_replay(dirs: list[str | Path], target_version: str | None) -> Facts:
    """Pre-flight facts from captured answers: the node views of the last directory, and ``/metrics`` of the
    first and the last directory as the two samples (a single directory gives one sample)."""
    caps = [CaptureDir(Path(d)) for d in dirs]
    for cap in caps:
        if not cap.prefixes:
            sub = f" (it holds sub-folders: {', '.join(cap.subdirs)}; replay those)" if cap.subdirs else ""
            raise ValueError(f"{cap.path} holds no captured node answers (nodeN_status.json, ...){sub}")
    first, last = caps[0], caps[-1]
    named: dict[str, str | None] = {}
    known: set[str] = set()
    for pre in last.prefixes:
        try:
            seen = parse_status(loads(_capture_getter(last, pre)("/status.json")))
        except (HttpFailure, ValueError):
            named[pre] = None
            continue
        named[pre] = next(iter(seen), None)
        for node, view in seen.items():
            known.add(node)
            known.update(view["members"])
    getters: dict[str, Getter] = {}
    for pre in last.prefixes:
        host = last.host(pre)
        # a node that does not answer is named as the others know it (the member on its address)
        name = named[pre] or next((n for n in sorted(known) if host and n.split("@", 1)[-1] == host),
                                  f"{pre}@{host}" if host else pre)
        getters[name] = _capture_getter(last, pre)
    views, metrics = _node_facts(getters, 0.0, lambda _s: None)
    if len(caps) > 1:
        prefix_of = dict(zip(getters, last.prefixes))
        for who, m in metrics.items():
            if "samples" not in m:
                continue
            try:
                before = parse_metrics(_capture_getter(first, prefix_of[who])("/metrics"))
            except HttpFailure as exc:
                metrics[who] = {"error": f"{first.name}: {exc.reason}"}
                continue
            metrics[who] = {"samples": [before, m["samples"][-1]], "interval": _seconds_between(first, last)}
    else:
        for m in metrics.values():
            if "samples" in m:
                m["samples"] = m["samples"][-1:]
    na = NotApplicable("a replay of captured answers has no Kubernetes objects")
    return Facts({
        "preflight_views": views,
        "preflight_expected": {"count": None, "names": None, "source": "replay"},
        "preflight_metrics": metrics,
        "preflight_pods": na, "preflight_workload": na, "preflight_pdbs": na,
        "preflight_versions": _versions(views, {}, target_version),
    })
