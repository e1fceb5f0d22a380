"""NetworkPolicies enforced with nftables inside each pod's network namespace.

The verdicts come from the project's own evaluator (validators/netpol): for every pod of the run and
every peer (each other pod, the node, any other address) the evaluator is asked, port by port, whether
the connection is allowed; the answers become `accept` rules, and a pod that a policy of that direction
selects gets a final `drop` (default deny). Nothing here re-implements NetworkPolicy semantics.

* Ingress is filtered in the pod's `input` hook, egress in its `output` hook; replies
  (`ct state established,related`) and loopback always pass, as with every CNI.
* The node (the bridge gateway: kubelet probes, the API server's pod proxy, `podman exec` does not use
  the network) may always reach the pod, as Calico, Cilium and the Azure NPM allow host-to-local-pod
  traffic.
* An address that is no pod of the run is judged as an `ipBlock`-only peer through one representative
  address (the gateway for the node, ``OTHER`` for anything else).
* Ports: the evaluator is asked for every port a policy names (ranges expanded) and every container
  port, plus one port that nothing names; when that one is allowed, the rule allows every port.
"""

from __future__ import annotations

import ipaddress
import subprocess
from typing import Iterable

from validators.netpol.evaluate import Evaluator
from validators.netpol.model import Endpoint, Policy

#: a port no chart names: when the evaluator allows it, a rule allows every port of that protocol
UNNAMED_PORT = 1
#: the representative address of "anything that is not a pod of the run and not the node"
OTHER = "198.51.100.7"
PROTOCOLS = ("TCP", "UDP")


def candidate_ports(policies: Iterable[Policy], pods: Iterable[Endpoint]) -> dict[str, list[int]]:
    """protocol -> the ports worth asking about."""
    out: dict[str, set[int]] = {p: {UNNAMED_PORT} for p in PROTOCOLS}
    for pol in policies:
        for rule in pol.ingress + pol.egress:
            for spec in rule.ports or ():
                if spec.protocol not in out or spec.port is None or isinstance(spec.port, str):
                    continue
                end = spec.end_port if spec.end_port is not None else spec.port
                out[spec.protocol].update(range(spec.port, min(end, spec.port + 4096) + 1))
    for ep in pods:
        for pairs in ep.named_ports.values():
            for num, proto in pairs:
                if proto in out:
                    out[proto].add(num)
    return {p: sorted(v) for p, v in out.items()}


def _ports(nums: list[int]) -> str:
    """nft set of ports with ranges joined: {1883, 9100-9109}."""
    parts, start, prev = [], None, None
    for n in nums:
        if start is None:
            start = prev = n
        elif n == prev + 1:
            prev = n
        else:
            parts.append(f"{start}-{prev}" if prev != start else str(start))
            start = prev = n
    if start is not None:
        parts.append(f"{start}-{prev}" if prev != start else str(start))
    return "{ " + ", ".join(parts) + " }"


def _allowed(ev: Evaluator, src: Endpoint, dst: Endpoint, ports: dict[str, list[int]]) -> dict[str, list[int] | None]:
    """protocol -> allowed ports (None = every port) for src -> dst."""
    out: dict[str, list[int] | None] = {}
    for proto, nums in ports.items():
        ok = [n for n in nums if ev.check(src, dst, n, proto).allowed]
        out[proto] = None if UNNAMED_PORT in ok else [n for n in ok if n != UNNAMED_PORT]
    return out


def _match(side: str, addr: str, allowed: dict[str, list[int] | None]) -> list[str]:
    lines = []
    for proto, nums in allowed.items():
        p = proto.lower()
        if nums is None:
            lines.append(f"ip {side} {addr} meta l4proto {p} accept")
        elif nums:
            lines.append(f"ip {side} {addr} {p} dport {_ports(nums)} accept")
    return lines


def ruleset(table: str, me: Endpoint, pods: list[Endpoint], policies: list[Policy], gateway: str) -> str:
    """The nft script for pod ``me`` (``pods``: every pod of the run with its IP, ``me`` included).

    Empty when no policy selects the pod in either direction."""
    ev = Evaluator(policies, pods)
    ports = candidate_ports(policies, pods)
    others = [p for p in pods if p.ip is not None and p.id != me.id]
    pod_ips = ", ".join(sorted({str(p.ip) for p in pods if p.ip is not None} | {gateway}))
    node, other = Endpoint.external(gateway), Endpoint.external(OTHER)
    chains = []
    if ev.selecting(me, "Ingress"):
        rules = ["ct state established,related accept", 'iifname "lo" accept', f"ip saddr {gateway} accept"]
        for src in others:
            rules += _match("saddr", str(src.ip), _allowed(ev, src, me, ports))
        rules += _match("saddr", f"!= {{ {pod_ips} }}", _allowed(ev, other, me, ports))
        rules.append("counter drop")
        chains.append(("ingress", "input", rules))
    if ev.selecting(me, "Egress"):
        rules = ["ct state established,related accept", 'oifname "lo" accept']
        for dst in others:
            rules += _match("daddr", str(dst.ip), _allowed(ev, me, dst, ports))
        rules += _match("daddr", gateway, _allowed(ev, me, node, ports))
        rules += _match("daddr", f"!= {{ {pod_ips} }}", _allowed(ev, me, other, ports))
        rules.append("counter drop")
        chains.append(("egress", "output", rules))
    if not chains:
        return ""
    body = []
    for name, hook, rules in chains:
        body.append(f"  chain {name} {{\n    type filter hook {hook} priority 0; policy accept;\n"
                    + "".join(f"    {r}\n" for r in rules) + "  }")
    return (f"table inet {table}\ndelete table inet {table}\n"
            f"table inet {table} {{\n" + "\n".join(body) + "\n}\n")


def apply(pid: int, script: str, table: str) -> None:
    """Load ``script`` into the network namespace of process ``pid`` (replacing the table); an empty
    script removes the table."""
    if not script:
        script = f"table inet {table}\ndelete table inet {table}\n"
    proc = subprocess.run(["nsenter", "-t", str(pid), "-n", "nft", "-f", "-"], input=script, text=True,
                          capture_output=True, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"nft in the netns of pid {pid} failed: {proc.stderr.strip()[-800:]}\n{script}")


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False
