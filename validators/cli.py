"""`vmq-validate`: the command-line front of the validators.

Exit codes: 0 clean, 1 findings at or above --fail-on, 2 usage, input or collection error.
Library use (e.g. the Ansible module): ``execute(argv)`` returns the Report object itself.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from . import __version__
from .commands import load_commands
from .commands.base import ReportCommand
from .core import redact
from .core.errors import VmqError
from .core.model import Report
from .report import render


def _add_report_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("report")
    g.add_argument("--format", choices=["text", "json", "junit"], default="text", help="stdout format (text)")
    g.add_argument("--report-json", metavar="FILE", help="also write the JSON report to FILE")
    g.add_argument("--report-junit", metavar="FILE", help="also write a JUnit XML report to FILE")
    g.add_argument("--fail-on", choices=["critical", "error", "warning", "info", "never"], default="error",
                   help="exit 1 when a finding has this severity or worse (error)")
    g.add_argument("--policy", metavar="FILE", help="YAML policy: per-check severity, enabled, options")
    g.add_argument("--no-color", action="store_true", help="plain text even on a terminal")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors: exit 2 with the usage line, no traceback
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    parser = _Parser(prog="vmq-validate", description="Prove that a VerneMQ cluster on Kubernetes works.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    commands = {}
    for cmd in load_commands():
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.add_arguments(p)
        if isinstance(cmd, ReportCommand):
            _add_report_options(p)
        commands[cmd.name] = cmd
    return parser, commands


def execute(argv: Sequence[str]) -> Report:
    """Parse ``argv`` for a report command and return its Report (raises VmqError on bad input)."""
    parser, commands = build_parser()
    args = parser.parse_args(list(argv))
    cmd = commands[args.command]
    if not isinstance(cmd, ReportCommand):
        raise VmqError(f"{args.command} does not produce a report")
    return cmd.report(args)


def _write(path: str, text: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, target)


def main(argv: Sequence[str] | None = None) -> int:
    parser, commands = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    cmd = commands[args.command]
    try:
        if not isinstance(cmd, ReportCommand):
            return cmd.run(args)
        report = cmd.report(args)
    except VmqError as exc:
        print(redact.scrub(f"vmq-validate {args.command}: error: {exc}"), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    color = args.format == "text" and not args.no_color and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    sys.stdout.write(render(report, args.format, fail_on=args.fail_on, color=color))
    if args.report_json:
        _write(args.report_json, render(report, "json", fail_on=args.fail_on))
    if args.report_junit:
        _write(args.report_junit, render(report, "junit", fail_on=args.fail_on))
    return report.exit_code(args.fail_on)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
