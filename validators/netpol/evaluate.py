"""Kubernetes NetworkPolicy semantics, for any workload (not only VerneMQ).

A connection ``src -> dst : port/proto`` is allowed when BOTH
  * the source's egress allows it: no policy with policyType Egress selects the source pod
    (isolation is opt-in), or one of the rules of one such policy matches (peer ``to`` and port);
  * the destination's ingress allows it: the same with policyType Ingress and ``from``.
Policies only add allowances (a union); nothing denies explicitly. Policies apply to pods of
their own namespace. Sources or destinations outside the pod network (an IP address) have no
policies of their own and match only ``ipBlock`` peers. Pod IPs match ``ipBlock`` too when the pod's
IP is known (live mode) — the Kubernetes docs leave this to the network plugin; most plugins
behave this way. ``hostNetwork`` pods are never selected by policies.

Two ways to ask:
  * :meth:`Evaluator.check` — one connection, with the policies that decided it (for people);
  * :meth:`Evaluator.matrix` — every ordered pod pair x port, with bitsets (for the benchmark and
    ``reachability --matrix``); both give the same answers (a property test holds them together).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from .model import Endpoint, Peer, Policy, PortSpec, Rule


@dataclass
class Side:
    """One direction's verdict: which policies isolate the pod, which of their rules allowed."""

    direction: str  # "egress" (of the source) or "ingress" (of the destination)
    subject: str
    applies: bool = True  # False: the subject is not a pod (no policies can apply)
    selected_by: list[str] = field(default_factory=list)
    allowed_by: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return not self.applies or not self.selected_by or bool(self.allowed_by)

    def explain(self) -> str:
        if not self.applies:
            return f"{self.direction} of {self.subject}: not a pod, no NetworkPolicy applies"
        if not self.selected_by:
            return (f"{self.direction} of {self.subject}: allowed, no NetworkPolicy with policyType "
                    f"{self.direction.capitalize()} selects it (not isolated)")
        if self.allowed_by:
            return f"{self.direction} of {self.subject}: allowed by {', '.join(self.allowed_by)}"
        return (f"{self.direction} of {self.subject}: DENIED, isolated by {', '.join(self.selected_by)} "
                "and no rule of theirs matches this peer and port")

    def to_dict(self) -> dict:
        return {"direction": self.direction, "subject": self.subject, "allowed": self.allowed,
                "isolated_by": list(self.selected_by), "allowed_by": list(self.allowed_by)}


@dataclass
class Verdict:
    src: str
    dst: str
    port: int
    protocol: str
    egress: Side
    ingress: Side

    @property
    def allowed(self) -> bool:
        return self.egress.allowed and self.ingress.allowed

    def deciding_policies(self) -> list[str]:
        out = []
        for side in (self.egress, self.ingress):
            if side.applies and side.selected_by:
                out.extend(side.allowed_by or side.selected_by)
        return sorted({p.split(" ")[0] for p in out})

    def to_dict(self) -> dict:
        return {"from": self.src, "to": self.dst, "port": self.port, "protocol": self.protocol,
                "allowed": self.allowed, "egress": self.egress.to_dict(), "ingress": self.ingress.to_dict()}


def port_matches(spec: PortSpec, dst: Endpoint, port: int, proto: str) -> bool:
    if spec.protocol != proto:
        return False
    if spec.port is None:
        return True
    if isinstance(spec.port, str):  # a named port is resolved on the destination pod
        return dst.kind == "pod" and port in dst.resolve(spec.port, proto)
    if spec.end_port is not None:
        return spec.port <= port <= spec.end_port
    return spec.port == port


def peer_matches(policy: Policy, peer: Peer, ep: Endpoint) -> bool:
    if peer.ip_block is not None:
        return ep.ip is not None and peer.ip_block.contains(ep.ip)
    if ep.kind != "pod":
        return False
    if peer.ns_selector is None:  # podSelector alone: pods of the policy's own namespace
        if ep.namespace != policy.namespace:
            return False
    elif not peer.ns_selector.matches(ep.ns_labels):
        return False
    return peer.pod_selector is None or peer.pod_selector.matches(ep.labels)


def _rule_allows(policy: Policy, rule: Rule, peer_ep: Endpoint, dst: Endpoint, port: int, proto: str) -> bool:
    if rule.ports and not any(port_matches(p, dst, port, proto) for p in rule.ports):
        return False
    return not rule.peers or any(peer_matches(policy, p, peer_ep) for p in rule.peers)


_NOWHERE = Endpoint("ip")  # numeric port specs do not depend on the destination


