"""Base classes for CLI sub-commands."""

from __future__ import annotations

import argparse
from typing import Any

from ..core.model import CheckSpec, Facts, Report
from ..core.policy import Policy
from ..core.registry import by_category
from ..core.runner import run_checks


class UtilityCommand:
    """A command that prints something and returns an exit code (no Report)."""

    name = ""
    help = ""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        pass

    def run(self, args: argparse.Namespace) -> int:
        raise NotImplementedError


class ReportCommand:
    """collect(args) -> (Facts, meta) once; then the pure checks of ``categories``."""

    name = ""
    help = ""
    categories: tuple[str, ...] = ()

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        pass

    def collect(self, args: argparse.Namespace) -> tuple[Facts, dict[str, Any]]:
        raise NotImplementedError

    def checks(self, args: argparse.Namespace) -> list[CheckSpec]:
        return by_category(*self.categories)

    def report(self, args: argparse.Namespace) -> Report:
        policy = Policy.load(getattr(args, "policy", None))
        facts, meta = self.collect(args)
        return run_checks(self.name, self.checks(args), facts, policy, meta)


def add_kube_source_arguments(group: argparse._ArgumentGroup, in_cluster_help: str | None = None) -> None:
    """--context/--kubeconfig[/--in-cluster]/--namespace/--release/--selector, the same on every live command."""
    group.add_argument("--context", help="kube context (required for a cluster; never implicit)")
    group.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig file (default: the client's default)")
    if in_cluster_help:
        group.add_argument("--in-cluster", action="store_true", help=in_cluster_help)
    group.add_argument("--namespace", help="namespace of the release")
    group.add_argument("--release", help="Helm release: selects app.kubernetes.io/instance=RELEASE")
    group.add_argument("--selector", help="label selector of the VerneMQ pods (overrides --release)")
