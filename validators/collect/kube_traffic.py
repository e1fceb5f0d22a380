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


#: Gateway API (v1, standard channel). Two ways to read it:
#:  * scope "cluster" (an identity with cluster-wide reads): Gateways and routes cluster-wide (a route in the
#:    Gateway's namespace may point at the release's Service; the Gateway usually belongs to the platform team);
#:  * scope "namespace" (only Roles, e.g. the chart's validator without validator.rbac.clusterRead): routes in
#:    the release namespace and the extra route namespaces, then each Gateway the routes' parentRefs name with
#:    one namespaced GET.
#: ReferenceGrants are read in the release namespace either way (a grant lives with the object it lets others
#: reference).
GATEWAY_API = "gateway.networking.k8s.io/v1"
GATEWAY_GROUP = "gateway.networking.k8s.io"
GATEWAY_BASE = "/apis/gateway.networking.k8s.io/v1"
#: (fact, plural, kind)
GATEWAY_ROUTES = [("k8s.httproutes", "httproutes", "HTTPRoute"), ("k8s.tcproutes", "tcproutes", "TCPRoute"),
                  ("k8s.tlsroutes", "tlsroutes", "TLSRoute")]
GATEWAY_FACTS = ("k8s.gateways", *(f for f, _p, _k in GATEWAY_ROUTES), "k8s.referencegrants")
READ_SCOPES = ("cluster", "namespace")


def _not_served(kind: str) -> NotApplicable:
    return NotApplicable(f"the cluster serves no {kind} {GATEWAY_API} (Gateway API CRDs not installed, "
                         "or an older version): nothing to check")


def _forbidden(verb: str, plural: str, namespace: str | None, name: str | None = None) -> str:
    """The reason of a 403: the exact permission that is missing and where to grant it."""
    obj = f"{plural}.{GATEWAY_GROUP}" + (f" {name!r}" if name else "")
    if namespace is None:
        return (f"cannot {verb} {obj} cluster-wide: 403 Forbidden, the identity lacks RBAC permission "
                f"(verb {verb}, resource {plural}, API group {GATEWAY_GROUP}, cluster-wide). Fix: a ClusterRole "
                "with that rule (chart: validator.rbac.clusterRead=true), or read namespaced with "
                "--read-scope namespace (docs/rbac.md)")
    return (f"cannot {verb} {obj} in namespace {namespace}: 403 Forbidden, the identity lacks RBAC permission "
            f"(verb {verb}, resource {plural}, API group {GATEWAY_GROUP}, namespace {namespace}). Fix: a Role in "
            f"{namespace} with that rule, bound to the identity (chart: gateway.namespace / gateway.routeNamespace "
            "name the namespaces it grants; or validator.rbac.clusterRead=true; docs/rbac.md)")


def _gateway_get(kube: Kube, path: str, kind: str, what: str, forbidden: str, single: bool = False) -> Any:
    """GET a Gateway API list (or, ``single``, one object): the items (or the object); NotApplicable on 404
    for a list (the CRD is not installed), None on 404 for an object (it does not exist); Unavailable with
    ``forbidden`` as the reason on 403, with the usual reason on anything else."""
    from .kubeclient import fetch

    def call() -> Any:
        doc = get_json(kube, path)
        if single:
            if not isinstance(doc, dict) or not isinstance((doc.get("metadata") or {}).get("name"), str):
                raise ValueError("not an object")
            return {**doc, "apiVersion": doc.get("apiVersion") or GATEWAY_API, "kind": doc.get("kind") or kind}
        return _items(doc, GATEWAY_API, kind)
    return fetch(what, call, {404: None if single else _not_served(kind), 403: Unavailable(forbidden)})


def parent_gateways(routes: list[dict]) -> list[tuple[str, str]]:
    """(namespace, name) of every Gateway the routes' parentRefs name, in order, once each."""
    out: dict[tuple[str, str], None] = {}
    for r in routes:
        rns = (r.get("metadata") or {}).get("namespace") or ""
        for ref in (r.get("spec") or {}).get("parentRefs") or []:
            if not isinstance(ref, dict) or not ref.get("name"):
                continue
            if (ref.get("group") or GATEWAY_GROUP) != GATEWAY_GROUP or (ref.get("kind") or "Gateway") != "Gateway":
                continue
            out[(str(ref.get("namespace") or rns), str(ref["name"]))] = None
    return list(out)


def _gateway_facts_cluster(kube: Kube) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for fact, plural, kind in [("k8s.gateways", "gateways", "Gateway"), *GATEWAY_ROUTES]:
        values[fact] = _gateway_get(kube, f"{GATEWAY_BASE}/{plural}", kind, f"{plural} (cluster-wide)",
                                    _forbidden("list", plural, None))
    values["k8s.gateways.unread"] = {}
    return values


