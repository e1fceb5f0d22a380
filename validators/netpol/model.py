"""NetworkPolicy objects parsed into plain, validated Python values.

The parser checks the fields the evaluator reads and raises
:class:`validators.core.errors.InputError` naming the object and the field when one is malformed
(the API server would reject it too), so the evaluator itself never meets a bad shape.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..core.errors import InputError

PROTOCOLS = ("TCP", "UDP", "SCTP")
_OPS = ("In", "NotIn", "Exists", "DoesNotExist")
NS_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Selector:
    """A metav1.LabelSelector. ``Selector()`` (``{}``) matches everything."""

    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[tuple[str, str, frozenset[str]], ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        for k, v in self.match_labels:
            if labels.get(k) != v:
                return False
        for key, op, values in self.match_expressions:
            has = key in labels
            if op == "In" and (not has or labels[key] not in values):
                return False
            if op == "NotIn" and has and labels[key] in values:
                return False
            if op == "Exists" and not has:
                return False
            if op == "DoesNotExist" and has:
                return False
        return True

    @classmethod
    def of(cls, raw: Any) -> "Selector":
        """A selector as a live object holds it, read leniently (no :class:`InputError`): the API server
        validated it when the object was created; a part of another shape constrains nothing, and a value that
        is not a string can never equal a label's value."""
        m = raw if isinstance(raw, Mapping) else {}
        ml = m.get("matchLabels")
        exprs = []
        for e in m.get("matchExpressions") if isinstance(m.get("matchExpressions"), list) else []:
            if isinstance(e, Mapping):
                vals = e.get("values") if isinstance(e.get("values"), list) else []
                exprs.append((e.get("key"), e.get("operator"), frozenset(v for v in vals if isinstance(v, str))))
        return cls(tuple(ml.items()) if isinstance(ml, Mapping) else (), tuple(exprs))

    @property
    def empty(self) -> bool:
        return not self.match_labels and not self.match_expressions

    def describe(self) -> str:
        if self.empty:
            return "{} (all)"
        parts = [f"{k}={v}" for k, v in self.match_labels]
        parts += [f"{k} {op} ({','.join(sorted(vs))})" if vs else f"{k} {op}"
                  for k, op, vs in self.match_expressions]
        return ",".join(parts)


@dataclass(frozen=True)
class IPBlock:
    cidr: Any  # ipaddress network
    excepts: tuple[Any, ...] = ()

    def contains(self, ip: Any) -> bool:
        if ip is None or ip.version != self.cidr.version or ip not in self.cidr:
            return False
        return not any(ip in e for e in self.excepts if e.version == ip.version)

    def describe(self) -> str:
        s = str(self.cidr)
        if self.excepts:
            s += " except " + ",".join(str(e) for e in self.excepts)
        return s


@dataclass(frozen=True)
class Peer:
    """One entry of ``from``/``to``. pod_selector/ns_selector None = the field is absent."""

    pod_selector: Selector | None = None
    ns_selector: Selector | None = None
    ip_block: IPBlock | None = None

    def describe(self) -> str:
        if self.ip_block:
            return f"ipBlock {self.ip_block.describe()}"
        parts = []
        if self.ns_selector is not None:
            parts.append(f"namespaceSelector {self.ns_selector.describe()}")
        if self.pod_selector is not None:
            parts.append(f"podSelector {self.pod_selector.describe()}")
        return " + ".join(parts)


@dataclass(frozen=True)
class PortSpec:
    protocol: str = "TCP"
    port: int | str | None = None  # None = every port of the protocol; str = a named port
    end_port: int | None = None

    def describe(self) -> str:
        if self.port is None:
            return f"all/{self.protocol}"
        if self.end_port:
            return f"{self.port}-{self.end_port}/{self.protocol}"
        return f"{self.port}/{self.protocol}"


@dataclass(frozen=True)
class Rule:
    peers: tuple[Peer, ...] | None  # None or () = every peer
    ports: tuple[PortSpec, ...] | None  # None or () = every port


@dataclass(frozen=True)
class Policy:
    namespace: str
    name: str
    pod_selector: Selector
    ingress: tuple[Rule, ...]
    egress: tuple[Rule, ...]
    types: frozenset[str]

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class Endpoint:
    """A pod (``kind == "pod"``) or an address outside the pod network (``kind == "ip"``)."""

    kind: str
    namespace: str = ""
    name: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    ns_labels: dict[str, str] = field(default_factory=dict)
    ip: Any = None  # ipaddress address or None (plan mode pods have no IP)
    #: container port name -> [(number, protocol)]
    named_ports: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    host_network: bool = False

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}" if self.kind == "pod" else str(self.ip)

    @classmethod
    def external(cls, ip: str) -> "Endpoint":
        return cls(kind="ip", ip=ipaddress.ip_address(ip))

    def resolve(self, name: str, protocol: str) -> list[int]:
        return [n for n, p in self.named_ports.get(name, []) if p == protocol]


# ---------------------------------------------------------------------------------------------
# parsing


