"""Offline facts for the traffic checks: rendered manifests from files, folders or stdin.

``helm template t charts/vernemq | vmq-validate plan -f -``

The objects are kept as the plain dicts the manifests hold (the same shapes the live API
returns), so one set of checks serves both modes. Workloads are expanded into the pods they
would run (:mod:`validators.netpol.workloads`). Facts that only exist in a live cluster
(endpoints, nodes, healthCheckNodePort) are :class:`NotApplicable` -> those checks report skip.

Malformed input is an :class:`InputError` naming the file, the document index, the object and
the field, with a fix.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, TextIO

import yaml

from ..core import redact
from ..core.errors import InputError
from ..core.inputs import read_stdin, read_text
from ..core.model import Facts, NotApplicable
from ..netpol.model import parse_policy
from ..netpol.workloads import WORKLOAD_KINDS, expand

VMQ_NAME_LABEL = "app.kubernetes.io/name"
VMQ_INSTANCE_LABEL = "app.kubernetes.io/instance"

CLUSTER_SCOPED = {"Namespace", "Node", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "PriorityClass", "StorageClass", "IngressClass", "PersistentVolume", "APIService",
                  "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "RuntimeClass"}

#: Gateway API (gateway.networking.k8s.io): the kinds the traffic checks read, and their facts
GATEWAY_GROUP = "gateway.networking.k8s.io"
GATEWAY_KINDS = {"Gateway": "k8s.gateways", "HTTPRoute": "k8s.httproutes", "TCPRoute": "k8s.tcproutes",
                 "TLSRoute": "k8s.tlsroutes", "ReferenceGrant": "k8s.referencegrants"}

_SUFFIXES = (".yaml", ".yml", ".json")
#: the libyaml loader when PyYAML has it (about ten times faster on big renders)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_selector_arg(text: str | None) -> dict[str, str] | None:
    """``--selector a=b,c=d`` -> dict (equality requirements only)."""
    if text is None:
        return None
    out: dict[str, str] = {}
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        if "!=" in part or "=" not in part or " " in part:
            raise InputError("--selector", f"{part!r} is not an equality requirement.",
                             "write key=value pairs separated by commas, e.g. app.kubernetes.io/name=vernemq.")
        k, v = part.split("=", 1)
        out[k.strip()] = v.strip().lstrip("=")
    if not out:
        raise InputError("--selector", "is empty.", "write key=value pairs, or use --release.")
    return out


def scope(namespace: str | None, release: str | None, selector: str | None, mode: str) -> dict[str, Any]:
    """The ``traffic.scope`` fact: which pods are the release's VerneMQ pods (docs/contracts.md)."""
    sel = parse_selector_arg(selector)
    if sel is None:
        sel = {VMQ_NAME_LABEL: "vernemq"}
        if release:
            sel[VMQ_INSTANCE_LABEL] = release
    return {"namespace": namespace, "release": release, "selector": sel, "mode": mode}


def _files(paths: Iterable[str]) -> list[Path | str]:
    out: list[Path | str] = []
    for p in paths:
        if p == "-":
            out.append("-")
            continue
        path = Path(p)
        if path.is_dir():
            found = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix in _SUFFIXES)
            if not found:
                raise InputError("-f", f"folder {p} holds no .yaml/.yml/.json file.", "point -f at rendered manifests.")
            out.extend(found)
        elif path.is_file():
            out.append(path)
        elif path.exists():
            raise InputError("-f", f"{p} is not a regular file (a device, FIFO or socket).",
                             "render the manifests into a file first, or pipe them in with -f -.")
        else:
            raise InputError("-f", f"{p} does not exist.", "pass a file, a folder, or - for stdin.")
    return out


def read_documents(paths: Iterable[str], stdin: TextIO | None = None) -> list[tuple[str, str, dict]]:
    """Every object of every document as (source, "document N (line L)", object); documents are
    numbered from 1. ``List`` kinds are flattened (``... items[j]``)."""
    docs: list[tuple[str, str, dict]] = []
    for f in _files(paths):
        if f == "-":
            name, text = "<stdin>", read_stdin(stdin if stdin is not None else sys.stdin, "-f -")
        else:
            name, text = str(f), read_text(f, "-f", "pass a readable UTF-8 text file (YAML or JSON).")
        docs.extend(read_documents_text(text, name))
    return docs


