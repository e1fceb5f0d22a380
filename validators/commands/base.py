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