def _where(src: str, obj: Mapping[str, Any]) -> str:
    md = obj.get("metadata") or {}
    return f"{src}NetworkPolicy {md.get('namespace', '?')}/{md.get('name', '?')}"


def parse_selector(raw: Any, where: str) -> Selector:
    if raw is None:
        return Selector()
    if not isinstance(raw, Mapping):
        raise InputError(where, f"must be a label selector mapping, got {type(raw).__name__}.",
                         "write {matchLabels: {key: value}} or {} for all.")
    extra = set(raw) - {"matchLabels", "matchExpressions"}
    if extra:
        raise InputError(where, f"unknown selector key(s) {sorted(extra)}.",
                         "a label selector has only matchLabels and matchExpressions.")
    ml = raw.get("matchLabels") or {}
    if not isinstance(ml, Mapping):
        raise InputError(f"{where}.matchLabels", "must be a mapping of label to value.", "write {app: vernemq}.")
    labels = []
    for k, v in ml.items():
        if not isinstance(v, str):
            raise InputError(f"{where}.matchLabels.{k}", f"label values are strings, got {v!r}.",
                             f'quote it: {k}: "{v}".')
        labels.append((str(k), v))
    exprs = []
    me = raw.get("matchExpressions") or []
    if not isinstance(me, list):
        raise InputError(f"{where}.matchExpressions", "must be a list.", "write - {key: k, operator: In, values: [v]}.")
    for i, e in enumerate(me):
        w = f"{where}.matchExpressions[{i}]"
        if not isinstance(e, Mapping) or not isinstance(e.get("key"), str):
            raise InputError(w, "needs a string key.", "write {key: k, operator: In, values: [v]}.")
        op = e.get("operator")
        if op not in _OPS:
            raise InputError(f"{w}.operator", f"{op!r} is not an operator.", f"use one of {', '.join(_OPS)}.")
        values = e.get("values") or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise InputError(f"{w}.values", "must be a list of strings.", 'quote numbers: ["1"].')
        if op in ("In", "NotIn") and not values:
            raise InputError(f"{w}.values", f"operator {op} needs at least one value.", "list the values.")
        if op in ("Exists", "DoesNotExist") and values:
            raise InputError(f"{w}.values", f"operator {op} takes no values.", "remove values.")
        exprs.append((e["key"], op, frozenset(values)))
    return Selector(tuple(sorted(labels)), tuple(exprs))


def _parse_ipblock(raw: Any, where: str) -> IPBlock:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("cidr"), str):
        raise InputError(f"{where}.cidr", "an ipBlock needs a cidr string.", "write {cidr: 10.0.0.0/8}.")
    try:
        cidr = ipaddress.ip_network(raw["cidr"], strict=False)
    except ValueError:
        raise InputError(f"{where}.cidr", f"{raw['cidr']!r} is not a CIDR.", "write e.g. 10.0.0.0/8.") from None
    excepts = []
    for j, e in enumerate(raw.get("except") or []):
        try:
            net = ipaddress.ip_network(str(e), strict=False)
        except ValueError:
            raise InputError(f"{where}.except[{j}]", f"{e!r} is not a CIDR.", "write e.g. 10.0.1.0/24.") from None
        if net.version != cidr.version or not net.subnet_of(cidr):
            raise InputError(f"{where}.except[{j}]", f"{e} is not inside {cidr}.",
                             "except entries must be subnets of cidr.")
        excepts.append(net)
    return IPBlock(cidr, tuple(excepts))


def _parse_peer(raw: Any, where: str) -> Peer:
    if not isinstance(raw, Mapping):
        raise InputError(where, "a peer must be a mapping.", "use podSelector, namespaceSelector or ipBlock.")
    keys = set(raw) & {"podSelector", "namespaceSelector", "ipBlock"}
    extra = set(raw) - {"podSelector", "namespaceSelector", "ipBlock"}
    if extra:
        raise InputError(where, f"unknown peer key(s) {sorted(extra)}.", "use podSelector, namespaceSelector, ipBlock.")
    if not keys:
        raise InputError(where, "a peer needs podSelector, namespaceSelector or ipBlock.",
                         "to allow everything, leave out from/to instead of writing an empty peer.")
    if "ipBlock" in keys:
        if len(keys) > 1:
            raise InputError(where, "ipBlock cannot be combined with a selector in one peer.",
                             "write them as two separate peers.")
        return Peer(ip_block=_parse_ipblock(raw["ipBlock"], f"{where}.ipBlock"))
    pod = parse_selector(raw["podSelector"], f"{where}.podSelector") if "podSelector" in raw else None
    ns = parse_selector(raw["namespaceSelector"], f"{where}.namespaceSelector") if "namespaceSelector" in raw else None
    return Peer(pod_selector=pod, ns_selector=ns)


