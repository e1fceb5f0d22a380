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
StatefulSet, Deployment, DaemonSet; policy/v1 PodDisruptionBudget; rbac.authorization.k8s.io/v1
Role, RoleBinding; gateway.networking.k8s.io/v1 Gateway,
HTTPRoute, TCPRoute, TLSRoute, ReferenceGrant (``gateway_status`` / ``route_status`` build their
``status`` as the controllers write it).

What the pod lab (tests/podlab) adds, all opt-in:
``FakeKube(..., tls=True, host=IP, port=443, san=(names...))``
    serves HTTPS with a certificate of a fresh self-signed CA (``ca_pem``; ``write_kubeconfig``
    then carries it), on ``host:port`` (bound with IP_FREEBIND, so the address may appear later,
    e.g. a bridge that podman creates with the first container).
``sa_token(namespace, serviceaccount)``
    a new bearer token of that ServiceAccount. Requests with it are authorized like the API
    server's RBAC against the served Roles/RoleBindings of that namespace (verbs get/list/create,
    ``resourceNames``, subresources such as ``pods/exec``); anything not granted is a 403 ``Status``
    naming ``system:serviceaccount:NS:NAME``. The main ``token`` may do everything.
``exec_backend = fn(namespace, pod, container, argv) -> argv``
    enables ``GET .../pods/NAME/exec`` over WebSocket (``v5.channel.k8s.io`` and
    ``v4.channel.k8s.io``): the returned command runs with stdin/stdout/stderr on channels 0/1/2,
    the exit status goes out on channel 3 (a ``Status``), v5's close signal ends stdin.
``proxy_backend = fn(namespace, pod, port) -> (host, port) | None``
    enables ``GET .../pods/NAME[:PORT]/proxy/PATH``, relayed over plain HTTP.

