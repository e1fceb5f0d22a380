"""`vmq-validate checks` lists the catalog; `vmq-validate explain ID` prints one entry."""

from __future__ import annotations

import argparse
import json

from ..core.registry import catalog, get
from .base import UtilityCommand


class Checks(UtilityCommand):
    name = "checks"
    help = "list every check: ID, severity, category, title"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--format", choices=["text", "json"], default="text")

    def run(self, args: argparse.Namespace) -> int:
        cat = catalog()
        if args.format == "json":
            print(json.dumps([{"id": c.id, "title": c.title, "severity": c.severity.value,
                               "category": c.category, "remedy": c.remedy, "needs": list(c.needs),
                               "options": dict(c.defaults)} for c in cat.values()], indent=2))
        else:
            for c in cat.values():
                print(f"{c.id:<15} {c.severity.value:<8} {c.category:<13} {c.title}")
        return 0


class Explain(UtilityCommand):
    name = "explain"
    help = "explain one check: what it looks at, why, and how to fix it"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("check_id", metavar="ID")

    def run(self, args: argparse.Namespace) -> int:
        c = get(args.check_id)
        print(f"{c.id}: {c.title}\nseverity: {c.severity.value}   category: {c.category}   "
              f"needs: {', '.join(c.needs) or '-'}")
        if c.defaults:
            print("options: " + ", ".join(f"{k}={v!r}" for k, v in c.defaults.items()))
        if c.doc:
            print("\n" + c.doc)
        print("\nremedy: " + c.remedy)
        return 0


COMMAND = [Checks(), Explain()]