def read_documents_text(text: str, name: str) -> list[tuple[str, str, dict]]:
    """The objects of one multi-document YAML text (see :func:`read_documents`)."""
    docs: list[tuple[str, str, dict]] = []
    loaded: list[tuple[int, Any]] = []
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            line = node.start_mark.line + 1 if node is not None else 0
            loaded.append((line, loader.construct_document(node) if node is not None else None))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InputError(f"{name} document {len(loaded) + 1}", f"is not valid YAML{at}: "
                         f"{getattr(exc, 'problem', None) or exc}.",
                         "fix the YAML (run `helm template` again, or check indentation).") from None
    except RecursionError:
        raise InputError(f"{name} document {len(loaded) + 1}", "is nested too deeply to load.",
                         "pass rendered Kubernetes manifests.") from None
    finally:
        loader.dispose()
    for i, (line, doc) in enumerate(loaded, start=1):
        label = f"document {i} (line {line})" if line else f"document {i}"
        if doc is None:
            continue
        if not isinstance(doc, Mapping):
            raise InputError(f"{name} {label}", f"is a {type(doc).__name__}, not a Kubernetes object.",
                             "every document must be a mapping with apiVersion, kind and metadata.")
        if str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
            for j, item in enumerate(doc["items"]):
                if not isinstance(item, Mapping):
                    raise InputError(f"{name} {label}: items[{j}]", "is not an object.", "list objects only.")
                docs.append((name, f"{label} items[{j}]", dict(item)))
        else:
            docs.append((name, label, dict(doc)))
    return docs


# ---------------------------------------------------------------------------------------------
# field validation: the fields the traffic checks read, with the API server's types


class _V:
    def __init__(self, where: str):
        self.where = where

    def err(self, field: str, problem: str, fix: str) -> InputError:
        return InputError(f"{self.where}: {field}", problem, fix)

    def mapping(self, obj: Any, field: str, required: bool = False) -> Mapping:
        if obj is None:
            if required:
                raise self.err(field, "is required.", f"add {field}.")
            return {}
        if not isinstance(obj, Mapping):
            raise self.err(field, f"must be a mapping, got {type(obj).__name__}.", f"write {field} as key: value pairs.")
        return obj

    def seq(self, obj: Any, field: str) -> list:
        if obj is None:
            return []
        if not isinstance(obj, list):
            raise self.err(field, f"must be a list, got {type(obj).__name__}.", f"write {field} as a YAML list.")
        return obj

    def port(self, value: Any, field: str, named: bool) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise self.err(field, f"{value!r} is not a port.", "write a number 1-65535" + (" or a port name." if named else "."))
        if isinstance(value, str) and not named:
            raise self.err(field, f"{value!r} must be a number.", "write a number 1-65535.")
        if isinstance(value, int) and not 1 <= value <= 65535:
            raise self.err(field, f"{value} is out of range.", "use 1-65535.")

    def strmap(self, obj: Any, field: str) -> None:
        for k, v in self.mapping(obj, field).items():
            if not isinstance(v, str):
                raise self.err(f"{field}.{k}", f"values must be strings, got {v!r}.", f'quote it: {k}: "{v}".')


def _validate_pod_spec(v: _V, spec: Any, field: str) -> None:
    spec = v.mapping(spec, field, required=True)
    containers = v.seq(spec.get("containers"), f"{field}.containers")
    if not containers:
        raise v.err(f"{field}.containers", "is empty.", "a pod needs at least one container.")
    for i, c in enumerate(containers):
        c = v.mapping(c, f"{field}.containers[{i}]")
        for j, p in enumerate(v.seq(c.get("ports"), f"{field}.containers[{i}].ports")):
            p = v.mapping(p, f"{field}.containers[{i}].ports[{j}]")
            if "containerPort" not in p:
                raise v.err(f"{field}.containers[{i}].ports[{j}].containerPort", "is required.", "add containerPort: N.")
            v.port(p["containerPort"], f"{field}.containers[{i}].ports[{j}].containerPort", named=False)
        for j, e in enumerate(v.seq(c.get("env"), f"{field}.containers[{i}].env")):
            e = v.mapping(e, f"{field}.containers[{i}].env[{j}]")
            if not isinstance(e.get("name"), str):
                raise v.err(f"{field}.containers[{i}].env[{j}].name", "is required.", "name the variable.")