List answers have the API server's shape: ``{"kind": "PodList", "apiVersion": "v1", "metadata":
{"resourceVersion": ...}, "items": [...]}`` where items carry no ``kind``/``apiVersion`` (like the
real server). ``labelSelector`` (``=``, ``==``, ``!=``, ``in``, ``notin``, ``key``, ``!key``) and
``fieldSelector`` (``metadata.name``, ``metadata.namespace``, any dotted path with ``=``/``!=``)
are honoured. A namespace that has objects, or a Namespace object, exists; a namespaced single GET
of an absent object is a 404 ``Status``. Errors are ``Status`` objects with ``code`` and ``reason``.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import secrets
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterable
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
    ("rbac.authorization.k8s.io", "v1", "roles"): ("Role", True),
    ("rbac.authorization.k8s.io", "v1", "rolebindings"): ("RoleBinding", True),
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

    def __init__(self, objects: Iterable[dict] = (), token: str | None = "fake-token", *, tls: bool = False,
                 host: str = "127.0.0.1", port: int = 0, san: Iterable[str] = ()):
        self.token = token
        self.tls = tls
        self.host = host
        self.port = port
        self.san = tuple(san)
        self.ca_pem = b""
        self._cert_dir: tempfile.TemporaryDirectory | None = None
        self._sa_tokens: dict[str, tuple[str, str]] = {}  # token -> (namespace, serviceaccount)
        self.exec_backend: Callable[[str, str, "str | None", list], list] | None = None
        self.proxy_backend: Callable[[str, str, "int | None"], "tuple[str, int] | None"] | None = None
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
        host, port = self._server.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    def start(self) -> "FakeKube":
        handler = type("Handler", (_Handler,), {"kube": self})
        self._server = _Server((self.host, self.port), handler)
        if self.tls:
            self._cert_dir = tempfile.TemporaryDirectory(prefix="fakekube-tls-")
            self.ca_pem, cert, key = _make_certs([self.host, *self.san])
            d = Path(self._cert_dir.name)
            (d / "tls.crt").write_bytes(cert)
            (d / "tls.key").write_bytes(key)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(d / "tls.crt", d / "tls.key")
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True,
                                                  do_handshake_on_connect=False)
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
        if self._cert_dir:
            self._cert_dir.cleanup()
            self._cert_dir = None

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
        cluster: dict[str, Any] = {"server": self.url}
        if self.tls:
            cluster["certificate-authority-data"] = base64.b64encode(self.ca_pem).decode()
        doc = {
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": f"{context}-cluster", "cluster": cluster}],
            "users": [{"name": f"{context}-user", "user": user}],
            "contexts": [{"name": context, "context": {"cluster": f"{context}-cluster",
                                                       "user": f"{context}-user", "namespace": namespace}}],
        }
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    # -- ServiceAccount tokens and RBAC ----------------------------------------------------
    def sa_token(self, namespace: str, serviceaccount: str) -> str:
        """A new bearer token of ServiceAccount ``namespace/serviceaccount`` (authorized by RBAC)."""
        tok = "sa-" + secrets.token_urlsafe(24)
        with self._lock:
            self._sa_tokens[tok] = (namespace, serviceaccount)
        return tok

    def allowed(self, who: tuple[str, str], verb: str, group: str, resource: str, namespace: str | None,
                name: str | None) -> bool:
        """Does a Role bound to ServiceAccount ``who`` in ``namespace`` grant this request?"""
        sa_ns, sa_name = who
        if namespace is None:
            return False  # cluster-scoped: ClusterRoles are not served
        with self._lock:
            objs = list(self._objects.items())
        roles = {(k[2], k[3]): o for k, o in objs if k[0] == "rbac.authorization.k8s.io" and k[1] == "Role"}
        for (g, k, ns, _n), rb in objs:
            if g != "rbac.authorization.k8s.io" or k != "RoleBinding" or ns != namespace:
                continue
            if not any(s.get("kind") == "ServiceAccount" and s.get("name") == sa_name
                       and (s.get("namespace") or ns) == sa_ns for s in rb.get("subjects") or []):
                continue
            ref = rb.get("roleRef") or {}
            role = roles.get((ns, ref.get("name"))) if ref.get("kind") == "Role" else None
            for rule in (role or {}).get("rules") or []:
                if (_grants(rule.get("apiGroups"), group) and _grants(rule.get("resources"), resource)
                        and _grants(rule.get("verbs"), verb)
                        and (not rule.get("resourceNames") or (name is not None and name in rule["resourceNames"]))):
                    return True
        return False

    def _authorize(self, method: str, path: str, auth: str | None) -> tuple[int, Any] | None:
        """None when the request may go on; else the 401/403 answer."""
        # the scheme is case-insensitive, as in the API server (the client's in-cluster config sends "bearer")
        tok = auth[7:] if auth and auth[:7].lower() == "bearer " else None
        if self.token is None or tok == self.token:
            return None
        with self._lock:
            who = self._sa_tokens.get(tok) if tok else None
        if who is None:
            return 401, status_body(401, "Unauthorized")
        if path in ("/version", "/api", "/apis") or path.startswith("/apis/") and path.count("/") <= 3:
            return None  # discovery: system:discovery grants it to every authenticated user
        target = _rbac_target(method, path)
        if target is None:
            return 403, status_body(403, f'forbidden: User "system:serviceaccount:{who[0]}:{who[1]}" cannot '
                                         f'{method.lower()} path "{path}"')
        verb, group, resource, ns, name = target
        if self.allowed(who, verb, group, resource, ns, name):
            return None
        what = f'{resource.split("/")[0]} "{name}" is forbidden' if name else f"{resource} is forbidden"
        where = f' in the namespace "{ns}"' if ns else " at the cluster scope"
        return 403, status_body(403, f'{what}: User "system:serviceaccount:{who[0]}:{who[1]}" cannot {verb} '
                                     f'resource "{resource}" in API group "{group}"{where}')

    # -- answering ------------------------------------------------------------------------
    def answer(self, method: str, path: str, query: dict[str, str], auth: str | None) -> tuple[int, Any]:
        """(status, body) for one request; body is a JSON-able object or raw bytes."""
        with self._lock:
            self.requests.append((method, path, dict(query)))
        fault = self._take_fault(path)
        if fault and fault.delay:
            time.sleep(fault.delay)
        denied = self._authorize(method, path, auth)
        if denied:
            return denied
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


_SUB_RE = re.compile(r"/api/v1/namespaces/([^/]+)/pods/([^/:]+)(?::(\d+))?/(exec|proxy)(/.*)?")


def _grants(listed: Any, value: str) -> bool:
    return isinstance(listed, list) and ("*" in listed or value in listed)


