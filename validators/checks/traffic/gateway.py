"""Traffic checks on Gateway API entry points (gateway.networking.k8s.io/v1): HTTPRoute for MQTT over
WebSocket, TCPRoute for MQTT, TLSRoute for MQTTS (TLS passthrough by SNI), the Gateways they attach
to, ReferenceGrants, the routes' status (live) and the gateway data plane under the NetworkPolicies.
And the warning that ingress-nginx is retired.

A route belongs to the release when it carries the release's selector labels or one of its
backendRefs names a Service that selects the release's VerneMQ pods; other routes of the cluster
are not looked at.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from ...core.model import Finding, failed, passed, skipped, unknown, warned
from ...core.registry import check
from ...crd import validate_object
from ...crd.cel import duration
from ...netpol.model import Selector
from .common import (WS_LISTENERS, annotations, keepalive, labels, listener_port, name_of, namespace,
                     service_port_listener, vmq_pods, vmq_services)
from .ingress import NGINX, covers

GROUP = "gateway.networking.k8s.io"
ROUTE_FACTS = {"HTTPRoute": "k8s.httproutes", "TCPRoute": "k8s.tcproutes", "TLSRoute": "k8s.tlsroutes"}
#: Service listeners each route kind may reach (docs/contracts.md listener names)
ROUTE_LISTENERS = {"HTTPRoute": ("ws", "wss"), "TCPRoute": ("mqtt", "mqtts"), "TLSRoute": ("mqtts", "wss")}
#: the listener protocols each route kind attaches to (Gateway API v1 listener protocols)
ROUTE_PROTOCOLS = {"HTTPRoute": ("HTTP", "HTTPS"), "TCPRoute": ("TCP",), "TLSRoute": ("TLS",)}
GATEWAY_SOURCES_ANNOTATION = "vernemq-toolkit/gateway-sources"

ROUTES = ("k8s.httproutes", "k8s.tcproutes", "k8s.tlsroutes", "k8s.services", "k8s.pods", "traffic.scope")
GW = ROUTES + ("k8s.gateways",)


# ---------------------------------------------------------------------------------------------
# helpers (pure)


def _map(v: Any) -> Mapping[str, Any]:
    return v if isinstance(v, Mapping) else {}


def _seq(v: Any) -> list:
    return v if isinstance(v, list) else []


def spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _map(obj.get("spec"))


def all_routes(facts: Mapping[str, Any]) -> list[dict]:
    out = []
    for kind, fact in ROUTE_FACTS.items():
        for r in facts[fact]:
            out.append(r if r.get("kind") == kind else {**r, "kind": kind})
    return out


def backend_refs(route: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any], Mapping[str, Any]]]:
    """[(where, rule, backendRef)]."""
    out = []
    for i, rule in enumerate(_seq(spec(route).get("rules"))):
        for j, b in enumerate(_seq(_map(rule).get("backendRefs"))):
            out.append((f"spec.rules[{i}].backendRefs[{j}]", _map(rule), _map(b)))
    return out


def backend_target(route: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(group, kind, namespace, name) a backendRef points at (defaults as the API server applies them)."""
    return (b.get("group") or "", b.get("kind") or "Service", b.get("namespace") or namespace(route),
            str(b.get("name")))


def release_routes(facts: Mapping[str, Any]) -> list[dict]:
    sel = facts["traffic.scope"]["selector"]
    svcs = {(namespace(s), s["metadata"]["name"]) for s in vmq_services(facts)}
    out = []
    scope_ns = facts["traffic.scope"].get("namespace")
    for r in all_routes(facts):
        targets = [backend_target(r, b) for _w, _rule, b in backend_refs(r)]
        # labels count only for a route of the release namespace or one pointing into it (live lists are
        # cluster-wide; a release of the same name elsewhere is not ours)
        mine = bool(sel) and all(labels(r).get(k) == v for k, v in sel.items()) and (
            not scope_ns or namespace(r) == scope_ns or any(ns == scope_ns for _g, _k, ns, _n in targets))
        for g, k, ns, name in targets:
            if g == "" and k == "Service" and (ns, name) in svcs:
                mine = True
        if mine:
            out.append(r)
    return out


def parent_key(route: Mapping[str, Any], ref: Mapping[str, Any]) -> tuple[str, str, str, str]:
    return (ref.get("group") or GROUP, ref.get("kind") or "Gateway", ref.get("namespace") or namespace(route),
            str(ref.get("name")))


def find_gateway(facts: Mapping[str, Any], ns: str, name: str) -> dict | None:
    for g in facts["k8s.gateways"]:
        if namespace(g) == ns and (g.get("metadata") or {}).get("name") == name:
            return g
    return None