def _validate_gateway_api(v: _V, kind: str, spec: Mapping) -> None:
    """The Gateway API fields the traffic checks read, with their types (the full schema is checked
    against the CRDs with --crd-dir, TRAFFIC-016)."""
    def name(obj: Mapping, field: str) -> None:
        if not isinstance(obj.get("name"), str) or not obj.get("name"):
            raise v.err(f"{field}.name", "is required.", "name the referenced object.")

    if kind == "Gateway":
        for i, lis in enumerate(v.seq(spec.get("listeners"), "spec.listeners")):
            f = f"spec.listeners[{i}]"
            lis = v.mapping(lis, f)
            name(lis, f)
            if not isinstance(lis.get("protocol"), str):
                raise v.err(f"{f}.protocol", "is required.", "write HTTP, HTTPS, TLS, TCP or UDP.")
            v.port(lis.get("port"), f"{f}.port", named=False)
            v.mapping(lis.get("tls"), f"{f}.tls")
            ar = v.mapping(lis.get("allowedRoutes"), f"{f}.allowedRoutes")
            v.mapping(ar.get("namespaces"), f"{f}.allowedRoutes.namespaces")
            for j, k in enumerate(v.seq(ar.get("kinds"), f"{f}.allowedRoutes.kinds")):
                v.mapping(k, f"{f}.allowedRoutes.kinds[{j}]")
        return
    if kind == "ReferenceGrant":
        for side in ("from", "to"):
            for i, e in enumerate(v.seq(spec.get(side), f"spec.{side}")):
                v.mapping(e, f"spec.{side}[{i}]")
        return
    for i, ref in enumerate(v.seq(spec.get("parentRefs"), "spec.parentRefs")):
        name(v.mapping(ref, f"spec.parentRefs[{i}]"), f"spec.parentRefs[{i}]")
    for i, h in enumerate(v.seq(spec.get("hostnames"), "spec.hostnames")):
        if not isinstance(h, str):
            raise v.err(f"spec.hostnames[{i}]", f"{h!r} is not a host name.", "write host names as strings.")
    for i, rule in enumerate(v.seq(spec.get("rules"), "spec.rules")):
        f = f"spec.rules[{i}]"
        rule = v.mapping(rule, f)
        for j, b in enumerate(v.seq(rule.get("backendRefs"), f"{f}.backendRefs")):
            b = v.mapping(b, f"{f}.backendRefs[{j}]")
            name(b, f"{f}.backendRefs[{j}]")
            if b.get("port") is not None:
                v.port(b["port"], f"{f}.backendRefs[{j}].port", named=False)
        for j, m in enumerate(v.seq(rule.get("matches"), f"{f}.matches")):
            m = v.mapping(m, f"{f}.matches[{j}]")
            v.mapping(m.get("path"), f"{f}.matches[{j}].path")
        t = v.mapping(rule.get("timeouts"), f"{f}.timeouts")
        for k in ("request", "backendRequest"):
            if t.get(k) is not None and not isinstance(t[k], str):
                raise v.err(f"{f}.timeouts.{k}", f"{t[k]!r} is not a duration.", 'write a duration string, e.g. "3600s".')


