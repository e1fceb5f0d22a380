"""A small local Kubernetes API server for tests: real paths, real JSON shapes, injectable faults.

It serves plain dict objects (the JSON the API server would return) over HTTP on a random
loopback port, from a thread, with the stdlib only. It is what the live collectors are tested
against; no cluster is needed.

    from tests.fakekube import FakeKube

    with FakeKube([svc, pod, netpol], token="t0ken") as kube:     # objects as manifests/API dicts
        cfg = kube.write_kubeconfig(tmp_path / "kubeconfig", context="fake")
        kube.fault("/api/v1/namespaces/vmq/secrets", status=403)   # per-path faults
        kube.fault("/apis/networking.k8s.io/v1/namespaces/vmq/networkpolicies", delay=3)
        kube.fault("/api/v1/nodes", malformed=True)
        ... run the collector with --kubeconfig cfg --context fake ...
        kube.requests     # [(method, path, query dict)] in arrival order

API (that is all of it):

``FakeKube(objects=(), token="fake-token")``
    ``objects`` are dicts with ``apiVersion``, ``kind``, ``metadata.name`` (and ``metadata.namespace``
    for namespaced kinds; default ``"default"``). ``token=None`` disables authentication.
``add(*objects)`` / ``remove(kind, name, namespace=None)``
    change the served objects at any time (thread-safe).
``fault(path, *, status=None, delay=0.0, malformed=False, message=None, times=None)``
    for requests whose path (without query) equals ``path`` — or matches it when ``path`` is a
    compiled ``re.Pattern`` — wait ``delay`` seconds first (to provoke client timeouts), then answer
    ``status`` as a Kubernetes ``Status`` object, or a truncated, malformed JSON body when
    ``malformed``; otherwise the normal answer. ``times`` limits how often the fault fires.
    ``clear_faults()`` removes them.
``start()`` / ``stop()`` or ``with FakeKube(...) as kube``; ``url`` is ``http://127.0.0.1:PORT``.
``write_kubeconfig(path, context="fake", namespace="default", token=None)``
    writes a kubeconfig whose context ``context`` points at this server (bearer token = the
    server's token unless ``token`` is given, e.g. a wrong one to get 401) and returns the path.
``requests``
    list of ``(method, path, query)`` tuples received (query: dict of str -> str).
``objects_from_yaml(text)``
    the objects of a multi-document YAML string (e.g. a ``helm template`` render), to serve them.

Served paths (GET only; anything else is 405):
    /version, /api, /apis                                            (minimal discovery)
    /api/v1/{plural}                                                 all namespaces / cluster-scoped
    /api/v1/namespaces/{ns}/{plural}[/{name}]                        namespaced
    /api/v1/{plural}/{name}                                          cluster-scoped single GET
    /apis/{group}/{version}/{plural}                                 all namespaces
    /apis/{group}/{version}/namespaces/{ns}/{plural}[/{name}]
Kinds: core/v1 Pod, Service, Namespace, Node, Secret, Endpoints, ConfigMap, ServiceAccount;
discovery.k8s.io/v1 EndpointSlice; networking.k8s.io/v1 NetworkPolicy, Ingress; apps/v1
StatefulSet, Deployment, DaemonSet; policy/v1 PodDisruptionBudget; gateway.networking.k8s.io/v1 Gateway,
HTTPRoute, TCPRoute, TLSRoute, ReferenceGrant (``gateway_status`` / ``route_status`` build their
``status`` as the controllers write it).

List answers have the API server's shape: ``{"kind": "PodList", "apiVersion": "v1", "metadata":
{"resourceVersion": ...}, "items": [...]}`` where items carry no ``kind``/``apiVersion`` (like the
real server). ``labelSelector`` (``=``, ``==``, ``!=``, ``in``, ``notin``, ``key``, ``!key``) and
``fieldSelector`` (``metadata.name``, ``metadata.namespace``, any dotted path with ``=``/``!=``)
are honoured. A namespace that has objects, or a Namespace object, exists; a namespaced single GET
of an absent object is a 404 ``Status``. Errors are ``Status`` objects with ``code`` and ``reason``.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import parse_qs, urlsplit

import yaml

#: (group, version, plural) -> (kind, namespaced)
RESOURCES: dict[tuple[str, str, str], tuple[str, bool]] = {
    ("", "v1", "pods"): ("Pod", True),
    ("", "v1", "services"): ("Service", True),
    ("", "v1", "namespaces"): ("Namespace", False),
    ("", "v1", "nodes"): ("Node", False),
    ("", "v1", "secrets"): ("Secret", True),
    ("", "v1", "endpoints"): ("Endpoints", True),
    ("", "v1", "configmaps"): ("ConfigMap", True),
    ("", "v1", "serviceaccounts"): ("ServiceAccount", True),
    ("discovery.k8s.io", "v1", "endpointslices"): ("EndpointSlice", True),
    ("networking.k8s.io", "v1", "networkpolicies"): ("NetworkPolicy", True),
    ("networking.k8s.io", "v1", "ingresses"): ("Ingress", True),
    ("apps", "v1", "statefulsets"): ("StatefulSet", True),
    ("apps", "v1", "deployments"): ("Deployment", True),
    ("apps", "v1", "daemonsets"): ("DaemonSet", True),
    ("policy", "v1", "poddisruptionbudgets"): ("PodDisruptionBudget", True),
    # Gateway API v1 (standard channel v1.6): objects carry `status` as the controllers write it
    ("gateway.networking.k8s.io", "v1", "gateways"): ("Gateway", True),
    ("gateway.networking.k8s.io", "v1", "httproutes"): ("HTTPRoute", True),
    ("gateway.networking.k8s.io", "v1", "tcproutes"): ("TCPRoute", True),
    ("gateway.networking.k8s.io", "v1", "tlsroutes"): ("TLSRoute", True),
    ("gateway.networking.k8s.io", "v1", "referencegrants"): ("ReferenceGrant", True),
}
_BY_KIND = {(g, kind): (v, plural, ns) for (g, v, plural), (kind, ns) in RESOURCES.items()}

_HTTP_REASON = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
                405: "MethodNotAllowed", 409: "Conflict", 429: "TooManyRequests",
                500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}


def status_body(code: int, message: str) -> dict[str, Any]:
    """A Kubernetes ``Status`` object as the API server sends it for errors."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": _HTTP_REASON.get(code, "Unknown"), "code": code}