def unread_gateway(facts: Mapping[str, Any], ns: str, name: str) -> str | None:
    """Why Gateway ns/name could not be read (live, namespaced reads: e.g. 403 on its GET), else None."""
    return _map(facts.get("k8s.gateways.unread")).get(f"{ns}/{name}")


class Undecided(str):
    """A listener_problem that cannot be decided from the facts (namespace labels not read)."""


def conditions(obj: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(c.get("type")): c for c in _seq(obj.get("conditions")) if isinstance(c, Mapping)}


def _ns_labels(facts: Mapping[str, Any], ns: str) -> dict[str, str]:
    for n in facts.get("k8s.namespaces") or [] if isinstance(facts.get("k8s.namespaces"), list) else []:
        md = n.get("metadata") or {}
        if md.get("name") == ns:
            out = dict(md.get("labels") or {})
            out.setdefault("kubernetes.io/metadata.name", ns)
            return out
    return {"kubernetes.io/metadata.name": ns}


def _hosts_intersect(a: str, b: str) -> bool:
    """Gateway API hostname matching: equal, or a `*.` wildcard covering at least one more label."""
    if a == b:
        return True
    for wild, host in ((a, b), (b, a)):
        if wild.startswith("*.") and host.endswith(wild[1:]) and len(host) > len(wild) - 1:
            return True
    return False


def listener_problem(facts: Mapping[str, Any], route: Mapping[str, Any], gw: Mapping[str, Any],
                     ref: Mapping[str, Any], lis: Mapping[str, Any]) -> str | None:
    """Why listener ``lis`` of ``gw`` does not take ``route`` (None: it does)."""
    kind = route["kind"]
    proto = str(lis.get("protocol"))
    if proto not in ROUTE_PROTOCOLS[kind]:
        return f"protocol {proto} does not carry a {kind} (needs {' or '.join(ROUTE_PROTOCOLS[kind])})"
    if kind == "TLSRoute":
        mode = _map(lis.get("tls")).get("mode") or "Terminate"
        if mode != "Passthrough":
            return (f"TLS mode {mode}: the gateway would decrypt and send plain bytes to the broker's TLS "
                    "listener (needs mode Passthrough)")
    if kind in ("HTTPRoute", "TLSRoute") and lis.get("hostname"):
        hosts = [str(h) for h in _seq(spec(route).get("hostnames"))]
        if hosts and not any(_hosts_intersect(h, str(lis["hostname"])) for h in hosts):
            return f"listener hostname {lis['hostname']} matches none of the route's hostnames {hosts}"
    if ref.get("port") is not None and ref.get("port") != lis.get("port"):
        return f"parentRef port {ref.get('port')} is not the listener's port {lis.get('port')}"
    allowed = _map(lis.get("allowedRoutes"))
    kinds = [_map(k) for k in _seq(allowed.get("kinds"))]
    if kinds and not any((k.get("group") or GROUP) == GROUP and k.get("kind") == kind for k in kinds):
        return f"allowedRoutes.kinds {[k.get('kind') for k in kinds]} excludes {kind}"
    nsp = _map(allowed.get("namespaces"))
    frm = nsp.get("from") or "Same"
    if frm == "Same" and namespace(route) != namespace(gw):
        return f"allowedRoutes.namespaces.from Same: only routes of namespace {namespace(gw)} may attach"
    if frm == "Selector":
        sel = _map(nsp.get("selector"))
        keys = {str(k) for k in _map(sel.get("matchLabels"))} | {str(_map(e).get("key"))
                                                                 for e in _seq(sel.get("matchExpressions"))}
        if not isinstance(facts.get("k8s.namespaces"), list) and keys - {"kubernetes.io/metadata.name"}:
            why = getattr(facts.get("k8s.namespaces"), "reason", "namespaces not collected")
            return Undecided(f"allowedRoutes.namespaces.selector uses labels of namespace {namespace(route)} "
                             f"({sorted(keys)}), which were not read ({why})")
        if not Selector.of(sel).matches(_ns_labels(facts, namespace(route))):
            return f"allowedRoutes.namespaces.selector does not select namespace {namespace(route)}"
    if frm == "None":
        return "allowedRoutes.namespaces.from None: no route may attach"
    return None


