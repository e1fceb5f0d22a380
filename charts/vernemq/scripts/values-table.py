#!/usr/bin/env python3
"""Generate the values table of charts/vernemq/README.md from the `## @param` comments in values.yaml.

    values-table.py            rewrite the table between the README markers
    values-table.py --check    exit 1 (and show the difference) when README.md is out of date

values.yaml format: `## @section Title` starts a section; `## @param dotted.path Description` documents a
value, and following `##   more text` lines continue the description. The default shown is the value in
values.yaml at that path.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from pathlib import Path

import yaml

CHART = Path(__file__).resolve().parent.parent
START = "<!-- values-table:start -->"
END = "<!-- values-table:end -->"

_PARAM = re.compile(r"^\s*## @param (\S+) (.*)$")
_CONT = re.compile(r"^\s*##   (.*)$")
_SECTION = re.compile(r"^\s*## @section (.*)$")


def parse_params(text: str) -> list[tuple[str, str, str]]:
    """[(section, path, description)] in file order."""
    out: list[list[str]] = []
    section = ""
    current: list[str] | None = None
    for line in text.splitlines():
        if m := _SECTION.match(line):
            section, current = m.group(1).strip(), None
        elif m := _PARAM.match(line):
            current = [section, m.group(1), m.group(2).strip()]
            out.append(current)
        elif current is not None and (m := _CONT.match(line)):
            current[2] += " " + m.group(1).strip()
        else:
            current = None
    return [(s, p, d) for s, p, d in out]


def lookup(values: dict, path: str):
    node = values
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node


def leaf_paths(values: dict, prefix: str = "") -> list[str]:
    """Every value a user sets: scalars, lists and maps that are empty or documented as a whole."""
    out = []
    for key, val in values.items():
        path = f"{prefix}{key}"
        if isinstance(val, dict) and val:
            out.extend(leaf_paths(val, path + "."))
        else:
            out.append(path)
    return out


def _fmt(value) -> str:
    text = json.dumps(value, separators=(", ", ": "))
    return "`" + text.replace("|", "\\|") + "`"


def render_table(values_text: str) -> str:
    values = yaml.safe_load(values_text)
    lines = []
    section = None
    for sec, path, desc in parse_params(values_text):
        if sec != section:
            if section is not None:
                lines.append("")
            lines += [f"### {sec}", "", "| Key | Description | Default |", "|---|---|---|"]
            section = sec
        cell = desc.replace("|", "\\|")
        lines.append(f"| `{path}` | {cell} | {_fmt(lookup(values, path))} |")
    return "\n".join(lines) + "\n"


def splice(readme: str, table: str) -> str:
    if START not in readme or END not in readme:
        raise SystemExit(f"README.md lacks the {START} / {END} markers")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail when README.md is out of date")
    ap.add_argument("--chart", type=Path, default=CHART)
    args = ap.parse_args(argv)
    values_text = (args.chart / "values.yaml").read_text()
    readme_path = args.chart / "README.md"
    old = readme_path.read_text()
    new = splice(old, render_table(values_text))
    if args.check:
        if old != new:
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                                       "README.md", "README.md (from values.yaml)"))
            print("\nREADME.md values table is out of date: run charts/vernemq/scripts/values-table.py", file=sys.stderr)
            return 1
        return 0
    readme_path.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
