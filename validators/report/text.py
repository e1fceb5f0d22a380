"""Human text: findings first (worst first) with evidence and remedy, then a summary table."""

from __future__ import annotations

import json
import shutil
import textwrap

from ..core import redact
from ..core.model import Report, Result, Status

_ORDER = {Status.FAIL: 0, Status.UNKNOWN: 1, Status.WARN: 2, Status.SKIP: 3, Status.PASS: 4}
_COLORS = {Status.FAIL: "31", Status.UNKNOWN: "35", Status.WARN: "33", Status.SKIP: "2", Status.PASS: "32"}


def _label(status: Status, color: bool) -> str:
    word = status.value.upper()
    return f"\033[{_COLORS[status]}m{word:<7}\033[0m" if color else f"{word:<7}"


def _evidence(ev) -> str:
    parts = []
    for k, v in ev.items():
        v = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
        parts.append(f"{k}={v}")
    return ", ".join(parts)


def render(report: Report, fail_on: str = "error", color: bool = False, verbose: bool = False) -> str:
    width = min(shutil.get_terminal_size((110, 20)).columns, 140)
    lines: list[str] = []
    title = f"vmq-validate {report.command}"
    src = ", ".join(f"{k}={v}" for k, v in report.meta.items() if v not in (None, "", [], {}))
    lines.append(title + (f"  ({src})" if src else ""))
    lines.append("")
    results = sorted(report.results, key=lambda r: (_ORDER[r.status], -r.severity.rank, r.check, r.subject))
    wrap = textwrap.TextWrapper(width=width, initial_indent="      ", subsequent_indent="      ")
    for r in results:
        lines.append(f"{_label(r.status, color)} {r.check:<16} {r.severity.value:<8} {r.subject}")
        lines.extend(wrap.wrap(r.message) or [""])
        if r.status is not Status.PASS:
            if r.evidence:
                lines.extend(wrap.wrap("evidence: " + _evidence(r.evidence)))
            if r.status in (Status.FAIL, Status.WARN, Status.UNKNOWN):
                lines.extend(wrap.wrap("remedy: " + r.remedy))
    s = report.summary()
    lines.append("")
    lines.append("summary: " + ", ".join(f"{v} {k}" for k, v in s["by_status"].items()) +
                 f"  ({s['checks']} checks, {s['total']} results)")
    failing = report.findings_at_or_above(fail_on)
    lines.append(f"result: {'FAILED' if failing else 'OK'} (--fail-on {fail_on}: {len(failing)} finding(s))")
    return redact.scrub("\n".join(lines)) + "\n"


def one_line(r: Result) -> str:
    return redact.scrub(f"{r.status.value.upper()} {r.check} {r.subject}: {r.message}")
