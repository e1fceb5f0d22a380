"""Renderers: a Report in, text out. All output passes through redact.scrub."""

from __future__ import annotations

from ..core.model import Report
from . import junit, json_report, text

FORMATS = {"text": text.render, "json": json_report.render, "junit": junit.render}


def render(report: Report, fmt: str, fail_on: str = "error", color: bool = False) -> str:
    if fmt == "text":
        return text.render(report, fail_on=fail_on, color=color)
    return FORMATS[fmt](report, fail_on=fail_on)