# ---------------------------------------------------------------------------------------------
# selectors (the API server's label selector grammar, enough of it for real clients)

_SET_RE = re.compile(r"^\s*([A-Za-z0-9._/-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_selector(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(text: str) -> list[tuple[str, str, set[str]]]:
    """``"a=b,c in (x,y),!d"`` -> [(key, op, values)]; raises ValueError on bad syntax."""
    reqs = []
    for part in _split_selector(text):
        m = _SET_RE.match(part)
        if m:
            reqs.append((m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}))
        elif "!=" in part:
            k, v = part.split("!=", 1)
            reqs.append((k.strip(), "!=", {v.strip()}))
        elif "==" in part:
            k, v = part.split("==", 1)
            reqs.append((k.strip(), "=", {v.strip()}))
        elif "=" in part:
            k, v = part.split("=", 1)
            reqs.append((k.strip(), "=", {v.strip()}))
        elif part.startswith("!"):
            reqs.append((part[1:].strip(), "!", set()))
        elif re.match(r"^[A-Za-z0-9._/-]+$", part):
            reqs.append((part, "exists", set()))
        else:
            raise ValueError(f"unable to parse requirement: {part!r}")
    return reqs


def labels_match(labels: dict[str, str], reqs: list[tuple[str, str, set[str]]]) -> bool:
    for key, op, values in reqs:
        have = key in labels
        val = labels.get(key)
        if op == "=" and (not have or val not in values):
            return False
        if op == "!=" and have and val in values:
            return False
        if op == "in" and (not have or val not in values):
            return False
        if op == "notin" and have and val in values:
            return False
        if op == "exists" and not have:
            return False
        if op == "!" and have:
            return False
    return True