def validate_object(obj: Mapping[str, Any], where: str) -> None:
    v = _V(where)
    kind = obj.get("kind")
    md = v.mapping(obj.get("metadata"), "metadata")
    v.strmap(md.get("labels"), "metadata.labels")
    v.strmap(md.get("annotations"), "metadata.annotations")
    spec = obj.get("spec")
    if kind == "Service":
        spec = v.mapping(spec, "spec", required=True)
        v.strmap(spec.get("selector"), "spec.selector")
        for i, p in enumerate(v.seq(spec.get("ports"), "spec.ports")):
            p = v.mapping(p, f"spec.ports[{i}]")
            if "port" not in p:
                raise v.err(f"spec.ports[{i}].port", "is required.", "add port: N.")
            v.port(p["port"], f"spec.ports[{i}].port", named=False)
            if p.get("targetPort") is not None:
                v.port(p["targetPort"], f"spec.ports[{i}].targetPort", named=True)
            if p.get("nodePort") is not None:
                v.port(p["nodePort"], f"spec.ports[{i}].nodePort", named=False)
    elif kind == "Ingress":
        spec = v.mapping(spec, "spec", required=True)
        for i, r in enumerate(v.seq(spec.get("rules"), "spec.rules")):
            r = v.mapping(r, f"spec.rules[{i}]")
            http = v.mapping(r.get("http"), f"spec.rules[{i}].http")
            for j, p in enumerate(v.seq(http.get("paths"), f"spec.rules[{i}].http.paths")):
                f = f"spec.rules[{i}].http.paths[{j}]"
                p = v.mapping(p, f)
                svc = v.mapping(v.mapping(p.get("backend"), f"{f}.backend", required=True).get("service"),
                                f"{f}.backend.service")
                if svc:
                    if not isinstance(svc.get("name"), str):
                        raise v.err(f"{f}.backend.service.name", "is required.", "name the backend Service.")
                    port = v.mapping(svc.get("port"), f"{f}.backend.service.port", required=True)
                    if "number" in port:
                        v.port(port["number"], f"{f}.backend.service.port.number", named=False)
                    elif not isinstance(port.get("name"), str):
                        raise v.err(f"{f}.backend.service.port", "needs number or name.",
                                    "write port: {name: ws} or port: {number: 8080}.")
        for i, t in enumerate(v.seq(spec.get("tls"), "spec.tls")):
            t = v.mapping(t, f"spec.tls[{i}]")
            v.seq(t.get("hosts"), f"spec.tls[{i}].hosts")
    elif str(obj.get("apiVersion", "")).startswith(GATEWAY_GROUP + "/") and kind in GATEWAY_KINDS:
        _validate_gateway_api(v, kind, v.mapping(spec, "spec", required=True))
    elif kind in WORKLOAD_KINDS:
        spec = v.mapping(spec, "spec", required=True)
        if kind == "CronJob":
            jt = v.mapping(spec.get("jobTemplate"), "spec.jobTemplate", required=True)
            spec = v.mapping(jt.get("spec"), "spec.jobTemplate.spec", required=True)
            base = "spec.jobTemplate.spec.template"
        else:
            base = "spec.template"
        r = spec.get("replicas")
        if r is not None and (isinstance(r, bool) or not isinstance(r, int) or r < 0):
            raise v.err("spec.replicas", f"{r!r} is not a replica count.", "write a whole number >= 0.")
        t = v.mapping(spec.get("template"), base, required=True)
        tmd = v.mapping(t.get("metadata"), f"{base}.metadata")
        v.strmap(tmd.get("labels"), f"{base}.metadata.labels")
        v.strmap(tmd.get("annotations"), f"{base}.metadata.annotations")
        _validate_pod_spec(v, t.get("spec"), f"{base}.spec")
    elif kind == "Pod":
        _validate_pod_spec(v, spec, "spec")


def normalize(objs: Iterable[tuple[str, str, dict]], namespace: str) -> list[dict]:
    """Check the identity fields, default the namespace (as `helm template -n` leaves it out),
    validate the fields the checks read. Returns the objects with ``metadata.namespace`` set."""
    out = []
    seen: dict[tuple, str] = {}
    for src, label, obj in objs:
        where = f"{src} {label}"
        for key in ("apiVersion", "kind"):
            if not isinstance(obj.get(key), str) or not obj.get(key):
                raise InputError(f"{where}: {key}", "is missing.", f"every Kubernetes object needs {key}.")
        md = obj.get("metadata")
        if not isinstance(md, Mapping) or not isinstance(md.get("name"), str) or not md.get("name"):
            raise InputError(f"{where} ({obj['kind']}): metadata.name", "is missing.", "every object needs a name.")
        obj = dict(obj)
        obj["metadata"] = dict(md)
        if obj["kind"] not in CLUSTER_SCOPED:
            obj["metadata"].setdefault("namespace", namespace)
            if not obj["metadata"]["namespace"]:
                obj["metadata"]["namespace"] = namespace
        ident = (obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])
        label = f"{where} ({obj['kind']} {obj['metadata'].get('namespace', '-')}/{obj['metadata']['name']})"
        if ident in seen:
            raise InputError(label, f"is defined twice (first in {seen[ident]}).", "render each object once.")
        seen[ident] = where
        validate_object(obj, label)
        if obj["kind"] == "NetworkPolicy":
            parse_policy(obj, namespace, source=f"{where}: ")
        out.append(obj)
    return out