def _gateway_facts_namespaced(kube: Kube, namespace: str, route_namespaces: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    routes: list[dict] = []
    for fact, plural, kind in GATEWAY_ROUTES:
        got: Any = []
        for ns in route_namespaces:
            one = _gateway_get(kube, f"{GATEWAY_BASE}/namespaces/{ns}/{plural}", kind, f"{plural} in {ns}",
                               _forbidden("list", plural, ns))
            if not isinstance(one, list):
                got = one
                break
            got.extend(one)
        values[fact] = got
        if isinstance(got, list):
            routes.extend(got)
    gateways, unread = [], {}
    for gns, gname in parent_gateways(routes):
        gw = _gateway_get(kube, f"{GATEWAY_BASE}/namespaces/{gns}/gateways/{gname}", "Gateway",
                          f"Gateway {gns}/{gname}", _forbidden("get", "gateways", gns, gname), single=True)
        if isinstance(gw, dict):
            gateways.append(gw)
        elif isinstance(gw, Unavailable):
            unread[f"{gns}/{gname}"] = gw.reason
        # None: a 404, the Gateway does not exist (the checks say so)
    values["k8s.gateways"] = gateways
    values["k8s.gateways.unread"] = unread
    return values


def collect(kube: Kube, namespace: str, scope_fact: dict[str, Any], read_scope: str = "cluster",
            route_namespaces: list[str] | tuple[str, ...] = (), gateway_api: bool = True) -> Facts:
    """One read of everything the traffic checks need. Secrets are never read.

    ``read_scope`` "namespace" reads nothing cluster-wide: namespaces and nodes are not read (the checks
    that need namespace labels skip, saying why), and the Gateway API objects are read namespaced (routes in
    ``namespace`` and ``route_namespaces``, the routes' parent Gateways by name). ``gateway_api`` False:
    the release uses no Gateway API; nothing of it is read and its checks skip."""
    if read_scope not in READ_SCOPES:
        raise ValueError(f"read_scope {read_scope!r}")
    values: dict[str, Any] = {"traffic.scope": scope_fact, "traffic.live": True, "k8s.hook_pods": []}
    for fact, path, api_version, kind, what in LISTS:
        if read_scope == "namespace" and "{ns}" not in path:
            continue
        values[fact] = _list(kube, path.format(ns=namespace), api_version, kind, what.format(ns=namespace))
    if read_scope == "namespace":
        values["k8s.namespaces"] = NotApplicable(
            "not read: --read-scope namespace reads no cluster-scoped objects (the chart's validator without "
            "validator.rbac.clusterRead), and NetworkPolicy namespaceSelectors need the namespaces' labels. "
            "To run this check, grant get/list on namespaces cluster-wide (validator.rbac.clusterRead=true); "
            "`vmq-validate plan` checks the rendered NetworkPolicies before every deploy")
        values["k8s.nodes"] = NotApplicable("not read: --read-scope namespace reads no cluster-scoped objects")
    if not gateway_api:
        off = NotApplicable("the release uses no Gateway API (--no-gateway-api; chart: gateway.enabled=false and "
                            "validator.rbac.gatewayAPI=false): not read, nothing to check")
        values.update({f: off for f in GATEWAY_FACTS})
        values["k8s.gateways.unread"] = {}
    else:
        if read_scope == "cluster":
            values.update(_gateway_facts_cluster(kube))
        else:
            values.update(_gateway_facts_namespaced(kube, namespace, list(dict.fromkeys([namespace,
                                                                                          *route_namespaces]))))
        values["k8s.referencegrants"] = _gateway_get(
            kube, f"{GATEWAY_BASE}/namespaces/{namespace}/referencegrants", "ReferenceGrant",
            f"referencegrants in {namespace}", _forbidden("list", "referencegrants", namespace))
    values["k8s.gatewayapi"] = NotApplicable("live objects were validated against their CRD schemas by the API "
                                             "server when they were created")
    values["gatewayapi.crds"] = values["k8s.gatewayapi"]
    if read_scope == "namespace":  # another namespace's objects; its only reader (TRAFFIC-014) skips without labels
        values["k8s.apiserver"] = NotApplicable("not read: --read-scope namespace reads nothing outside the release's "
                                                "namespaces (the API server endpoints are in default)")
    else:
        slices = _list(kube, "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", "discovery.k8s.io/v1",
                       "EndpointSlice", "the API server endpoints (default/kubernetes endpointslices)",
                       {"labelSelector": "kubernetes.io/service-name=kubernetes"})
        values["k8s.apiserver"] = slices if isinstance(slices, Unavailable) else apiserver_endpoints(slices)
    for fact in ("k8s.pods", "k8s.workloads"):  # literal secret-looking env values -> redactor
        if isinstance(values[fact], list):
            register_secrets(values[fact])
    return Facts(values)