def validate_options(options: Mapping[str, Mapping[str, Any]]) -> None:
    """InputError (exit 2, before collecting) for TRAFFIC-023 `gateway_sources` that are not sources."""
    from .netpol import endpoint_spec

    values = options.get("TRAFFIC-023", {}).get("gateway_sources")
    if values is not None and not isinstance(values, list):
        from ...core.errors import InputError

        raise InputError("--policy: checks.TRAFFIC-023.options.gateway_sources", "must be a list.",
                         'write e.g. ["envoy-gateway-system/app.kubernetes.io/component=proxy"].')
    for v in values or []:
        try:
            text = str(v).format(gateway_namespace="ns", gateway_name="gw")
        except (KeyError, IndexError, ValueError):
            from ...core.errors import InputError

            raise InputError("--policy: checks.TRAFFIC-023.options.gateway_sources", f"{v!r} has an unknown "
                             "placeholder.", "use only {gateway_namespace} and {gateway_name}.") from None
        endpoint_spec(text, {}, "--policy: checks.TRAFFIC-023.options.gateway_sources")


# ---------------------------------------------------------------------------------------------


@check("TRAFFIC-016", title="Gateway API objects are valid under the CRD schemas the cluster installs",
       severity="error", category="traffic", needs=("k8s.gateways", "k8s.gatewayapi", "gatewayapi.crds"),
       remedy="Fix the field named in the evidence (the API server would reject the object on apply), or render "
              "the apiVersion the installed CRDs serve (TCPRoute/TLSRoute: gateway.networking.k8s.io/v1 since "
              "Gateway API v1.5).")
def gateway_api_schema(facts, conf) -> Iterable[Finding]:
    """Each Gateway API object of the manifests (Gateway, HTTPRoute, TCPRoute, TLSRoute,
    ReferenceGrant, ...) is checked as the API server would on create, against the CRDs in
    `--crd-dir` (the files you apply to the cluster): the apiVersion must be served, defaults are
    applied, then the `openAPIV3Schema` (types, required fields, patterns, enums, lengths, unknown
    fields rejected as with strict field validation, `x-kubernetes-list-type` set/map uniqueness),
    then the `x-kubernetes-validations` CEL rules this toolkit implements (validators/crd/cel.py;
    the ones it does not are counted in the evidence and listed in docs/traffic.md). Offline only:
    a live object was validated by the API server when it was created."""
    crds = facts["gatewayapi.crds"]
    for obj in facts["k8s.gatewayapi"]:
        problems = validate_object(obj, crds)
        if problems is None:
            continue
        unchecked = crds.unchecked_rules({str(obj.get("kind"))})
        ev = {"apiVersion": obj.get("apiVersion"), "cel_rules_not_checked": len(unchecked)}
        if problems:
            yield failed(name_of(obj), f"{len(problems)} schema violation(s): {problems[0]}",
                         problems=[str(p) for p in problems[:20]], **ev)
        else:
            yield passed(name_of(obj), f"valid under the {obj.get('kind')} CRD", **ev)


@check("TRAFFIC-017", title="Each route attaches to a Gateway listener whose protocol fits the route kind",
       severity="error", category="traffic", needs=GW,
       remedy="Point parentRefs at an existing Gateway and listener (sectionName) that takes the route: HTTP/HTTPS "
              "for the WebSocket HTTPRoute, TCP for the MQTT TCPRoute, TLS with tls.mode Passthrough for the MQTTS "
              "TLSRoute; the listener's allowedRoutes must admit the route's kind and namespace (chart: "
              "gateway.name/namespace and gateway.<route>.sectionName).")
