"""`vmq-validate cluster`: the traffic checks on a live cluster (read-only; RBAC in docs/rbac.md).

    vmq-validate cluster --context aks-prod --namespace mqtt --release r
    vmq-validate cluster --in-cluster --namespace mqtt --release r --format junit
    vmq-validate cluster --in-cluster --namespace mqtt --release r --read-scope namespace   # Roles only

The same checks as `plan`, over the same fact shapes, plus the live-only ones (allocated
healthCheckNodePort, EndpointSlices, pod placement). Anything the API refuses or does not answer
in time (401, 403, timeouts, malformed answers) makes the checks that need it report `unknown`
with the reason. Secrets are never read.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from ..collect import kube_traffic, manifests
from ..collect.kubeclient import connect
from ..core.errors import InputError
from ..core.model import Facts
from .base import ReportCommand
from .plan import add_scope_arguments, check_options

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


class Cluster(ReportCommand):
    name = "cluster"
    help = "traffic checks on a live cluster (kubeconfig + explicit --context, or --in-cluster)"
    categories = ("traffic",)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        g = parser.add_argument_group("cluster")
        g.add_argument("--context", help="kube context (required outside a pod; never implicit)")
        g.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig file (default: the client's default)")
        g.add_argument("--in-cluster", action="store_true", help="use the pod's service account")
        g.add_argument("--timeout", type=float, default=20.0, metavar="SECONDS",
                       help="per-request read timeout (20)")
        g.add_argument("--read-scope", choices=kube_traffic.READ_SCOPES, default="cluster",
                       help="cluster (default): also read namespaces, nodes and the Gateway API cluster-wide; "
                            "namespace: only namespaced reads an identity with Roles can make (the Gateway API "
                            "routes in the release namespace and --route-namespace, their parent Gateways by "
                            "name; the checks that need namespace labels skip, saying why)")
        g.add_argument("--route-namespace", action="append", default=[], metavar="NS",
                       help="with --read-scope namespace: also read the Gateway API routes in NS (routes kept "
                            "outside the release namespace, chart: gateway.routeNamespace); repeatable")
        g.add_argument("--no-gateway-api", dest="gateway_api", action="store_false",
                       help="the release uses no Gateway API: read none of it (the Gateway API checks skip)")
        add_scope_arguments(parser)

    def collect(self, args: argparse.Namespace) -> tuple[Facts, dict[str, Any]]:
        if not args.namespace:
            raise InputError("--namespace", "is required for a live cluster.", "pass --namespace NS.")
        if args.timeout <= 0:
            raise InputError("--timeout", f"{args.timeout:g} is not positive.", "use e.g. --timeout 20.")
        for ns in args.route_namespace:
            if not DNS_LABEL.fullmatch(ns):
                raise InputError("--route-namespace", f"{ns!r} is not a namespace name.",
                                 "use a DNS label (lower-case letters, digits and '-', at most 63), e.g. gateways.")
        if args.route_namespace and args.read_scope != "namespace":
            raise InputError("--route-namespace", "only applies with --read-scope namespace (cluster-wide reads "
                             "see every namespace).", "add --read-scope namespace, or drop --route-namespace.")
        check_options(args)
        sc = manifests.scope(args.namespace, args.release, args.selector, "live")
        kube = connect(args.kubeconfig, args.context, args.in_cluster, timeout=(5, args.timeout))
        facts = kube_traffic.collect(kube, args.namespace, sc, read_scope=args.read_scope,
                                     route_namespaces=args.route_namespace, gateway_api=args.gateway_api)
        meta = {"source": "kubernetes", "context": kube.context, "namespace": args.namespace,
                "release": args.release, "selector": ",".join(f"{k}={v}" for k, v in sc["selector"].items()),
                "read_scope": args.read_scope}
        return facts, meta


COMMAND = Cluster()
