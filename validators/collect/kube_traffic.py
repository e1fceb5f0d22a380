"""Live facts for the traffic checks: the same fact shapes as validators.collect.manifests, read
from the Kubernetes API with the `kubernetes` client (raw JSON GETs, read-only).

Every read goes through :func:`validators.collect.kubeclient.fetch`-style error mapping: a 401,
403, 404, timeout or malformed answer becomes an :class:`Unavailable` fact (checks report
``unknown`` with the reason), never a traceback.
"""

from __future__ import annotations

from typing import Any

from ..core.model import Facts, Unavailable
from .kubeclient import Kube
from .manifests import register_secrets


def get_json(kube: Kube, path: str, query: dict[str, str] | None = None) -> Any:
    """GET ``path`` (with ``query``) and return the decoded JSON (see :meth:`Kube.get_json`)."""
    return kube.get_json(path, query)


#: (fact, API path template, what — for messages); {ns} is the release namespace
LISTS = [
    ("k8s.services", "/api/v1/namespaces/{ns}/services", "v1", "Service", "services in {ns}"),
    ("k8s.pods", "/api/v1/namespaces/{ns}/pods", "v1", "Pod", "pods in {ns}"),
    ("k8s.ingresses", "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses", "networking.k8s.io/v1", "Ingress",
     "ingresses in {ns}"),
    ("k8s.networkpolicies", "/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies", "networking.k8s.io/v1",
     "NetworkPolicy", "networkpolicies in {ns}"),
    ("k8s.endpointslices", "/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices", "discovery.k8s.io/v1",
     "EndpointSlice", "endpointslices in {ns}"),
    ("k8s.workloads", "/apis/apps/v1/namespaces/{ns}/statefulsets", "apps/v1", "StatefulSet", "statefulsets in {ns}"),
    ("k8s.namespaces", "/api/v1/namespaces", "v1", "Namespace", "namespaces (cluster-wide)"),
    ("k8s.nodes", "/api/v1/nodes", "v1", "Node", "nodes (cluster-wide)"),
]


def _items(doc: Any, api_version: str, kind: str) -> list[dict]:
    """The items of a list answer with kind/apiVersion filled in (the API leaves them out of list
    items; manifests have them), so that checks see the same shapes in both modes."""
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise ValueError("not a list answer")
    out = []
    for item in doc["items"]:
        if not isinstance(item, dict) or not isinstance((item.get("metadata") or {}).get("name"), str):
            raise ValueError("list item without metadata.name")
        item = dict(item)
        item.setdefault("apiVersion", api_version)
        item.setdefault("kind", kind)
        out.append(item)
    return out


def _list(kube: Kube, path: str, api_version: str, kind: str, what: str, query: dict[str, str] | None = None):
    from .kubeclient import fetch

    return fetch(what, lambda: _items(get_json(kube, path, query), api_version, kind))


def apiserver_endpoints(slices: list[dict]) -> list[dict[str, Any]]:
    """default/kubernetes EndpointSlices -> [{"ip", "port"}] (where NetworkPolicy egress must allow)."""
    out = []
    for sl in slices:
        port = next((p.get("port") for p in sl.get("ports") or [] if p.get("name") in ("https", None)), None)
        for ep in sl.get("endpoints") or []:
            for addr in ep.get("addresses") or []:
                if port:
                    out.append({"ip": addr, "port": int(port)})
    return out


def collect(kube: Kube, namespace: str, scope_fact: dict[str, Any]) -> Facts:
    """One read of everything the traffic checks need. Secrets are never read."""
    values: dict[str, Any] = {"traffic.scope": scope_fact, "traffic.live": True, "k8s.hook_pods": []}
    for fact, path, api_version, kind, what in LISTS:
        values[fact] = _list(kube, path.format(ns=namespace), api_version, kind, what.format(ns=namespace))
    slices = _list(kube, "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", "discovery.k8s.io/v1",
                   "EndpointSlice", "the API server endpoints (default/kubernetes endpointslices)",
                   {"labelSelector": "kubernetes.io/service-name=kubernetes"})
    values["k8s.apiserver"] = slices if isinstance(slices, Unavailable) else apiserver_endpoints(slices)
    for fact in ("k8s.pods", "k8s.workloads"):  # literal secret-looking env values -> redactor
        if isinstance(values[fact], list):
            register_secrets(values[fact])
    return Facts(values)