def route_parent(facts, conf) -> Iterable[Finding]:
    """A route only carries traffic once a Gateway listener accepts it. Each parentRef of each
    release route must name a Gateway that exists and, among its listeners (the one named by
    `sectionName`, else all), one whose protocol fits the route (HTTPRoute: HTTP or HTTPS; TCPRoute:
    TCP; TLSRoute: TLS in mode Passthrough, since the broker terminates MQTTS itself), whose hostname
    (if any) matches one of the route's hostnames (HTTPRoute, TLSRoute: the SNI), whose port
    matches a parentRef `port`, and whose `allowedRoutes` admit the route's kind and namespace
    (from Same, All or a namespace Selector). Offline, a Gateway that is not in the manifests (the
    platform team's) is skipped: `vmq-validate cluster` resolves it. Live, a Gateway the identity may
    not read, or a namespace Selector on labels that were not read (no cluster-wide namespace read),
    is `unknown` with the missing permission."""
    live = facts.get("traffic.live") is True
    for route in release_routes(facts):
        refs = [_map(r) for r in _seq(spec(route).get("parentRefs"))]
        if not refs:
            yield failed(name_of(route), "the route has no parentRefs: no Gateway carries it")
            continue
        for i, ref in enumerate(refs):
            g, k, ns, name = parent_key(route, ref)
            subject = f"{name_of(route)} spec.parentRefs[{i}]"
            ev = {"gateway": f"{ns}/{name}", "sectionName": ref.get("sectionName")}
            if (g, k) != (GROUP, "Gateway"):
                yield skipped(subject, f"parent {k}.{g} is not a Gateway (mesh attachment): not checked", **ev)
                continue
            gw = find_gateway(facts, ns, name)
            if gw is None:
                if unread_gateway(facts, ns, name):
                    yield unknown(subject, unread_gateway(facts, ns, name), **ev)
                elif live:
                    yield failed(subject, f"Gateway {ns}/{name} does not exist", **ev)
                else:
                    yield skipped(subject, f"Gateway {ns}/{name} is not in the manifests (owned elsewhere): "
                                  "`vmq-validate cluster` checks it live", **ev)
                continue
            listeners = [_map(x) for x in _seq(spec(gw).get("listeners"))]
            section = ref.get("sectionName")
            if section:
                listeners = [x for x in listeners if x.get("name") == section]
                if not listeners:
                    names = [x.get("name") for x in _seq(spec(gw).get("listeners")) if isinstance(x, Mapping)]
                    yield failed(subject, f"Gateway {ns}/{name} has no listener named {section!r}",
                                 listeners=names, **ev)
                    continue
            why = {str(x.get("name")): listener_problem(facts, route, gw, ref, x) for x in listeners}
            ok = [n for n, p in why.items() if p is None]
            undecided = [n for n, p in why.items() if isinstance(p, Undecided)]
            ev["listeners"] = {n: p or "accepts the route" for n, p in why.items()}
            if ok:
                lis = next(x for x in listeners if x.get("name") == ok[0])
                yield passed(subject, f"attaches to listener {ok[0]} ({lis.get('protocol')} {lis.get('port')}) of "
                             f"Gateway {ns}/{name}", **ev)
            elif undecided:
                yield unknown(subject, f"cannot tell whether Gateway {ns}/{name} takes the route: "
                              + "; ".join(f"{n}: {why[n]}" for n in undecided), **ev)
            else:
                yield failed(subject, f"no listener of Gateway {ns}/{name} takes a {route['kind']}: "
                             + "; ".join(f"{n}: {p}" for n, p in why.items()), **ev)


@check("TRAFFIC-018", title="Route backends are the client Service, on a port that reaches the right listener",
       severity="error", category="traffic", needs=ROUTES,
       remedy="backendRefs: kind Service, the release's client Service (chart: <release>-vernemq), and its port number "
              "for the listener: ws (8080) for the HTTPRoute, mqtt (1883) for the TCPRoute, mqtts (8883) for the TLSRoute.")
def route_backends(facts, conf) -> Iterable[Finding]:
    """Every backendRef of a release route must name a non-headless Service that selects the release's
    VerneMQ pods, with a `port` that is one of the Service's ports, and that port must lead to a
    listener the route kind can carry: HTTPRoute to `ws` (or `wss`), TCPRoute to `mqtt` (or `mqtts`,
    bytes passed through), TLSRoute to `mqtts` (or `wss`). A route to 1883 from an HTTPRoute
    accepts the TCP connection and drops the WebSocket upgrade; a TLSRoute to 1883 sends TLS to a
    plain listener."""
    pods = vmq_pods(facts)
    clients = {(namespace(s), s["metadata"]["name"]): s for s in vmq_services(facts)
               if (s.get("spec") or {}).get("clusterIP") != "None"}
    for route in release_routes(facts):
        refs = backend_refs(route)
        if not refs:
            yield failed(name_of(route), "the route has no backendRefs: the gateway answers 500 / resets")
            continue
        want = ROUTE_LISTENERS[route["kind"]]
        for where, _rule, b in refs:
            g, k, ns, name = backend_target(route, b)
            subject = f"{name_of(route)} {where}"
            ev = {"backend": f"{k} {ns}/{name}", "port": b.get("port"), "expected_listeners": list(want)}
            if (g, k) != ("", "Service"):
                yield failed(subject, f"backend {k}.{g or 'core'} is not a Service", **ev)
                continue
            svc = clients.get((ns, name))
            if svc is None:
                yield failed(subject, f"Service {ns}/{name} is not a client Service of the release",
                             client_services=sorted(f"{a}/{b_}" for a, b_ in clients), **ev)
                continue
            ports = [_map(p) for p in _seq(spec(svc).get("ports"))]
            sp = next((p for p in ports if p.get("port") == b.get("port")), None)
            if b.get("port") is None or sp is None:
                yield failed(subject, f"Service {ns}/{name} has no port {b.get('port')}",
                             service_ports=[f"{p.get('name')}:{p.get('port')}" for p in ports], **ev)
                continue
            lname = service_port_listener(sp, pods)
            ev["listener"] = lname
            if lname not in want:
                yield failed(subject, f"port {b.get('port')} reaches the {lname} listener; a {route['kind']} needs "
                             f"{' or '.join(want)}", **ev)
            else:
                yield passed(subject, f"Service {ns}/{name} port {b.get('port')} reaches the {lname} listener", **ev)


