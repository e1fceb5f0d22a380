"""`vmq-validate plan`: the traffic checks on rendered manifests, before anything is deployed.

    helm template r charts/vernemq -n mqtt | vmq-validate plan -f -          # namespace, release from the manifests
    helm template r charts/vernemq -n mqtt | vmq-validate plan -f - --namespace mqtt --release r
    helm template ... | vmq-validate plan -f - --crd-dir gateway-api/config/crd/standard
    vmq-validate plan -f rendered/ --namespace mqtt --release r --format json

The flags are a stable interface (the Ansible role calls
``validators.cli.execute(["plan", "-f", DIR, "--namespace", NS, "--release", R])``):
-f/--file (repeatable; file, folder or - for stdin), --namespace, --release, --selector, --crd-dir,
and the common report options (--format, --report-json, --report-junit, --fail-on, --policy).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..collect import manifests
from ..core.model import Facts
from .base import ReportCommand


def check_options(args: argparse.Namespace) -> None:
    """Bad traffic-check options in --policy are input errors (exit 2), found before collecting."""
    from ..checks.traffic.netpol import validate_options
    from ..core.policy import Policy
    from ..core.registry import by_category

    from ..checks.traffic.gateway import validate_options as validate_gateway_options

    policy = Policy.load(getattr(args, "policy", None))
    options = {spec.id: policy.options(spec) for spec in by_category("traffic")}
    validate_options(options)
    validate_gateway_options(options)


def add_scope_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("release")
    g.add_argument("-n", "--namespace", help="namespace of the release (plan: also the default for objects "
                   "without one, like `helm template -n`)")
    g.add_argument("--release", help="Helm release: selects app.kubernetes.io/instance=RELEASE")
    g.add_argument("--selector", metavar="K=V,...", help="label selector of the VerneMQ pods (overrides --release)")


class Plan(ReportCommand):
    name = "plan"
    help = "traffic checks on rendered manifests (helm template ... | vmq-validate plan -f -)"
    categories = ("traffic",)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("-f", "--file", action="append", default=[], metavar="PATH",
                            help="manifest file, folder (recursive *.yaml/*.yml/*.json) or - for stdin; repeatable")
        add_scope_arguments(parser)
        parser.add_argument("--crd-dir", metavar="DIR",
                            help="folder of CustomResourceDefinitions (the Gateway API CRDs you install): Gateway "
                                 "API objects are validated against their schemas (TRAFFIC-016); without it they "
                                 "are not")

    def collect(self, args: argparse.Namespace) -> tuple[Facts, dict[str, Any]]:
        check_options(args)
        return manifests.collect(args.file, args.namespace, args.release, args.selector, stdin=sys.stdin,
                                 crd_dir=args.crd_dir)


COMMAND = Plan()
