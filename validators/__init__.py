"""Validators that prove a VerneMQ cluster on Kubernetes works.

Layering (keep it):
  collect/   gathers facts once (files, Kubernetes API, sockets, HTTP) into a Facts snapshot; never decides.
  checks/    pure functions over Facts, registered in one catalog with stable IDs; never do I/O.
  report/    renders a Report at the edge (text, JSON, JUnit).
  commands/  one module per CLI sub-command, wiring a collector to a set of checks.
"""

__version__ = "0.1.0"