def _path_covers(match: Mapping[str, Any], ws_path: str) -> bool:
    path = _map(match.get("path")) if "path" in match else {"type": "PathPrefix", "value": "/"}
    typ, value = path.get("type") or "PathPrefix", str(path.get("value") or "/")
    if typ == "RegularExpression":
        try:
            return re.fullmatch(value, ws_path) is not None
        except re.error:
            return False
    return covers(value, "Exact" if typ == "Exact" else "Prefix", ws_path)


@check("TRAFFIC-019", title="WebSocket HTTPRoute: the broker's WS path is routed, no timeout below the keepalive",
       severity="error", category="traffic", needs=ROUTES, defaults={"ws_path": "/mqtt", "keepalive_seconds": 300},
       remedy="Match path /mqtt (PathPrefix or Exact) to the ws Service port, and set rules[].timeouts.request (and "
              "backendRequest) to \"0s\" (no timeout) or at least the MQTT keepalive (chart: "
              "gateway.ws.requestTimeoutSeconds: 0).")
def ws_route(facts, conf) -> Iterable[Finding]:
    """VerneMQ serves MQTT over WebSocket on `/mqtt` (option `ws_path`). Some rule of each release
    HTTPRoute that reaches the ws/wss listener must match that path (a rule without matches matches
    every path; RegularExpression is tried as a full match) — otherwise clients get 404 from the
    gateway. A WebSocket is one long HTTP request: a `timeouts.request` or `timeouts.backendRequest`
    shorter than the MQTT keepalive cuts idle-but-healthy clients (every connection is closed when
    the timeout expires). "0s" disables the timeout. Keepalive: the route's annotation
    `vernemq-toolkit/mqtt-keepalive-seconds`, else option `keepalive_seconds`. Unset timeouts leave
    the implementation's default, reported in the evidence."""
    pods = vmq_pods(facts)
    svcs = {(namespace(s), s["metadata"]["name"]): s for s in vmq_services(facts)}
    ws_path = conf["ws_path"]
    for route in release_routes(facts):
        if route["kind"] != "HTTPRoute":
            continue
        ka, ka_src, ka_problem = keepalive(route, conf)
        if ka_problem:
            yield failed(name_of(route), ka_problem, remedy="Write the keepalive annotation as whole seconds.")
            continue
        ws_rules = []
        for i, rule in enumerate(_seq(spec(route).get("rules"))):
            rule = _map(rule)
            for b in _seq(rule.get("backendRefs")):
                _g, _k, ns, name = backend_target(route, _map(b))
                svc = svcs.get((ns, name))
                sp = next((p for p in _seq(spec(svc).get("ports")) if _map(p).get("port") == _map(b).get("port")),
                          None) if svc else None
                if sp and service_port_listener(sp, pods) in WS_LISTENERS:
                    ws_rules.append((i, rule))
                    break
        if not ws_rules:
            continue  # TRAFFIC-018 reports backends that miss the WebSocket listener
        routed = [i for i, rule in ws_rules
                  if not _seq(rule.get("matches")) or any(_path_covers(_map(m), ws_path) for m in rule["matches"])]
        problems = []
        timeouts = {}
        for i, rule in ws_rules:
            t = _map(rule.get("timeouts"))
            for key in ("request", "backendRequest"):
                if t.get(key) is None:
                    continue
                timeouts[f"rules[{i}].{key}"] = t[key]
                secs = duration(t[key])
                if 0 < secs < ka:
                    problems.append(f"rules[{i}].timeouts.{key} {t[key]} < keepalive {ka}s")
        ev = {"ws_path": ws_path, "keepalive_seconds": ka, "keepalive_from": ka_src,
              "timeouts": timeouts or "not set: the implementation's default applies"}
        if not routed:
            problems.insert(0, f"no rule to the WebSocket listener matches {ws_path}: clients get 404")
        if problems:
            yield failed(name_of(route), "; ".join(problems), **ev)
        else:
            yield passed(name_of(route), f"{ws_path} routed (rules {routed}), no timeout below keepalive {ka}s", **ev)


