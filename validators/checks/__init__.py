"""The check catalog. Every module listed here registers its checks on import.

The list is explicit: a module that is missing fails start-up loudly instead of silently
dropping its checks. IDs are stable: never renumber, only add.
  TRAFFIC-0xx  traffic policy (Services, Ingress, Gateway API, NetworkPolicy) validators/checks/traffic/
  DIST-0xx     Erlang distribution (EPMD, ports, cookie, membership)   validators/checks/distribution.py
  CLIENTS-0xx  client-state consistency and canaries                     validators/checks/clients.py
  PREFLIGHT-0xx upgrade pre-flight                                       validators/checks/preflight.py
"""

from __future__ import annotations

import importlib

CHECK_MODULES: list[str] = [
    "validators.checks.traffic.services",
    "validators.checks.traffic.ingress",
    "validators.checks.traffic.netpol",
    "validators.checks.traffic.gateway",
    "validators.checks.preflight",
    "validators.checks.distribution",
    "validators.checks.clients",
]

_loaded = False


def load_all() -> None:
    global _loaded
    if _loaded:
        return
    for name in CHECK_MODULES:
        importlib.import_module(name)
    _loaded = True
