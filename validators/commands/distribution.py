"""`vmq-validate distribution`: EPMD, distribution ports, cookie and membership, pod to pod.

    vmq-validate distribution --targets cluster.yaml                 # VMs, bare metal, the lab
    vmq-validate distribution --context C --namespace NS --release R  # pods; cookie/API key from Secrets
"""

from __future__ import annotations

import argparse
from typing import Any

from ..collect import distribution as collect
from ..collect.targets import TRANSPORTS, load_targets
from ..core.errors import InputError
from ..core.model import Facts
from ..transports import get_transport
from .base import ReportCommand, add_kube_source_arguments


class Distribution(ReportCommand):
    name = "distribution"
    help = "Erlang distribution: EPMD, distribution port range, cluster port, cookie handshake, netsplits"
    categories = ("distribution",)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        src = parser.add_argument_group("source (one of)")
        src.add_argument("--targets", metavar="FILE", help="targets file (see docs/distribution.md); secrets by "
                                                          "cookie_env/cookie_file and api_key_env/api_key_file")
        add_kube_source_arguments(src, in_cluster_help="use the pod's service account (a Job)")
        parser.add_argument("--transport", choices=TRANSPORTS,
                            help="override how probes run (default: the targets file's; kube-exec for a cluster)")
        parser.add_argument("--timeout", type=float, default=3.0, metavar="SECONDS",
                            help="timeout of every network step (3)")
        parser.add_argument("--concurrency", type=int, default=16, metavar="N",
                            help="sources probed at once, and targets at once per source (16)")
        parser.add_argument("--no-views", action="store_true",
                            help="do not read /api/v1/cluster/show (DIST-007 is skipped)")

    def collect(self, args: argparse.Namespace) -> tuple[Facts, dict[str, Any]]:
        if not 0 < args.timeout <= 120:
            raise InputError("--timeout", f"{args.timeout:g} is not a useful timeout.", "use 0.1 to 120 seconds.")
        if not 1 <= args.concurrency <= 256:
            raise InputError("--concurrency", f"{args.concurrency} is out of range.", "use 1 to 256.")
        kube = None
        if args.targets:
            if args.context or args.in_cluster:
                raise InputError("--targets", "cannot be combined with --context/--in-cluster.", "pick one source.")
            spec = load_targets(args.targets, need_cookie=False)
            meta: dict[str, Any] = {"source": "targets", "targets": args.targets}
            transport_name = args.transport or spec.transport
            if transport_name == "kube-exec":
                raise InputError("--transport", "kube-exec needs a Kubernetes source.",
                                 "use --context/--namespace/--release, or direct/netns with a targets file.")
        else:
            from ..collect.kube_targets import targets_from_kube
            from ..collect.kubeclient import connect
            if not args.namespace:
                raise InputError("--namespace", "is required with a Kubernetes source.", "pass --namespace NS.")
            if not (args.release or args.selector):
                raise InputError("--release", "a release or a selector is required.",
                                 "pass --release R (or --selector LABELS).")
            kube = connect(args.kubeconfig, args.context, in_cluster=args.in_cluster)
            selector = args.selector or f"app.kubernetes.io/name=vernemq,app.kubernetes.io/instance={args.release}"
            transport_name = args.transport or "kube-exec"
            if transport_name in ("netns", "netns-shell"):
                raise InputError("--transport", f"{transport_name} only works with a targets file (the lab).",
                                 "use kube-exec or direct.")
            spec, kmeta = targets_from_kube(kube, args.namespace, selector, transport=transport_name)
            meta = {"source": "kubernetes", "context": kube.context, "namespace": args.namespace,
                    "selector": selector, **kmeta}
        if transport_name != spec.transport:
            from dataclasses import replace
            if transport_name in ("netns", "netns-shell") and any(not n.netns for n in spec.nodes):
                raise InputError("--transport", f"{transport_name} needs netns: on every node of the targets file.",
                                 "add netns: NAME to each node, or use --transport direct.")
            spec = replace(spec, transport=transport_name)
        transport = get_transport(transport_name, args.concurrency, kube=kube)
        facts = collect.collect(spec, transport, timeout=args.timeout, concurrency=args.concurrency,
                                views=not args.no_views)
        meta.update(transport=transport_name, nodes=len(spec.nodes), cookie_given=bool(spec.cookie),
                    api_key_given=bool(spec.api_key))
        return facts, meta


COMMAND = Distribution()