def _granted(facts: Mapping[str, Any], route: Mapping[str, Any], target_ns: str, kind: str, name: str) -> str | None:
    for rg in facts["k8s.referencegrants"]:
        if namespace(rg) != target_ns:
            continue
        frm = any((_map(f).get("group") or "") == GROUP and _map(f).get("kind") == route["kind"]
                  and _map(f).get("namespace") == namespace(route) for f in _seq(spec(rg).get("from")))
        to = any((_map(t).get("group") or "") == "" and _map(t).get("kind") == kind
                 and (not _map(t).get("name") or _map(t).get("name") == name) for t in _seq(spec(rg).get("to")))
        if frm and to:
            return name_of(rg)
    return None


@check("TRAFFIC-020", title="Cross-namespace backend references have a ReferenceGrant", severity="error",
       category="traffic", needs=ROUTES + ("k8s.referencegrants",),
       remedy="Create a ReferenceGrant in the Service's namespace: from {group: gateway.networking.k8s.io, kind: "
              "<route kind>, namespace: <route namespace>} to {group: \"\", kind: Service, name: <client Service>} "
              "(the chart renders one when gateway.routeNamespace differs from the release namespace).")
def reference_grants(facts, conf) -> Iterable[Finding]:
    """A route may only send traffic to a Service in another namespace when that namespace grants it:
    a ReferenceGrant there whose `from` names the route's kind and namespace and whose `to` names
    the Service (or every Service). Without it the implementation sets ResolvedRefs False
    (RefNotPermitted) and the backend gets no traffic. Live, grants are read in the release
    namespace (where the client Service lives)."""
    for route in release_routes(facts):
        cross = []
        for where, _rule, b in backend_refs(route):
            g, k, ns, name = backend_target(route, b)
            if ns != namespace(route):
                cross.append((where, g, k, ns, name))
        if not cross:
            yield passed(name_of(route), "every backend is in the route's namespace: no grant needed")
            continue
        for where, g, k, ns, name in cross:
            grant = _granted(facts, route, ns, k, name) if g == "" else None
            subject = f"{name_of(route)} {where}"
            ev = {"route_namespace": namespace(route), "backend": f"{k} {ns}/{name}"}
            if grant:
                yield passed(subject, f"granted by {grant}", grant=grant, **ev)
            else:
                yield failed(subject, f"{k} {ns}/{name} is in another namespace and no ReferenceGrant in {ns} "
                             f"admits {route['kind']} from {namespace(route)}", **ev)


def _cond_text(c: Mapping[str, Any]) -> str:
    return f"{c.get('type')}={c.get('status')} ({c.get('reason')}: {c.get('message') or 'no message'})"


@check("TRAFFIC-021", title="Live: each route is Accepted with ResolvedRefs by its Gateway's controller",
       severity="error", category="traffic", needs=ROUTES + ("traffic.live",),
       remedy="Read the controller's message in the evidence: NotAllowedByListeners (allowedRoutes), NoMatchingParent "
              "(sectionName/port), RefNotPermitted (ReferenceGrant), BackendNotFound (Service/port), "
              "UnsupportedValue. Fix the route or the Gateway; a parent without status means no controller "
              "serves its GatewayClass.")
def route_status(facts, conf) -> Iterable[Finding]:
    """The controller of the Gateway writes one `status.parents[]` entry per parentRef, with conditions
    `Accepted` (the listener took the route) and `ResolvedRefs` (every backendRef resolved and is
    permitted). Anything but both True means the route carries no traffic (or not to every
    backend); the controller's reason and message are the evidence. A parentRef without an entry
    has not been reconciled: no controller for the GatewayClass, or the controller is down."""
    for route in release_routes(facts):
        statuses = [_map(p) for p in _seq(_map(route.get("status")).get("parents"))]
        for i, ref in enumerate(_map(r) for r in _seq(spec(route).get("parentRefs"))):
            key = parent_key(route, ref)
            subject = f"{name_of(route)} spec.parentRefs[{i}]"
            st = next((s for s in statuses if parent_key(route, _map(s.get("parentRef"))) == key
                       and (_map(s.get("parentRef")).get("sectionName") or "") == (ref.get("sectionName") or "")),
                      None)
            ev: dict[str, Any] = {"gateway": f"{key[2]}/{key[3]}", "sectionName": ref.get("sectionName")}
            if st is None:
                yield failed(subject, f"no controller reported status for parent {key[2]}/{key[3]}: not reconciled "
                             "(no controller for the GatewayClass, or it is down)",
                             controllers=[s.get("controllerName") for s in statuses], **ev)
                continue
            conds = conditions(st)
            ev["controller"] = st.get("controllerName")
            ev["conditions"] = [_cond_text(c) for c in conds.values()]
            bad = [conds.get(t) or {"type": t, "status": "Unknown", "reason": "Missing",
                                    "message": "condition not reported"}
                   for t in ("Accepted", "ResolvedRefs") if (conds.get(t) or {}).get("status") != "True"]
            if bad:
                yield failed(subject, "; ".join(_cond_text(c) for c in bad), **ev)
            else:
                yield passed(subject, f"Accepted and ResolvedRefs by {st.get('controllerName')}", **ev)


