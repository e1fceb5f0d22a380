"""`vmq-validate cluster`: the traffic checks on a live cluster (read-only; RBAC in docs/rbac.md).

    vmq-validate cluster --context aks-prod --namespace mqtt --release r
    vmq-validate cluster --in-cluster --namespace mqtt --release r --format junit

The same checks as `plan`, over the same fact shapes, plus the live-only ones (allocated
healthCheckNodePort, EndpointSlices, pod placement). Anything the API refuses or does not answer
in time (401, 403, timeouts, malformed answers) makes the checks that need it report `unknown`
with the reason. Secrets are never read.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..collect import kube_traffic, manifests
from ..collect.kubeclient import connect
from ..core.errors import InputError
from ..core.model import Facts
from .base import ReportCommand
from .plan import add_scope_arguments, check_options


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
        add_scope_arguments(parser)

    def collect(self, args: argparse.Namespace) -> tuple[Facts, dict[str, Any]]:
        if not args.namespace:
            raise InputError("--namespace", "is required for a live cluster.", "pass --namespace NS.")
        if args.timeout <= 0:
            raise InputError("--timeout", f"{args.timeout:g} is not positive.", "use e.g. --timeout 20.")
        check_options(args)
        sc = manifests.scope(args.namespace, args.release, args.selector, "live")
        kube = connect(args.kubeconfig, args.context, args.in_cluster, timeout=(5, args.timeout))
        facts = kube_traffic.collect(kube, args.namespace, sc)
        meta = {"source": "kubernetes", "context": kube.context, "namespace": args.namespace,
                "release": args.release, "selector": ",".join(f"{k}={v}" for k, v in sc["selector"].items())}
        return facts, meta


COMMAND = Cluster()
