"""`vmq-validate reachability`: may this connection happen under the NetworkPolicies of these manifests?

    vmq-validate reachability -f rendered.yaml -n mqtt --from mqtt/r-vernemq-0 --to mqtt/r-vernemq-1 --port 4369
    vmq-validate reachability -f rendered.yaml --from 203.0.113.7 --to mqtt/r-vernemq-0 --port 1883/TCP
    vmq-validate reachability -f rendered.yaml --matrix [--port 1883 --port 4369]   # JSON, every pod pair

General (any workload, not only VerneMQ). Pods come from Pod objects and from workload templates
(StatefulSet NAME -> NAME-0…; Deployment/DaemonSet/Job/CronJob -> NAME-0…, see
validators.netpol.workloads). ``--from``/``--to`` take NAMESPACE/POD, POD (in --namespace),
NAMESPACE/WORKLOAD (its first pod), or an IP address / CIDR (outside the pod network).

Exit codes: 0 allowed (or --matrix printed), 1 denied, 2 usage or input error.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys

from ..collect import manifests
from ..core.errors import InputError
from ..netpol import Endpoint, Evaluator, parse_policy, pod_endpoint
from ..netpol.model import NS_NAME_LABEL, PROTOCOLS
from .base import UtilityCommand


def parse_port(text: str) -> tuple[int, str]:
    num, slash, proto = text.partition("/")
    proto = (proto or ("" if slash else "TCP")).upper()  # "1883/" names no protocol: refused
    if proto not in PROTOCOLS or not (num.isascii() and num.isdigit()) or not 1 <= int(num) <= 65535:
        raise InputError("--port", f"{text!r} is not PORT[/PROTOCOL].", "write e.g. 1883, 53/UDP or 9100/TCP.")
    return int(num), proto


def load(paths: list[str], namespace: str | None) -> tuple[Evaluator, list[Endpoint]]:
    docs = manifests.read_documents(paths, sys.stdin)
    objects = manifests.normalize(docs, namespace or "default")
    facts = manifests.plan_facts(objects, manifests.scope(namespace, None, None, "plan"))
    nsl: dict[str, dict[str, str]] = {}
    for ns in facts["k8s.namespaces"]:
        labels = dict(ns["metadata"].get("labels") or {})
        labels.setdefault(NS_NAME_LABEL, ns["metadata"]["name"])
        nsl[ns["metadata"]["name"]] = labels
    pods = [pod_endpoint(p, nsl.get(p["metadata"]["namespace"])) for p in facts["k8s.pods"]]
    policies = [parse_policy(p) for p in facts["k8s.networkpolicies"]]
    return Evaluator(policies, pods), pods


def resolve(text: str, pods: list[Endpoint], namespace: str | None, flag: str) -> Endpoint:
    try:
        return Endpoint.external(text)
    except ValueError:
        pass
    try:
        net = ipaddress.ip_network(text, strict=False)
        return Endpoint(kind="ip", ip=next(iter(net.hosts()), net.network_address))
    except ValueError:
        pass
    ns, _, name = text.rpartition("/")
    ns = ns or namespace or "default"
    for p in pods:
        if p.namespace == ns and p.name == name:
            return p
    for p in pods:  # NAMESPACE/WORKLOAD -> its first pod
        if p.namespace == ns and p.name.rsplit("-", 1)[0] == name:
            return p
    known = ", ".join(p.id for p in pods[:12]) + (" …" if len(pods) > 12 else "")
    raise InputError(flag, f"{text!r} is neither an IP/CIDR nor a pod of the manifests.",
                     f"use NAMESPACE/POD; pods: {known or '(none)'}.")


class Reachability(UtilityCommand):
    name = "reachability"
    help = "NetworkPolicy reachability in manifests: one connection (allowed/denied and why) or --matrix"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("-f", "--file", action="append", default=[], metavar="PATH",
                            help="manifest file, folder or - for stdin; repeatable")
        parser.add_argument("-n", "--namespace", help="namespace for objects without one, and for bare POD names")
        parser.add_argument("--from", dest="src", metavar="NS/POD|CIDR", help="source pod or address")
        parser.add_argument("--to", dest="dst", metavar="NS/POD|CIDR", help="destination pod or address")
        parser.add_argument("--port", action="append", default=[], metavar="N[/PROTO]",
                            help="destination port (TCP unless /UDP or /SCTP); repeatable with --matrix")
        parser.add_argument("--matrix", action="store_true",
                            help="print every ordered pod pair x port as JSON (ports: --port, else every declared "
                                 "container port)")
        parser.add_argument("--format", choices=["text", "json"], default="text")

    def run(self, args: argparse.Namespace) -> int:
        if not args.file:
            raise InputError("-f", "no manifests given.", "pass -f FILE, -f FOLDER or -f -.")
        ports = [parse_port(p) for p in args.port]
        ev, pods = load(args.file, args.namespace)
        if args.matrix:
            if args.src or args.dst:
                raise InputError("--matrix", "cannot be combined with --from/--to.", "drop one of them.")
            if not ports:
                ports = sorted({(n, proto) for p in pods for lst in p.named_ports.values() for n, proto in lst})
            if not ports:
                raise InputError("--port", "no port given and the pods declare none.", "pass --port N.")
            json.dump(matrix_json(ev, pods, ports), sys.stdout, indent=1)
            sys.stdout.write("\n")
            return 0
        if not (args.src and args.dst and len(ports) == 1):
            raise InputError("--from/--to/--port", "one connection needs --from, --to and exactly one --port.",
                             "e.g. --from mqtt/r-vernemq-0 --to mqtt/r-vernemq-1 --port 4369, or use --matrix.")
        src = resolve(args.src, pods, args.namespace, "--from")
        dst = resolve(args.dst, pods, args.namespace, "--to")
        v = ev.check(src, dst, *ports[0])
        if args.format == "json":
            print(json.dumps(v.to_dict(), indent=2))
        else:
            print(f"{'ALLOWED' if v.allowed else 'DENIED'}: {v.src} -> {v.dst} {v.port}/{v.protocol}")
            print("  " + v.egress.explain())
            print("  " + v.ingress.explain())
        return 0 if v.allowed else 1


def matrix_json(ev: Evaluator, pods: list[Endpoint], ports: list[tuple[int, str]]) -> dict:
    m = ev.matrix(ports)
    ids = [p.id for p in pods]
    allowed = {}
    for (port, proto), rows in m.items():
        allowed[f"{port}/{proto}"] = {ids[s]: [ids[d] for d in range(len(ids)) if (row >> d) & 1]
                                      for s, row in enumerate(rows)}
    return {"pods": ids, "ports": [f"{p}/{proto}" for p, proto in ports], "allowed": allowed,
            "note": "allowed[PORT][SRC] lists the destination pods SRC can open PORT on (pairs with itself left out)"}


COMMAND = Reachability()