@check("TRAFFIC-022", title="Live: the Gateways the routes use are Programmed, and so are their listeners",
       severity="error", category="traffic", needs=GW + ("traffic.live",),
       remedy="Read the Gateway's conditions in the evidence (e.g. AddressNotAssigned, Invalid certificateRefs, "
              "a GatewayClass without controller) and fix the Gateway or ask its owner; the routes carry no traffic "
              "until it is Programmed.")
def gateway_programmed(facts, conf) -> Iterable[Finding]:
    """A Gateway that is not `Programmed` has no data plane (no address, no proxy configuration):
    every route attached to it is dead even when Accepted. For each Gateway a release route points
    at: status.conditions Accepted and Programmed True, and for the listener named by the route's
    sectionName (or all listeners) the listener status conditions Programmed and ResolvedRefs not
    False (an invalid certificate reference shows here)."""
    seen: dict[tuple[str, str], set[str]] = {}
    for route in release_routes(facts):
        for ref in (_map(r) for r in _seq(spec(route).get("parentRefs"))):
            g, k, ns, name = parent_key(route, ref)
            if (g, k) == (GROUP, "Gateway"):
                seen.setdefault((ns, name), set()).add(str(ref.get("sectionName") or ""))
    for (ns, name), sections in sorted(seen.items()):
        gw = find_gateway(facts, ns, name)
        subject = f"Gateway {ns}/{name}"
        if gw is None and unread_gateway(facts, ns, name):
            yield unknown(subject, unread_gateway(facts, ns, name))
            continue
        if gw is None:
            yield failed(subject, "does not exist (the routes point at it)")
            continue
        st = _map(gw.get("status"))
        conds = conditions(st)
        problems = [_cond_text(conds.get(t) or {"type": t, "status": "Unknown", "reason": "Missing",
                                                "message": "condition not reported"})
                    for t in ("Accepted", "Programmed") if (conds.get(t) or {}).get("status") != "True"]
        lstat = {str(_map(x).get("name")): conditions(_map(x)) for x in _seq(st.get("listeners"))}
        wanted = sorted(s for s in sections if s) or sorted(lstat)
        for s in wanted:
            for t in ("Programmed", "ResolvedRefs", "Accepted"):
                c = lstat.get(s, {}).get(t)
                if c is not None and c.get("status") == "False":
                    problems.append(f"listener {s}: {_cond_text(c)}")
        ev = {"conditions": [_cond_text(c) for c in conds.values()], "addresses": [
            _map(a).get("value") for a in _seq(st.get("addresses"))], "listeners": wanted,
            "gatewayClassName": spec(gw).get("gatewayClassName")}
        if problems:
            yield failed(subject, "; ".join(problems), **ev)
        else:
            yield passed(subject, "Accepted and Programmed" + (f", listeners {wanted} ready" if wanted else ""), **ev)


@check("TRAFFIC-023", title="NetworkPolicies let the gateway's data plane reach the routed MQTT/WebSocket ports",
       severity="error", category="traffic", needs=ROUTES + ("k8s.networkpolicies", "k8s.namespaces"),
       defaults={"gateway_sources": ["{gateway_namespace}/gateway.networking.k8s.io/gateway-name={gateway_name}"]},
       remedy="Add an ingress rule to the VerneMQ NetworkPolicy for the routed ports (ws 8080, mqtt 1883, mqtts 8883) "
              "from the gateway's data-plane pods: namespaceSelector of their namespace plus podSelector of their labels, "
              "or an ipBlock for implementations outside the pod network (AGC subnet, Cilium nodes) "
              "(chart: gateway.networkPolicySources).")
