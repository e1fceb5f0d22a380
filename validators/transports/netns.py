"""The lab's transport: run the probe inside each source node's network namespace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from . import Observation, Transport, transport_error
from .shell import build_script, parse_output

_PKG_ROOT = str(Path(__file__).resolve().parent.parent.parent)


def job_budget(job: dict) -> float:
    """An upper bound for one job: every step's timeout, for the targets done one batch after another."""
    n = max(1, len(job.get("targets", [])))
    batches = -(-n // max(1, int(job.get("concurrency", 16))))
    return float(job.get("timeout", 3.0)) * 6 * batches + 15


def netns_command(netns: str, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv]


def parse_json_lines(src: str, text: str) -> list[Observation]:
    out: list[Observation] = []
    for i, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        try:
            obs = json.loads(line)
        except ValueError:
            out.append(transport_error(src, f"probe output line {i + 1} is not JSON: {line[:120]!r}"))
            continue
        if not isinstance(obs, dict) or "kind" not in obs:
            out.append(transport_error(src, f"probe output line {i + 1} is not an observation"))
            continue
        out.append(obs)
    return out


def _run(argv: list[str], stdin: str, timeout: float, src: str, env: dict | None = None):
    try:
        cp = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return None, transport_error(src, f"the probe did not finish within {timeout:g}s")
    except FileNotFoundError as exc:
        return None, transport_error(src, f"cannot run {argv[0]}: {exc.strerror}")
    return cp, None


class NetnsTransport(Transport):
    name = "netns"

    def run_one(self, job: dict) -> list[Observation]:
        src = job["source"]
        env = dict(os.environ)
        env["PYTHONPATH"] = _PKG_ROOT + os.pathsep + env.get("PYTHONPATH", "")
        argv = netns_command(job["netns"], [sys.executable, "-S", "-m", "validators.erldist.probe"])
        payload = {k: v for k, v in job.items() if k != "netns"}
        cp, err = _run(argv, json.dumps(payload), job_budget(job), src, env)
        if err:
            return [err]
        out = parse_json_lines(src, cp.stdout)
        if cp.returncode != 0:
            out.append(transport_error(src, f"probe exited {cp.returncode}: {cp.stderr.strip()[-300:]}"))
        return out


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
