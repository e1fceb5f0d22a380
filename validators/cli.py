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
from .core import inputs, redact
from .core.errors import InputError, VmqError
from .core.model import FAIL_ON, Report
from .report import render
from .report.writer import check_target, write_report


def _add_report_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("report")
    g.add_argument("--format", choices=["text", "json", "junit"], default="text", help="stdout format (text)")
    g.add_argument("--report-json", metavar="FILE", help="also write the JSON report to FILE")
    g.add_argument("--report-junit", metavar="FILE", help="also write a JUnit XML report to FILE")
    g.add_argument("--fail-on", choices=FAIL_ON, default="error",
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
        _strict_numbers(p)
        commands[cmd.name] = cmd
    return parser, commands


# ----------------------------------------------------------------------------- input errors: one place
def _strict_numbers(parser: argparse.ArgumentParser) -> None:
    """Every ``type=int`` / ``type=float`` option of every command: ASCII digits only (``int()`` takes
    ``١٨٨٣``), and seconds finite, 0 or more (``float()`` takes ``nan``, ``inf``, ``-1`` and ``1e400``)."""
    for action in parser._actions:
        if action.type is int:
            action.type = _as_type("int", lambda t: inputs.whole_number(t, "value", 0, 10**9))
        elif action.type is float:
            action.type = _as_type("seconds", lambda t: inputs.seconds(t, "value"))


def _as_type(name: str, conv):
    def convert(text: str):
        try:
            return conv(text)
        except InputError as exc:  # argparse prints "argument --opt: PROBLEM FIX" and exits 2
            raise argparse.ArgumentTypeError(f"{exc.problem} Fix: {exc.fix}") from None
    convert.__name__ = name
    return convert


def _check_report_paths(args: argparse.Namespace) -> None:
    """--report-json/--report-junit must name files that can be written, checked before anything runs
    (a directory there used to fail after the result was printed)."""
    seen: dict[str, str] = {}
    for opt in ("report_json", "report_junit"):
        path = getattr(args, opt, None)
        if path is None:
            continue
        field = "--" + opt.replace("_", "-")
        if not path.strip():
            raise InputError(field, "is empty.", "name a file, e.g. artifacts/report.json.")
        check_target(path, field)  # symlinks, devices other than char/FIFO, sockets: the writer's refusals
        p = Path(path)
        if p.is_dir():
            raise InputError(field, f"{path} is a directory.", f"name a file in it, e.g. {p / 'report'}.")
        real = os.path.realpath(path)
        if real in seen and not (p.exists() and (p.is_char_device() or p.is_fifo())):  # /dev/null twice is fine
            raise InputError(field, f"{path} is also given to {seen[real]}.", "give each report its own file.")
        seen[real] = field
        parent = p.absolute().parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent  # the writer creates the missing folders below the nearest existing one
        if not parent.is_dir():
            raise InputError(field, f"{parent} is not a directory, so {path} cannot be created.",
                             "name a file in an existing folder.")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise InputError(field, f"cannot write into {parent} (permission denied).", "name a writable place.")


def _fail(command: str, exc: BaseException) -> int:
    """The one line for an error that ends a run; exit 2 (VmqError's own code)."""
    if isinstance(exc, VmqError):
        text, code = f"vmq-validate {command}: error: {exc}", exc.exit_code
    elif isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
        where = f" ({exc.filename})" if exc.filename else ""
        text, code = f"vmq-validate {command}: error: {exc.strerror or type(exc).__name__}{where}", 2
    else:  # a bug, not bad input: still one line, never a traceback (secrets scrubbed like all output)
        text, code = (f"vmq-validate {command}: internal error: {type(exc).__name__}: {str(exc)[:300]} "
                      "(a bug: please report it with the command line)"), 2
    try:
        print(redact.scrub(text), file=sys.stderr)
    except (OSError, ValueError):
        pass
    return code


def _stdout_closed() -> None:
    """The reader of stdout went away (``| head -1``): no more output, no 'Exception ignored' at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def execute(argv: Sequence[str]) -> Report:
    """Parse ``argv`` for a report command and return its Report (raises VmqError on bad input)."""
    parser, commands = build_parser()
    args = parser.parse_args(list(argv))
    cmd = commands[args.command]
    if not isinstance(cmd, ReportCommand):
        raise VmqError(f"{args.command} does not produce a report")
    return cmd.report(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 clean, 1 findings at or above --fail-on, 2 usage/input/collection error (one line on
    stderr, never a traceback: this is the one place where errors become exit codes)."""
    parser, commands = build_parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    except BrokenPipeError:  # `vmq-validate --help | head -1`
        _stdout_closed()
        return 0
    except SystemExit as exc:  # usage errors (2), --help and --version (0): returned, so callers get an int
        return exc.code if isinstance(exc.code, int) else 2
    cmd = commands[args.command]
    try:
        if not isinstance(cmd, ReportCommand):
            try:
                return cmd.run(args)
            except BrokenPipeError:
                _stdout_closed()
                return 0
        _check_report_paths(args)
        report = cmd.report(args)
        color = (args.format == "text" and not args.no_color and sys.stdout is not None and sys.stdout.isatty()
                 and "NO_COLOR" not in os.environ)
        text = render(report, args.format, fail_on=args.fail_on, color=color)
        # report files first: a write error (ENOSPC, EACCES) is exit 2 before any result is printed
        for path, fmt, field in ((args.report_json, "json", "--report-json"),
                                 (args.report_junit, "junit", "--report-junit")):
            if path:
                write_report(path, render(report, fmt, fail_on=args.fail_on), field)
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            _stdout_closed()  # the report files are written, the exit code still says the result
        except (AttributeError, ValueError):  # no stdout at all
            pass
        return report.exit_code(args.fail_on)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - VmqError: the message; anything else: one line, exit 2
        return _fail(args.command, exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