def gateway_reach(facts, conf) -> Iterable[Finding]:
    """The gateway's data-plane pods open the connections to VerneMQ, so under restricted client
    sources they need their own ingress allowance. Sources: the route annotation
    `vernemq-toolkit/gateway-sources` (rendered by the chart from gateway.networkPolicySources; CIDR
    or `NAMESPACE/key=value,...`, separated by ";"), else option `gateway_sources` (default: pods
    labelled `gateway.networking.k8s.io/gateway-name=<Gateway>` in the Gateway's namespace, as Istio
    and others label them; `{gateway_namespace}`/`{gateway_name}` are filled in). Each source must
    reach every VerneMQ pod on the container port of each listener the route's backends reach,
    under the evaluator of validators/netpol (egress of the source, ingress of the pod)."""
    from .netpol import _deciders, build, endpoint_spec

    ev_, vmq, nsl = build(facts)
    if not vmq:
        return
    pods = vmq_pods(facts)
    svcs = {(namespace(s), s["metadata"]["name"]): s for s in vmq_services(facts)}
    for route in release_routes(facts):
        listeners = set()
        for _w, _rule, b in backend_refs(route):
            _g, _k, ns, name = backend_target(route, b)
            svc = svcs.get((ns, name))
            sp = next((p for p in _seq(spec(svc).get("ports")) if _map(p).get("port") == b.get("port")), None) \
                if svc else None
            lname = service_port_listener(sp, pods) if sp else None
            if lname:
                listeners.add(lname)
        if not listeners:
            continue
        raw = annotations(route).get(GATEWAY_SOURCES_ANNOTATION)
        if raw:
            names = [s for s in str(raw).replace(" ", "").split(";") if s]
            where = f"annotation {GATEWAY_SOURCES_ANNOTATION}"
        else:
            names = []
            for ref in (_map(r) for r in _seq(spec(route).get("parentRefs"))):
                _g, _k, gns, gname = parent_key(route, ref)
                names += [str(t).format(gateway_namespace=gns, gateway_name=gname) for t in conf["gateway_sources"]]
            where = "policy TRAFFIC-023 options.gateway_sources"
        for label in dict.fromkeys(names):
            src = endpoint_spec(label, nsl, f"{name_of(route)} {where}: {label}")
            for lname in sorted(listeners):
                port = listener_port(pods, lname)
                verdicts = [ev_.check(src, dst, port, "TCP") for dst in vmq]
                denied = [v for v in verdicts if not v.allowed]
                subject = f"{name_of(route)}: {label} -> {lname} {port}/TCP"
                ev = {"sources_from": where, "pods": len(vmq), "denied_pods": [v.dst for v in denied],
                      "policies": _deciders(verdicts)}
                if denied:
                    ev["why"] = [denied[0].egress.explain(), denied[0].ingress.explain()]
                    yield failed(subject, f"the gateway data plane is denied to {len(denied)} of {len(vmq)} "
                                 "VerneMQ pod(s)", **ev)
                else:
                    yield passed(subject, f"allowed to all {len(vmq)} VerneMQ pod(s)", **ev)


@check("TRAFFIC-024", title="ingress-nginx is retired: Ingresses that depend on it", severity="warning",
       category="traffic", needs=("k8s.ingresses",), defaults={"nginx_classes": ["nginx"]},
       remedy="Move the entry point to the Gateway API: gateway.enabled=true (profile charts/vernemq/ci/"
              "70-gateway-values.yaml; on AKS 71-aks-agc-values.yaml), then switch off the Ingress "
              "(ingress.enabled=false).")
def ingress_nginx_retired(facts, conf) -> Iterable[Finding]:
    """Kubernetes SIG Network ended the maintenance of ingress-nginx on 2026-03-24: no releases and no
    security fixes since. Every Ingress of class `nginx` (option `nginx_classes`; spec.ingressClassName
    or the legacy `kubernetes.io/ingress.class` annotation) or carrying `nginx.ingress.kubernetes.io/*`
    annotations depends on it and gets a warning; its successor for MQTT over WebSocket, MQTT and
    MQTTS is the Gateway API (HTTPRoute, TCPRoute, TLSRoute)."""
    for ing in facts["k8s.ingresses"]:
        cls = (ing.get("spec") or {}).get("ingressClassName") or annotations(ing).get("kubernetes.io/ingress.class")
        nginx_ann = sorted(k for k in annotations(ing) if k.startswith(NGINX))
        ev = {"ingress_class": cls, "nginx_annotations": len(nginx_ann)}
        if cls in conf["nginx_classes"] or nginx_ann:
            why = f"ingress class {cls}" if cls in conf["nginx_classes"] else f"{len(nginx_ann)} ingress-nginx annotations"
            yield warned(name_of(ing), f"depends on ingress-nginx ({why}), which is retired: no releases and no "
                         "security fixes since 2026-03-24", **ev)
        else:
            yield passed(name_of(ing), f"not ingress-nginx (class {cls or 'none'}, no ingress-nginx annotations)", **ev)
