"""The lab's transports: probes run inside each source node's network namespace.

``netns`` runs the Python probe in-process: one thread per source enters the namespace with setns(2)
(``CLONE_NEWNET`` on ``/var/run/netns/<name>``; a network namespace belongs to the calling thread, and the
threads it starts for its targets inherit it), runs :func:`validators.erldist.probe.run_job` and ends; no
interpreter is started per source and no thread of the caller ever changes namespace. ``netns-shell`` runs the
kube-exec bash script with ``ip netns exec NS bash -s``. Both need root (CAP_SYS_ADMIN), as the lab does.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import threading

from ..erldist.probe import run_job
from . import Observation, Transport, transport_error
from .shell import build_script, parse_output

NETNS_DIR = "/var/run/netns"   # where `ip netns add` keeps its namespaces
CLONE_NEWNET = 0x40000000
_libc = None


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def enter_netns(name: str) -> None:
    """Move the calling thread (only) into the named network namespace. Raises OSError naming the cause."""
    if not name or "/" in name or name in (".", ".."):
        raise OSError(f"{name!r} is not a network namespace name")
    try:
        fd = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise OSError(f"cannot open network namespace {name!r}: {exc.strerror}") from None
    try:
        _setns(fd)
    except OSError as exc:
        raise OSError(f"cannot enter network namespace {name!r}: {exc.strerror} (setns needs root)") from None
    finally:
        os.close(fd)


def job_budget(job: dict) -> float:
    """An upper bound for one job: every step's timeout, for the targets done one batch after another
    (cluster port, NAMES, PORT_PLEASE2, handshake, and one more handshake per well-known cookie)."""
    n = max(1, len(job.get("targets", [])))
    batches = -(-n // max(1, int(job.get("concurrency", 16))))
    steps = 5 + len(job.get("well_known_cookies") or ())
    return float(job.get("timeout", 3.0)) * steps * batches + 15


def netns_command(netns: str, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv]


def _run(argv: list[str], stdin: str, timeout: float, src: str, env: dict | None = None):
    try:
        cp = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return None, transport_error(src, f"the probe did not finish within {timeout:g}s")
    except FileNotFoundError as exc:
        return None, transport_error(src, f"cannot run {argv[0]}: {exc.strerror}")
    return cp, None


class NetnsTransport(Transport):
    """The Python probe from inside each source's namespace, on a thread that entered it with setns(2)."""

    name = "netns"

    def run_one(self, job: dict) -> list[Observation]:
        src = job["source"]
        out: list[Observation] = []
        lock = threading.Lock()
        failure: list[str] = []

        def emit(obs: Observation) -> None:
            with lock:
                out.append(obs)

        def body() -> None:
            try:
                enter_netns(job["netns"])
            except OSError as exc:
                failure.append(str(exc))
                return
            try:
                run_job(job, emit)
            except Exception as exc:  # noqa: BLE001 - reported as this source's failure
                failure.append(f"probe failed: {type(exc).__name__}: {exc}")

        # a fresh thread per job: it alone changes namespace, and it ends with the job
        t = threading.Thread(target=body, name=f"netns-{job['netns']}", daemon=True)
        t.start()
        budget = job_budget(job)
        t.join(budget)
        with lock:
            if t.is_alive():
                return out + [transport_error(src, f"the probe did not finish within {budget:g}s")]
            return out + [transport_error(src, f) for f in failure]


class NetnsShellTransport(Transport):
    """The kube-exec shell script, run in the lab's namespaces with ``bash -s`` (script on stdin)."""

    name = "netns-shell"

    def run_one(self, job: dict) -> list[Observation]:
        src = job["source"]
        script = build_script(job)
        cp, err = _run(netns_command(job["netns"], ["bash", "-s"]), script, job_budget(job), src,
                       {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"})
        if err:
            return [err]
        out = parse_output(job, cp.stdout)
        if cp.returncode != 0:
            out.append(transport_error(src, f"script exited {cp.returncode}: {cp.stderr.strip()[-300:]}"))
        return out
