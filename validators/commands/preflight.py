"""`vmq-validate preflight`: is it safe to start a rolling upgrade now?

    vmq-validate preflight --context C --namespace NS --release R --target-version 2.1.2
    vmq-validate preflight --targets lab.yaml --target-version 2.1.2 --interval 5
    vmq-validate preflight --replay before/ after/            # captured answers (views: the last directory)
"""

from __future__ import annotations

import argparse
import os
import re
import time
from typing import Any

from ..collect import preflight as collect
from ..collect.kubeclient import connect
from ..collect.targets import load_targets
from ..core.errors import InputError
from ..core.model import Facts
from .base import ReportCommand, add_kube_source_arguments


#: the same versions the Ansible role accepts (vernemq_preflight_target_version); ASCII digits only
_TARGET_VERSION = re.compile(r"v?[0-9]+\.[0-9]+(\.[0-9]+)?([-+][A-Za-z0-9.]+)?")


class Preflight(ReportCommand):
    name = "preflight"
    help = "upgrade pre-flight: membership, netsplits, pods, PDB, client state, backlog, version path"
    categories = ("preflight",)

    #: injectable for tests (no real waiting there)
    sleep = staticmethod(time.sleep)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        src = parser.add_argument_group("source (one of)")
        src.add_argument("--targets", metavar="FILE", help="a targets file (VMs, the lab): nodes reached over HTTP")
        src.add_argument("--replay", nargs="+", metavar="DIR",
                         help="captured answers (nodeN_status.json, nodeN_metrics.prom): the views from the last "
                              "directory, /metrics from the first and the last")
        add_kube_source_arguments(src)
        parser.add_argument("--target-version", metavar="V", help="the version the upgrade goes to (e.g. 2.1.2)")
        parser.add_argument("--interval", type=float, default=10.0, metavar="SECONDS",
                            help="seconds between the two /metrics samples (10)")
        parser.add_argument("--http-port", type=int, default=8888, help="VerneMQ HTTP port when a pod names none")

    def collect(self, args: argparse.Namespace) -> tuple[Facts, dict[str, Any]]:
        if args.interval < 0:
            raise InputError("--interval", f"{args.interval:g} is negative.", "use 0 or more seconds.")
        if args.target_version is not None and not _TARGET_VERSION.fullmatch(args.target_version):
            raise InputError("--target-version", f"{args.target_version!r} is not a version.",
                             "write e.g. 2.1.2 or v2.1.2 (an image tag suffix such as -alpine is fine).")
        if not 1 <= args.http_port <= 65535:
            raise InputError("--http-port", f"{args.http_port} is not a TCP port.", "use 1 to 65535.")
        if args.replay:
            if args.targets or args.context:
                raise InputError("--replay", "cannot be combined with --targets or --context.", "pick one source.")
            missing = [d for d in args.replay if not os.path.isdir(d)]
            if missing:
                raise InputError("--replay", f"{missing[0]} is not a directory.", "pass captured phase directories.")
            try:
                facts = collect.collect_replay(args.replay, args.target_version)
            except ValueError as exc:
                raise InputError("--replay", f"{exc}.", "pass the directories that hold nodeN_status.json etc.") \
                    from None
            return facts, {"source": "replay", "replay": list(args.replay), "target_version": args.target_version}
        if args.targets:
            if args.context:
                raise InputError("--targets", "cannot be combined with --context.", "pick one source.")
            spec = load_targets(args.targets, need_cookie=False)
            facts = collect.collect_targets(spec, args.target_version, args.interval, sleep=self.sleep)
            return facts, {"source": "targets", "targets": args.targets, "target_version": args.target_version}
        if not args.namespace:
            raise InputError("--namespace", "is required with a Kubernetes source.", "pass --namespace NS.")
        if not (args.release or args.selector):
            raise InputError("--release", "a release or a selector is required.",
                             "pass --release R (or --selector LABELS).")
        kube = connect(args.kubeconfig, args.context)
        selector = args.selector or f"app.kubernetes.io/name=vernemq,app.kubernetes.io/instance={args.release}"
        facts = collect.collect_kube(kube, args.namespace, selector, args.target_version, args.interval,
                                     http_port=args.http_port, sleep=self.sleep)
        return facts, {"source": "kubernetes", "context": kube.context, "namespace": args.namespace,
                       "selector": selector, "target_version": args.target_version}


COMMAND = Preflight()