def _rbac_target(method: str, path: str) -> tuple[str, str, str, str | None, str | None] | None:
    """(verb, group, resource[/subresource], namespace, name) of a request, as RBAC sees it."""
    m = _SUB_RE.fullmatch(path)
    if m:
        sub = m.group(4)
        return ("create" if sub == "exec" else method.lower().replace("post", "create"), "", f"pods/{sub}",
                m.group(1), m.group(2))
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, rest = parts[1], parts[3:]
    else:
        return None
    ns = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        ns, rest = rest[1], rest[2:]
    if not rest:
        return None
    name = rest[1] if len(rest) >= 2 else None
    resource = rest[0] + (f"/{rest[2]}" if len(rest) >= 3 else "")
    verbs = {"GET": "get" if name else "list", "POST": "create", "PUT": "update", "PATCH": "patch",
             "DELETE": "delete"}
    return verbs.get(method, method.lower()), group, resource, ns, name


def _make_certs(names: list[str]) -> tuple[bytes, bytes, bytes]:
    """(CA certificate, server certificate, server key) in PEM; the server one names ``names``."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fakekube-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for n in dict.fromkeys(names):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            alt.append(x509.DNSName(n))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")])
    cert = (x509.CertificateBuilder().subject_name(subject)
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return (ca.public_bytes(pem), cert.public_bytes(pem),
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


class _Server(ThreadingHTTPServer):
    def server_bind(self) -> None:
        # IP_FREEBIND: the address may be one that appears later (a bridge podman creates on first use)
        self.socket.setsockopt(socket.SOL_IP, getattr(socket, "IP_FREEBIND", 15), 1)
        super().server_bind()


_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_WS_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")


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

    def setup(self) -> None:
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.settimeout(30)
            try:
                self.connection.do_handshake()
            except (ssl.SSLError, OSError):
                self.close_connection = True
                self.rfile = self.wfile = _Dead()  # type: ignore[assignment]

    def _serve(self) -> None:
        u = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
        sub = _SUB_RE.fullmatch(u.path)
        if sub and ((sub.group(4) == "exec" and self.kube.exec_backend)
                    or (sub.group(4) == "proxy" and self.kube.proxy_backend)):
            with self.kube._lock:
                self.kube.requests.append((self.command, u.path, dict(query)))
            denied = self.kube._authorize(self.command, u.path, self.headers.get("Authorization"))
            if denied:
                return self._send(*denied)
            if sub.group(4) == "proxy":
                return self._proxy(sub, u.query)
            return self._exec(sub, parse_qs(u.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        try:
            code, body = self.kube.answer(self.command, u.path, query, self.headers.get("Authorization"))
        except Exception as exc:  # noqa: BLE001 - a bug in the fake must show as a 500, not a hang
            code, body = 500, status_body(500, f"fake API server error: {exc!r}")
        self._send(code, body)

    def _send(self, code: int, body: Any, ctype: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
            pass

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    # -- pods/NAME:PORT/proxy/PATH ---------------------------------------------------------
    def _proxy(self, m: re.Match, raw_query: str) -> None:
        import http.client

        ns, pod, port, rest = m.group(1), m.group(2), m.group(3), m.group(5) or "/"
        where = self.kube.proxy_backend(ns, pod, int(port) if port else None)  # type: ignore[misc]
        if where is None:
            return self._send(404, status_body(404, f'pods "{pod}" not found'))
        fwd = {k: v for k, v in self.headers.items() if k.lower() in ("x-api-key", "accept")}
        try:
            conn = http.client.HTTPConnection(where[0], where[1], timeout=10)
            conn.request("GET", rest + (f"?{raw_query}" if raw_query else ""), headers=fwd)
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
        except OSError as exc:
            return self._send(503, status_body(503, f"error trying to reach service: {exc}"))
        self._send(resp.status, data, resp.getheader("Content-Type") or "text/plain")

    # -- pods/NAME/exec over WebSocket -----------------------------------------------------
    def _exec(self, m: re.Match, q: dict[str, list[str]]) -> None:
        ns, pod = m.group(1), m.group(2)
        offered = [p.strip() for p in (self.headers.get("Sec-WebSocket-Protocol") or "").split(",")]
        proto = next((p for p in _WS_PROTOCOLS if p in offered), None)
        key = self.headers.get("Sec-WebSocket-Key")
        if (self.headers.get("Upgrade") or "").lower() != "websocket" or not key or proto is None:
            return self._send(400, status_body(400, "exec needs a WebSocket upgrade with protocol "
                                                    f"{' or '.join(_WS_PROTOCOLS)}"))
        argv = q.get("command") or []
        container = (q.get("container") or [None])[0]
        try:
            cmd = self.kube.exec_backend(ns, pod, container, argv)  # type: ignore[misc]
        except LookupError as exc:
            return self._send(404, status_body(404, str(exc)))
        accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.send_header("Sec-WebSocket-Protocol", proto)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        wlock = threading.Lock()

        def send(opcode: int, payload: bytes) -> None:
            n = len(payload)
            head = bytes([0x80 | opcode]) + (bytes([n]) if n < 126 else
                                              bytes([126]) + struct.pack("!H", n) if n < 65536 else
                                              bytes([127]) + struct.pack("!Q", n))
            with wlock:
                try:
                    self.wfile.write(head + payload)
                    self.wfile.flush()
                except OSError:
                    pass

        want_stdin = (q.get("stdin") or ["false"])[0] in ("true", "1")
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if want_stdin else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def pump(stream: Any, channel: int) -> None:
            for chunk in iter(lambda: stream.read1(65536), b""):
                send(0x2, bytes([channel]) + chunk)

        pumps = [threading.Thread(target=pump, args=(proc.stdout, 1), daemon=True),
                 threading.Thread(target=pump, args=(proc.stderr, 2), daemon=True)]
        for t in pumps:
            t.start()

        def close_stdin() -> None:
            if proc.stdin and not proc.stdin.closed:
                try:
                    proc.stdin.close()
                except OSError:
                    pass

        def reader() -> None:
            try:
                while True:
                    frame = _read_frame(self.rfile)
                    if frame is None:
                        break
                    opcode, data = frame
                    if opcode == 0x8:
                        break
                    if opcode == 0x9:
                        send(0xA, data)
                    elif opcode in (0x1, 0x2) and data:
                        if data[0] == 0 and proc.stdin and not proc.stdin.closed:
                            try:
                                proc.stdin.write(data[1:])
                                proc.stdin.flush()
                            except OSError:
                                pass
                        elif data[0] == 255 and data[1:2] == b"\x00":
                            close_stdin()
            except OSError:
                pass
            close_stdin()

        threading.Thread(target=reader, daemon=True).start()
        rc = proc.wait()
        for t in pumps:
            t.join(timeout=5)
        if rc == 0:
            st = {"metadata": {}, "status": "Success"}
        else:
            st = {"metadata": {}, "status": "Failure", "message": f"command terminated with non-zero exit code: {rc}",
                  "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": str(rc)}]}}
        send(0x2, bytes([3]) + json.dumps(st).encode())
        send(0x8, struct.pack("!H", 1000))
        close_stdin()


class _Dead:
    def readline(self, *a: Any) -> bytes:
        return b""

    def write(self, *a: Any) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def _read_frame(rfile: Any) -> tuple[int, bytes] | None:
    """One client WebSocket frame (masked), fragments joined; None at EOF."""
    payload, first_op = b"", None
    while True:
        head = rfile.read(2)
        if len(head) < 2:
            return None
        fin, opcode = head[0] & 0x80, head[0] & 0x0F
        n = head[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", rfile.read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", rfile.read(8))[0]
        mask = rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
        data = rfile.read(n)
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        if opcode >= 0x8:
            return opcode, data
        first_op = opcode if first_op is None else first_op
        payload += data
        if fin:
            return first_op, payload


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
# A StatefulSet as a running cluster holds it: its pods scheduled, Running and Ready, and the EndpointSlice the
# EndpointSlice controller writes for the client Service


def running_statefulset(sts: dict, namespace: str, service: str) -> list[dict]:
    """The pods of ``sts`` (validators.netpol.workloads.expand: names, labels, spec) on two nodes with pod IPs
    10.244.<i>.5, Running and Ready, and one EndpointSlice of Service ``service`` listing them on port mqtt."""
    from validators.netpol.workloads import expand

    pods = expand(sts)
    for i, p in enumerate(pods):
        p["spec"]["nodeName"] = f"node-{i % 2}"
        p["status"] = {"phase": "Running", "podIP": f"10.244.{i}.5",
                       "conditions": [{"type": "Ready", "status": "True"}]}
    eps = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": f"{service}-x1", "namespace": namespace,
                        "labels": {"kubernetes.io/service-name": service}},
           "addressType": "IPv4", "ports": [{"name": "mqtt", "port": 1883, "protocol": "TCP"}],
           "endpoints": [{"addresses": [p["status"]["podIP"]], "conditions": {"ready": True},
                          "targetRef": {"kind": "Pod", "name": p["metadata"]["name"], "namespace": namespace}}
                         for p in pods]}
    return [*pods, eps]


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