def _parse_port(raw: Any, where: str) -> PortSpec:
    if not isinstance(raw, Mapping):
        raise InputError(where, "must be a mapping.", "write {protocol: TCP, port: 1883}.")
    proto = raw.get("protocol", "TCP") or "TCP"
    if proto not in PROTOCOLS:
        raise InputError(f"{where}.protocol", f"{proto!r} is not a protocol.", "use TCP, UDP or SCTP.")
    port = raw.get("port")
    end = raw.get("endPort")
    if port is not None:
        if isinstance(port, bool) or not isinstance(port, (int, str)):
            raise InputError(f"{where}.port", f"{port!r} is neither a number nor a port name.",
                             "write 1883 or a container port name like mqtt.")
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        if isinstance(port, int) and not 1 <= port <= 65535:
            raise InputError(f"{where}.port", f"{port} is out of range.", "use 1-65535.")
    if end is not None:
        if not isinstance(port, int):
            raise InputError(f"{where}.endPort", "endPort needs a numeric port.", "set port: to the first number.")
        if isinstance(end, bool) or not isinstance(end, int) or not port <= end <= 65535:
            raise InputError(f"{where}.endPort", f"{end!r} must be a number from port ({port}) to 65535.",
                             "e.g. port: 9100, endPort: 9109.")
    return PortSpec(proto, port, end)


def _parse_rules(raw: Any, where: str, peer_key: str) -> tuple[Rule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InputError(where, "must be a list of rules.", f"write - {{{peer_key}: [...], ports: [...]}}.")
    rules = []
    for i, r in enumerate(raw):
        w = f"{where}[{i}]"
        if r is None:
            r = {}
        if not isinstance(r, Mapping):
            raise InputError(w, "a rule must be a mapping.", f"use keys {peer_key} and ports.")
        extra = set(r) - {peer_key, "ports"}
        if extra:
            raise InputError(w, f"unknown key(s) {sorted(extra)}.", f"a rule has only {peer_key} and ports.")
        peers = r.get(peer_key)
        if peers is not None and not isinstance(peers, list):
            raise InputError(f"{w}.{peer_key}", "must be a list of peers.", "write - podSelector: {...}.")
        ports = r.get("ports")
        if ports is not None and not isinstance(ports, list):
            raise InputError(f"{w}.ports", "must be a list.", "write - {port: 1883}.")
        rules.append(Rule(
            tuple(_parse_peer(p, f"{w}.{peer_key}[{j}]") for j, p in enumerate(peers)) if peers else None,
            tuple(_parse_port(p, f"{w}.ports[{j}]") for j, p in enumerate(ports)) if ports else None))
    return tuple(rules)


def parse_policy(obj: Mapping[str, Any], default_namespace: str = "default", source: str = "") -> Policy:
    """A NetworkPolicy dict (manifest or API JSON) -> :class:`Policy`. ``source`` prefixes the
    field name in errors (e.g. ``"render.yaml doc 3: "``)."""
    md = obj.get("metadata") or {}
    where = _where(source, obj)
    if not isinstance(md.get("name"), str):
        raise InputError(f"{where}: metadata.name", "is missing.", "every object needs metadata.name.")
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        raise InputError(f"{where}: spec", "is missing or not a mapping.", "add spec: {podSelector: {}}.")
    if "podSelector" not in spec:
        raise InputError(f"{where}: spec.podSelector", "is required.", "write podSelector: {} to select every pod.")
    sel = parse_selector(spec.get("podSelector"), f"{where}: spec.podSelector")
    ingress = _parse_rules(spec.get("ingress"), f"{where}: spec.ingress", "from")
    egress = _parse_rules(spec.get("egress"), f"{where}: spec.egress", "to")
    types_raw = spec.get("policyTypes")
    if types_raw:
        if not isinstance(types_raw, list) or not set(types_raw) <= {"Ingress", "Egress"}:
            raise InputError(f"{where}: spec.policyTypes", f"{types_raw!r} is not a list of Ingress/Egress.",
                             "write policyTypes: [Ingress, Egress].")
        types = frozenset(types_raw)
    else:
        # the API server's default: Ingress always, Egress when there are egress rules
        types = frozenset({"Ingress"} | ({"Egress"} if spec.get("egress") else set()))
    return Policy(md.get("namespace") or default_namespace, md["name"], sel, ingress, egress, types)


def pod_endpoint(pod: Mapping[str, Any], ns_labels: Mapping[str, str] | None = None) -> Endpoint:
    """A Pod dict (API JSON, or synthesised from a workload template) -> Endpoint."""
    md = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    ns = md.get("namespace") or "default"
    named: dict[str, list[tuple[int, str]]] = {}
    for c in spec.get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") and isinstance(p.get("containerPort"), int):
                named.setdefault(p["name"], []).append((p["containerPort"], p.get("protocol") or "TCP"))
    ip = (pod.get("status") or {}).get("podIP")
    nsl = dict(ns_labels or {})
    nsl.setdefault(NS_NAME_LABEL, ns)
    return Endpoint(kind="pod", namespace=ns, name=md.get("name", "?"), labels=dict(md.get("labels") or {}),
                    ns_labels=nsl, ip=ipaddress.ip_address(ip) if ip else None, named_ports=named,
                    host_network=bool(spec.get("hostNetwork")))