class Evaluator:
    def __init__(self, policies: Iterable[Policy], pods: Iterable[Endpoint] = ()):
        self.policies = list(policies)
        self.pods = list(pods)
        self._by_ns: dict[str, list[Policy]] = {}
        for p in self.policies:
            self._by_ns.setdefault(p.namespace, []).append(p)

    def selecting(self, pod: Endpoint, policy_type: str) -> list[Policy]:
        """Policies of ``policy_type`` ("Ingress"/"Egress") that isolate ``pod``."""
        if pod.kind != "pod" or pod.host_network:
            return []
        return [p for p in self._by_ns.get(pod.namespace, ())
                if policy_type in p.types and p.pod_selector.matches(pod.labels)]

    def _side(self, direction: str, subject: Endpoint, other: Endpoint, dst: Endpoint,
              port: int, proto: str) -> Side:
        side = Side(direction, subject.id, applies=subject.kind == "pod")
        if not side.applies:
            return side
        ptype = "Egress" if direction == "egress" else "Ingress"
        for pol in self.selecting(subject, ptype):
            side.selected_by.append(pol.id)
            rules = pol.egress if direction == "egress" else pol.ingress
            for i, rule in enumerate(rules):
                if _rule_allows(pol, rule, other, dst, port, proto):
                    side.allowed_by.append(f"{pol.id} ({direction}[{i}])")
        return side

    def check(self, src: Endpoint, dst: Endpoint, port: int, proto: str = "TCP") -> Verdict:
        return Verdict(src.id, dst.id, port, proto,
                       egress=self._side("egress", src, dst, dst, port, proto),
                       ingress=self._side("ingress", dst, src, dst, port, proto))

    # -- the whole matrix, with bitsets -----------------------------------------------------------
    def matrix(self, ports: Iterable[tuple[int, str]]) -> dict[tuple[int, str], list[int]]:
        """For each (port, proto): ``allowed[s]`` = bitset of destination pod indices that pod ``s``
        can reach (``s`` itself excluded). Pod indices are positions in ``self.pods``."""
        pods = self.pods
        n = len(pods)
        full = (1 << n) - 1
        peer_cache: dict[tuple[str, Peer], int] = {}

        def peer_mask(pol: Policy, peer: Peer) -> int:
            key = (pol.namespace, peer)
            if key not in peer_cache:
                m = 0
                for i, ep in enumerate(pods):
                    if peer_matches(pol, peer, ep):
                        m |= 1 << i
                peer_cache[key] = m
            return peer_cache[key]

        def rule_peers(pol: Policy, rule: Rule) -> int:
            if not rule.peers:
                return full
            m = 0
            for peer in rule.peers:
                m |= peer_mask(pol, peer)
            return m

        sel_in = [self.selecting(p, "Ingress") for p in pods]
        sel_eg = [self.selecting(p, "Egress") for p in pods]
        peers_of = {}
        for pol in self.policies:
            for rule in pol.ingress + pol.egress:
                peers_of[id(rule)] = rule_peers(pol, rule)

        named_cache: dict[tuple[str, int, str], int] = {}

        def named_mask(name: str, port: int, proto: str) -> int:
            """Pods on which the container port called ``name`` is ``port``/``proto``."""
            key = (name, port, proto)
            if key not in named_cache:
                m = 0
                for i, ep in enumerate(pods):
                    if (port, proto) in ep.named_ports.get(name, ()):
                        m |= 1 << i
                named_cache[key] = m
            return named_cache[key]

        out: dict[tuple[int, str], list[int]] = {}
        for port, proto in ports:
            # rule -> bitset of destination pods on which the rule's ports match this port
            dst_ok: dict[int, int] = {}

            def rule_dsts(rule: Rule) -> int:
                key = id(rule)
                if key not in dst_ok:
                    if not rule.ports:
                        dst_ok[key] = full
                    else:
                        m = 0
                        for spec in rule.ports:
                            if isinstance(spec.port, str):
                                if spec.protocol == proto:
                                    m |= named_mask(spec.port, port, proto)
                            elif port_matches(spec, _NOWHERE, port, proto):
                                m = full
                                break
                        dst_ok[key] = m
                return dst_ok[key]

            # destinations grouped by the set of sources their ingress admits: admitted[s] is then an OR
            # over the groups (few) instead of a test per destination (many)
            open_dsts = 0
            groups: dict[int, int] = {}
            for d in range(n):
                if not sel_in[d]:
                    open_dsts |= 1 << d
                    continue
                m = 0
                for pol in sel_in[d]:
                    for rule in pol.ingress:
                        if (rule_dsts(rule) >> d) & 1:
                            m |= peers_of[id(rule)]
                groups[m] = groups.get(m, 0) | (1 << d)
            group_items = [(m, dsts) for m, dsts in groups.items() if m]
            egress_cache: dict[tuple[int, ...], int] = {}
            allowed = []
            for s in range(n):
                key = tuple(id(p) for p in sel_eg[s])
                if key not in egress_cache:
                    if not sel_eg[s]:
                        eg = full
                    else:
                        eg = 0
                        for pol in sel_eg[s]:
                            for rule in pol.egress:
                                eg |= peers_of[id(rule)] & rule_dsts(rule)
                    egress_cache[key] = eg
                admitted = open_dsts
                for m, dsts in group_items:
                    if (m >> s) & 1:
                        admitted |= dsts
                allowed.append(egress_cache[key] & admitted & ~(1 << s))
            out[(port, proto)] = allowed
        return out
