"""Live facts for the traffic checks: the same fact shapes as validators.collect.manifests, read
from the Kubernetes API with the `kubernetes` client (raw JSON GETs, read-only).

Every read goes through :func:`validators.collect.kubeclient.fetch`-style error mapping: a 401,
403, 404, timeout or malformed answer becomes an :class:`Unavailable` fact (checks report
``unknown`` with the reason), never a traceback.
"""

from __future__ import annotations

from typing import Any

from ..core.model import Facts, NotApplicable, Unavailable
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


#: Gateway API (v1, standard channel): routes and Gateways cluster-wide (a route in the Gateway's namespace
#: may point at the release's Service; the Gateway usually belongs to the platform team), ReferenceGrants in
#: the release namespace (a grant lives with the object it lets others reference)
GATEWAY_API = "gateway.networking.k8s.io/v1"
GATEWAY_LISTS = [
    ("k8s.gateways", "/apis/gateway.networking.k8s.io/v1/gateways", "Gateway", "gateways (cluster-wide)"),
    ("k8s.httproutes", "/apis/gateway.networking.k8s.io/v1/httproutes", "HTTPRoute", "httproutes (cluster-wide)"),
    ("k8s.tcproutes", "/apis/gateway.networking.k8s.io/v1/tcproutes", "TCPRoute", "tcproutes (cluster-wide)"),
    ("k8s.tlsroutes", "/apis/gateway.networking.k8s.io/v1/tlsroutes", "TLSRoute", "tlsroutes (cluster-wide)"),
    ("k8s.referencegrants", "/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/referencegrants", "ReferenceGrant",
     "referencegrants in {ns}"),
]


def _gateway_list(kube: Kube, path: str, kind: str, what: str) -> Any:
    """Like :func:`_list`, but a 404 means the CRD is not installed: NotApplicable (the Gateway API
    checks skip with that reason) instead of unknown."""
    from kubernetes.client.exceptions import ApiException

    from .kubeclient import explain_error

    try:
        return _items(get_json(kube, path), GATEWAY_API, kind)
    except ApiException as exc:
        if exc.status == 404:
            return NotApplicable(f"the cluster serves no {kind} {GATEWAY_API} (Gateway API CRDs not installed, "
                                 "or an older version): nothing to check")
        return Unavailable(explain_error(exc, what))
    except Exception as exc:  # noqa: BLE001 - mapped to a reason like every other read
        return Unavailable(explain_error(exc, what))


def collect(kube: Kube, namespace: str, scope_fact: dict[str, Any]) -> Facts:
    """One read of everything the traffic checks need. Secrets are never read."""
    values: dict[str, Any] = {"traffic.scope": scope_fact, "traffic.live": True, "k8s.hook_pods": []}
    for fact, path, api_version, kind, what in LISTS:
        values[fact] = _list(kube, path.format(ns=namespace), api_version, kind, what.format(ns=namespace))
    for fact, path, kind, what in GATEWAY_LISTS:
        values[fact] = _gateway_list(kube, path.format(ns=namespace), kind, what.format(ns=namespace))
    values["k8s.gatewayapi"] = NotApplicable("live objects were validated against their CRD schemas by the API "
                                             "server when they were created")
    values["gatewayapi.crds"] = values["k8s.gatewayapi"]
    slices = _list(kube, "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", "discovery.k8s.io/v1",
                   "EndpointSlice", "the API server endpoints (default/kubernetes endpointslices)",
                   {"labelSelector": "kubernetes.io/service-name=kubernetes"})
    values["k8s.apiserver"] = slices if isinstance(slices, Unavailable) else apiserver_endpoints(slices)
    for fact in ("k8s.pods", "k8s.workloads"):  # literal secret-looking env values -> redactor
        if isinstance(values[fact], list):
            register_secrets(values[fact])
    return Facts(values)
