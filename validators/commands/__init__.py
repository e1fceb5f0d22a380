"""CLI sub-commands, one module each. The list is explicit (fails loudly when one is missing).

A report command module defines a subclass of :class:`validators.commands.base.ReportCommand`
named ``COMMAND``; a utility command defines ``COMMAND`` as a :class:`UtilityCommand` (or a list).
"""

from __future__ import annotations

import importlib

COMMAND_MODULES: list[str] = [
    "validators.commands.catalog",
    "validators.commands.plan",
    "validators.commands.reachability",
    "validators.commands.cluster",
    "validators.commands.preflight",
    "validators.commands.distribution",
    "validators.commands.clients",
    "validators.commands.watch",
]


def load_commands():
    """Every command object; a module's COMMAND may be one command or a list of them."""
    out = []
    for m in COMMAND_MODULES:
        cmd = importlib.import_module(m).COMMAND
        out.extend(cmd if isinstance(cmd, list) else [cmd])
    return out
