"""Run podman with the lab's own containers.conf, and say plainly when the lab cannot run here.

Everything the pod lab does with containers goes through `podman()`: it sets CONTAINERS_CONF to
tests/podlab/containers.conf (ulimits off, runc as the runtime), so nothing under /etc is changed.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONF = HERE / "containers.conf"
ROOT = HERE.parent.parent

ENABLE_HINT = (
    "run as root with podman, runc, debootstrap, netavark, aardvark-dns and catatonit installed "
    "(scripts/bootstrap.sh installs them)"
)


def podman_env() -> dict[str, str]:
    env = dict(os.environ)
    env["CONTAINERS_CONF"] = str(CONF)
    return env


def podman(*args: str, check: bool = True, input: str | bytes | None = None,
           timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run `podman ARGS...` with the lab's containers.conf; text output unless `input` is bytes.

    With check=True a non-zero exit raises RuntimeError carrying the command and podman's stderr."""
    text = not isinstance(input, bytes)
    proc = subprocess.run(
        ["podman", *args], input=input, capture_output=True, text=text, timeout=timeout, env=podman_env(),
    )
    if check and proc.returncode != 0:
        err = proc.stderr if text else proc.stderr.decode(errors="replace")
        raise RuntimeError(f"podman {' '.join(args[:3])}... exited {proc.returncode}: {err.strip()[-2000:]}")
    return proc


@functools.lru_cache(maxsize=1)
def unavailable_reason() -> str | None:
    """None when podman can run containers here; else one line saying why and how to enable the lab."""
    if os.name != "posix" or not hasattr(os, "geteuid"):
        return f"pod lab needs Linux; {ENABLE_HINT}"
    if os.geteuid() != 0:
        return f"pod lab needs root (podman + runc, rootful); {ENABLE_HINT}"
    for tool in ("podman", "runc", "debootstrap"):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            return f"pod lab needs {tool}, not found; {ENABLE_HINT}"
    try:
        proc = podman("info", "--format", "{{.Host.OCIRuntime.Name}}", check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"pod lab: podman info failed ({exc}); {ENABLE_HINT}"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return f"pod lab: podman info failed ({last}); {ENABLE_HINT}"
    if proc.stdout.strip() != "runc":
        return f"pod lab: podman uses {proc.stdout.strip() or 'no'} runtime, not runc; {ENABLE_HINT}"
    return None
