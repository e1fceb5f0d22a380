"""How probes run *from* each node: one interface, three transports.

A transport takes probe jobs (see :mod:`validators.erldist.probe`: one source, many targets) and
returns the observations (dicts). It never decides anything; the checks do.

* ``direct``     sockets from where the validator runs (a VM, an in-cluster Job); source "validator"
* ``netns``      the Python probe in-process, one thread per source node that entered the node's network
                 namespace with setns(2) (the lab; no interpreter started per source)
* ``kube-exec``  Kubernetes exec into each VerneMQ pod, running a bash script that uses only what the
                 VerneMQ images contain (bash /dev/tcp, timeout, dd, od, tr, md5sum); see :mod:`.shell`
* ``netns-shell`` the kube-exec script, run with ``ip netns exec NS bash -s`` (proves the script on the lab)

Jobs run concurrently, at most ``concurrency`` sources at a time; inside a job the targets are probed
concurrently too. Every wait is bounded.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

Observation = dict[str, Any]


def transport_error(src: str, detail: str) -> Observation:
    """The whole job from ``src`` failed (exec refused, python missing, timeout)."""
    return {"src": src, "kind": "transport_error", "ok": False, "detail": detail}


class Transport:
    name = ""

    def __init__(self, concurrency: int = 16):
        self.concurrency = max(1, int(concurrency))

    def run_one(self, job: dict) -> list[Observation]:
        raise NotImplementedError

    def run(self, jobs: list[dict]) -> list[Observation]:
        out: list[Observation] = []
        if not jobs:
            return out
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(jobs))) as pool:
            for obs in pool.map(self._safe, jobs):
                out.extend(obs)
        return out

    def _safe(self, job: dict) -> list[Observation]:
        try:
            return self.run_one(job)
        except Exception as exc:  # noqa: BLE001 - one source failing must not hide the others
            return [transport_error(job.get("source", "?"), f"{type(exc).__name__}: {exc}")]


def get_transport(name: str, concurrency: int = 16, **kw) -> Transport:
    from .direct import DirectTransport
    from .netns import NetnsShellTransport, NetnsTransport

    if name == "direct":
        return DirectTransport(concurrency)
    if name == "netns":
        return NetnsTransport(concurrency)
    if name == "netns-shell":
        return NetnsShellTransport(concurrency)
    if name == "kube-exec":
        from .kubeexec import KubeExecTransport
        return KubeExecTransport(kw["kube"], concurrency)
    raise ValueError(f"unknown transport {name!r}")


Emit = Callable[[Observation], None]