_SECRET_WORDS = ("COOKIE", "PASSWORD", "SECRET", "TOKEN", "API_KEY", "APIKEY", "PRIVATE")
#: Secret keys that hold public material (certificates, user names), not secrets
_PUBLIC_KEYS = {"ca.crt", "tls.crt", "username", "user"}


def register_secrets(objects: Iterable[Mapping[str, Any]]) -> None:
    """Register with the redactor every secret value the objects carry: Secret ``data`` (decoded)
    and ``stringData`` (except certificates and user names), and literal env values whose name
    looks like a secret (a cookie written straight into a manifest); values shorter than 8
    characters are left out (masking them would garble ordinary words). The facts never need these
    values; this keeps them out of every rendered report even if some evidence were to quote an
    object."""
    import base64
    import binascii

    def reg(value: Any) -> None:
        # short values ("admin", "mqtt") would mask ordinary words all over the report; they never
        # reach the facts anyway
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        if len(text.strip()) >= 8:
            redact.register(text)

    for o in objects:
        if o.get("kind") == "Secret":
            for k, v in (o.get("stringData") or {}).items():
                if k not in _PUBLIC_KEYS:
                    reg(v)
            for k, v in (o.get("data") or {}).items():
                if k in _PUBLIC_KEYS:
                    continue
                try:
                    reg(base64.b64decode(str(v), validate=True))
                except (binascii.Error, ValueError):
                    pass
                reg(v)
            continue
        spec = o.get("spec") or {}
        pod_specs = [spec] + [((spec.get("template") or {}).get("spec") or {})] + \
            [((((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec") or {})]
        for ps in pod_specs:
            for c in (ps.get("containers") or []) + (ps.get("initContainers") or []):
                for e in c.get("env") or []:
                    name = str(e.get("name", "")).upper()
                    if e.get("value") and any(w in name for w in _SECRET_WORDS):
                        reg(e["value"])


def plan_facts(objects: list[dict], scope_fact: dict[str, Any], crds: Any = None) -> Facts:
    """Facts for the traffic checks from normalized manifest objects; ``crds`` is the
    :class:`validators.crd.CrdSet` of --crd-dir (None: Gateway API objects are not schema-checked)."""
    by_kind: dict[str, list[dict]] = {}
    hooks = []
    for o in objects:
        if "helm.sh/hook" in ((o.get("metadata") or {}).get("annotations") or {}):
            hooks.append(o)  # transient (helm test, pre-install jobs): not part of the running release
            continue
        by_kind.setdefault(o["kind"], []).append(o)
    hook_pods = [p for h in hooks for p in ([h] if h["kind"] == "Pod" else expand(h))]
    workloads = [o for k in WORKLOAD_KINDS for o in by_kind.get(k, [])]
    pods = list(by_kind.get("Pod", []))
    for w in workloads:
        pods.extend(expand(w))
    offline = "offline plan: {} exist only in a live cluster (run `vmq-validate cluster`)"
    gw_objs = [o for o in objects if str(o.get("apiVersion", "")).startswith(GATEWAY_GROUP + "/")]
    gw = {fact: [o for o in gw_objs if o["kind"] == kind] for kind, fact in GATEWAY_KINDS.items()}
    return Facts({
        **gw,
        "k8s.gatewayapi": gw_objs,
        "gatewayapi.crds": crds if crds is not None else NotApplicable(
            "no --crd-dir given: Gateway API objects are not checked against CRD schemas (pass the folder of "
            "the Gateway API CRDs you install)"),
        "traffic.scope": scope_fact,
        "traffic.live": NotApplicable(offline.format("endpoints, nodes and allocated node ports")),
        "k8s.services": by_kind.get("Service", []),
        "k8s.ingresses": by_kind.get("Ingress", []),
        "k8s.networkpolicies": by_kind.get("NetworkPolicy", []),
        "k8s.namespaces": by_kind.get("Namespace", []),
        "k8s.workloads": workloads,
        "k8s.pods": pods,
        "k8s.hook_pods": hook_pods,
        "k8s.endpointslices": NotApplicable(offline.format("EndpointSlices")),
        "k8s.nodes": NotApplicable(offline.format("Nodes")),
        "k8s.apiserver": NotApplicable(offline.format("API server endpoints")),
    })


def _template_labels(obj: Mapping[str, Any]) -> dict:
    spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
    if obj.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec") or {}) if isinstance(spec.get("jobTemplate"), Mapping) else {}
    tmpl = spec.get("template") if obj.get("kind") != "Pod" else obj
    md = (tmpl or {}).get("metadata") if isinstance(tmpl, Mapping) else None
    labels = md.get("labels") if isinstance(md, Mapping) else None
    return dict(labels) if isinstance(labels, Mapping) else {}


def infer_scope(docs: list[tuple[str, str, dict]], namespace: str | None, release: str | None,
                selector: str | None) -> tuple[str, str | None, dict[str, str]]:
    """The release namespace and name when -n/--release are not given: taken from the VerneMQ
    workloads of the manifests (pod labels matching the selector; their metadata.namespace and label
    app.kubernetes.io/instance), else from the namespaces all objects name. Returns (namespace,
    release, how). When the manifests disagree, an InputError (exit 2) names the choices."""
    how: dict[str, str] = {}
    sel = parse_selector_arg(selector) or {VMQ_NAME_LABEL: "vernemq", **({VMQ_INSTANCE_LABEL: release} if release else {})}
    vmq = [o for _s, _l, o in docs if o.get("kind") in WORKLOAD_KINDS + ("Pod",)
           and "helm.sh/hook" not in (((o.get("metadata") or {}) if isinstance(o.get("metadata"), Mapping) else {})
                                      .get("annotations") or {})
           and all(_template_labels(o).get(k) == v for k, v in sel.items())]

    def ns_of(o: Mapping[str, Any]) -> str | None:
        md = o.get("metadata")
        return md.get("namespace") if isinstance(md, Mapping) and isinstance(md.get("namespace"), str) \
            and md.get("namespace") else None

    if namespace is None:
        found = sorted({n for n in map(ns_of, vmq) if n})
        what = "VerneMQ workloads"
        if not found and not vmq:
            found = sorted({n for n in (ns_of(o) for _s, _l, o in docs if o.get("kind") not in CLUSTER_SCOPED) if n})
            what = "objects"
        if len(found) > 1:
            raise InputError("--namespace", f"is not given and the manifests hold {what} in {len(found)} "
                             f"namespaces: {', '.join(found)}.", f"pass -n with one of them, e.g. -n {found[0]}.")
        namespace = found[0] if found else "default"
        how["namespace"] = f"from the manifests ({what})" if found else "default (the manifests name none)"
    if release is None and selector is None:
        names = sorted({str(_template_labels(o).get(VMQ_INSTANCE_LABEL)) for o in vmq
                        if (ns_of(o) or namespace) == namespace and _template_labels(o).get(VMQ_INSTANCE_LABEL)})
        if len(names) > 1:
            raise InputError("--release", f"is not given and the manifests hold {len(names)} VerneMQ releases in "
                             f"namespace {namespace}: {', '.join(names)}.",
                             f"pass --release with one of them, e.g. --release {names[0]}.")
        if names:
            release = names[0]
            how["release"] = f"from the manifests (label {VMQ_INSTANCE_LABEL})"
    return namespace, release, how


def collect(paths: list[str], namespace: str | None, release: str | None, selector: str | None,
            stdin: TextIO | None = None, crd_dir: str | None = None) -> tuple[Facts, dict[str, Any]]:
    if not paths:
        raise InputError("-f", "no manifests given.", "pass -f FILE, -f FOLDER or -f - (stdin), e.g. "
                         "`helm template r charts/vernemq | vmq-validate plan -f -`.")
    crds = None
    if crd_dir:
        from .crds import load_dir

        crds = load_dir(crd_dir)
    docs = read_documents(paths, stdin)
    ns, release, how = infer_scope(docs, namespace, release, selector)
    objects = normalize(docs, ns)
    register_secrets(objects)
    sc = scope(ns, release, selector, "plan")
    facts = plan_facts(objects, sc, crds)
    meta = {"source": "manifests", "files": [p for p in paths], "objects": len(objects), "namespace": ns,
            "release": release, "selector": ",".join(f"{k}={v}" for k, v in sc["selector"].items())}
    if how:
        meta["inferred"] = how
    if crd_dir:
        meta["crd_dir"] = crd_dir
    return facts, meta
