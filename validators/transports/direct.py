"""Direct sockets from where the validator runs (VMs, bare metal, an in-cluster Job)."""

from __future__ import annotations

import threading

from ..erldist.probe import run_job
from . import Observation, Transport


class DirectTransport(Transport):
    name = "direct"

    def run_one(self, job: dict) -> list[Observation]:
        out: list[Observation] = []
        lock = threading.Lock()

        def emit(obs: Observation) -> None:
            with lock:
                out.append(obs)
        run_job(job, emit)
        return out