def _dotted(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def fields_match(obj: dict, text: str) -> bool:
    for part in _split_selector(text):
        neg = "!=" in part
        k, v = re.split(r"!=|==|=", part, maxsplit=1)
        got = _dotted(obj, k.strip())
        got = "" if got is None else str(got)
        if (got == v.strip()) == neg:
            return False
    return True


# ---------------------------------------------------------------------------------------------


@dataclass
class _Fault:
    path: Any
    status: int | None
    delay: float
    malformed: bool
    message: str | None
    times: int | None

    def matches(self, path: str) -> bool:
        if isinstance(self.path, re.Pattern):
            return bool(self.path.fullmatch(path))
        return self.path == path


def _group_version(api_version: str) -> tuple[str, str]:
    if "/" in api_version:
        g, v = api_version.split("/", 1)
        return g, v
    return "", api_version


class FakeKube:
    """See the module docstring."""

    def __init__(self, objects: Iterable[dict] = (), token: str | None = "fake-token"):
        self.token = token
        self._lock = threading.Lock()
        self._objects: dict[tuple[str, str, str, str], dict] = {}  # (group, kind, ns, name) -> obj
        self._faults: list[_Fault] = []
        self._rv = 100
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.add(*objects)

    # -- objects --------------------------------------------------------------------------
    def add(self, *objects: dict) -> None:
        with self._lock:
            for obj in objects:
                if not obj:
                    continue
                group, version = _group_version(obj.get("apiVersion", ""))
                kind = obj.get("kind")
                if (group, kind) not in _BY_KIND:
                    raise ValueError(f"FakeKube does not serve {obj.get('apiVersion')} {kind}")
                namespaced = _BY_KIND[(group, kind)][2]
                obj = copy.deepcopy(obj)
                md = obj.setdefault("metadata", {})
                if namespaced:
                    md.setdefault("namespace", "default")
                else:
                    md.pop("namespace", None)
                self._rv += 1
                md.setdefault("resourceVersion", str(self._rv))
                md.setdefault("uid", f"00000000-0000-4000-8000-{self._rv:012d}")
                self._objects[(group, kind, md.get("namespace", ""), md["name"])] = obj

    def remove(self, kind: str, name: str, namespace: str | None = None) -> None:
        with self._lock:
            for key in [k for k in self._objects if k[1] == kind and k[3] == name
                        and (namespace is None or k[2] == namespace)]:
                del self._objects[key]

    # -- faults ---------------------------------------------------------------------------
    def fault(self, path: Any, *, status: int | None = None, delay: float = 0.0, malformed: bool = False,
              message: str | None = None, times: int | None = None) -> None:
        with self._lock:
            self._faults.append(_Fault(path, status, delay, malformed, message, times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for f in self._faults:
                if f.matches(path) and (f.times is None or f.times > 0):
                    if f.times is not None:
                        f.times -= 1
                    return f
        return None

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if not self._server:
            raise RuntimeError("FakeKube is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "FakeKube":
        handler = type("Handler", (_Handler,), {"kube": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fakekube", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeKube":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def write_kubeconfig(self, path: str | Path, context: str = "fake", namespace: str = "default",
                         token: str | None = None) -> Path:
        path = Path(path)
        user: dict[str, Any] = {}
        tok = token if token is not None else self.token
        if tok:
            user["token"] = tok
        doc = {
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": f"{context}-cluster", "cluster": {"server": self.url}}],
            "users": [{"name": f"{context}-user", "user": user}],
            "contexts": [{"name": context, "context": {"cluster": f"{context}-cluster",
                                                       "user": f"{context}-user", "namespace": namespace}}],
        }
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    # -- answering ------------------------------------------------------------------------
    def answer(self, method: str, path: str, query: dict[str, str], auth: str | None) -> tuple[int, Any]:
        """(status, body) for one request; body is a JSON-able object or raw bytes."""
        with self._lock:
            self.requests.append((method, path, dict(query)))
        fault = self._take_fault(path)
        if fault and fault.delay:
            time.sleep(fault.delay)
        if self.token is not None and auth != f"Bearer {self.token}":
            return 401, status_body(401, "Unauthorized")
        if fault and fault.status:
            return fault.status, status_body(fault.status, fault.message or _default_message(fault.status, path))
        if fault and fault.malformed:
            return 200, b'{"kind": "List", "items": [{"metadata": {"name": '
        if method != "GET":
            return 405, status_body(405, f"the fake API server serves GET only, not {method}")
        return self._route(path, query)

    def _route(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        if path == "/version":
            return 200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake", "platform": "linux/amd64"}
        if path == "/api":
            return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if path == "/apis":
            groups = sorted({(g, v) for (g, v, _p) in RESOURCES if g})
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                 "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}} for g, v in groups]}
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return 404, status_body(404, f"the server could not find the requested resource ({path})")
        ns = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        elif group == "" and len(rest) == 2 and rest[0] == "namespaces":
            pass  # GET /api/v1/namespaces/NAME: a cluster-scoped single GET
        if not rest or len(rest) > 2 or (group, version, rest[0]) not in RESOURCES:
            return 404, status_body(404, f"the server could not find the requested resource ({path})")
        kind, namespaced = RESOURCES[(group, version, rest[0])]
        if ns is not None and not namespaced:
            return 404, status_body(404, f"the server could not find the requested resource ({path})")
        with self._lock:
            objs = [o for (g, k, _n, _m), o in self._objects.items() if g == group and k == kind]
            rv = str(self._rv)
        if ns is not None:
            objs = [o for o in objs if o["metadata"].get("namespace") == ns]
        api_version = f"{group}/{version}" if group else version
        if len(rest) == 2:
            name = rest[1]
            for o in objs:
                if o["metadata"]["name"] == name:
                    out = copy.deepcopy(o)
                    out.setdefault("apiVersion", api_version)
                    out.setdefault("kind", kind)
                    return 200, out
            res = rest[0] if not group else f"{rest[0]}.{group}"
            return 404, status_body(404, f'{res} "{name}" not found')
        try:
            reqs = parse_label_selector(query.get("labelSelector", ""))
        except ValueError as exc:
            return 400, status_body(400, str(exc))
        items = []
        for o in sorted(objs, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])):
            if not labels_match(o["metadata"].get("labels") or {}, reqs):
                continue
            if query.get("fieldSelector") and not fields_match(o, query["fieldSelector"]):
                continue
            item = copy.deepcopy(o)
            item.pop("apiVersion", None)
            item.pop("kind", None)
            items.append(item)
        return 200, {"kind": f"{kind}List", "apiVersion": api_version,
                     "metadata": {"resourceVersion": rv}, "items": items}


def _default_message(code: int, path: str) -> str:
    if code == 403:
        return (f'forbidden: User "system:serviceaccount:test:validator" cannot list resource at path '
                f'"{path}"')
    return f"injected fault {code} for {path}"


class _Handler(BaseHTTPRequestHandler):
    kube: FakeKube
    protocol_version = "HTTP/1.1"
    # headers and body leave in one segment (no delayed-ACK stall on keep-alive connections)
    wbufsize = -1
    disable_nagle_algorithm = True

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        u = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        try:
            code, body = self.kube.answer(self.command, u.path, query, self.headers.get("Authorization"))
        except Exception as exc:  # noqa: BLE001 - a bug in the fake must show as a 500, not a hang
            code, body = 500, status_body(500, f"fake API server error: {exc!r}")
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
            pass

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


def objects_from_yaml(text: str) -> list[dict]:
    """Every non-empty document of a multi-document YAML string (``List`` kinds are flattened)."""
    out: list[dict] = []
    for doc in yaml.safe_load_all(text):
        if not doc:
            continue
        if doc.get("kind", "").endswith("List") and "items" in doc:
            out.extend(doc["items"])
        else:
            out.append(doc)
    return out


# ---------------------------------------------------------------------------------------------
# Gateway API status, in the shapes controllers write (gateway-api v1.6 types: metav1.Condition with
# observedGeneration and lastTransitionTime; RouteParentStatus with parentRef and controllerName)

_T0 = "2026-05-04T10:00:00Z"


def condition(type_: str, status: bool | str = True, reason: str | None = None, message: str = "",
              generation: int = 1) -> dict[str, Any]:
    st = status if isinstance(status, str) else ("True" if status else "False")
    return {"type": type_, "status": st, "reason": reason or (type_ if st == "True" else "Invalid"),
            "message": message, "observedGeneration": generation, "lastTransitionTime": _T0}


def route_status(parent_refs: list[dict], controller: str = "gateway.envoyproxy.io/gatewayclass-controller",
                 accepted: bool = True, resolved: bool = True, accepted_reason: str | None = None,
                 resolved_reason: str | None = None, message: str = "") -> dict[str, Any]:
    """``status`` of an HTTPRoute/TCPRoute/TLSRoute: one parents[] entry per parentRef."""
    parents = []
    for ref in parent_refs:
        pr = {"group": "gateway.networking.k8s.io", "kind": "Gateway", **ref}
        parents.append({"parentRef": pr, "controllerName": controller, "conditions": [
            condition("Accepted", accepted, accepted_reason or ("Accepted" if accepted else "NotAllowedByListeners"),
                      "Route is accepted" if accepted else message),
            condition("ResolvedRefs", resolved, resolved_reason or ("ResolvedRefs" if resolved else "BackendNotFound"),
                      "Resolved all the Object references for the Route" if resolved else message)]})
    return {"parents": parents}


def gateway_status(listeners: list[dict], programmed: bool = True, address: str | None = "20.50.1.7",
                   reason: str | None = None, message: str = "", listener_problems: dict[str, str] | None = None
                   ) -> dict[str, Any]:
    """``status`` of a Gateway: conditions Accepted/Programmed, addresses, one listeners[] entry per
    listener (supportedKinds, attachedRoutes, conditions)."""
    kinds = {"HTTP": "HTTPRoute", "HTTPS": "HTTPRoute", "TCP": "TCPRoute", "TLS": "TLSRoute", "UDP": "UDPRoute"}
    problems = listener_problems or {}
    lst = []
    for lis in listeners:
        bad = problems.get(lis["name"])
        lst.append({"name": lis["name"], "attachedRoutes": 1,
                    "supportedKinds": [{"group": "gateway.networking.k8s.io", "kind": kinds.get(lis["protocol"], "")}],
                    "conditions": [condition("Accepted"), condition("Programmed", not bad, None if not bad else "Invalid",
                                                                    bad or ""),
                                   condition("ResolvedRefs", not bad, None if not bad else "InvalidCertificateRef",
                                             bad or "")]})
    out: dict[str, Any] = {"conditions": [
        condition("Accepted"),
        condition("Programmed", programmed, reason or ("Programmed" if programmed else "AddressNotAssigned"),
                  message or ("Address assigned to the Gateway" if programmed else "No addresses have been assigned"))],
        "listeners": lst}
    if address:
        out["addresses"] = [{"type": "IPAddress", "value": address}]
    return out
