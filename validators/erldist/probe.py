"""Probes from one source (a node's network namespace, or the validator itself) to many targets.

``python -m validators.erldist.probe`` reads one JSON job on **stdin** (secrets never go on argv)
and prints one JSON line per observation; :func:`run_job` does the same in-process. Stdlib only.

Job: {"source": "VerneMQ@10.0.0.1" | "validator", "targets": [{"name": ..., "host": ..., "well_known": bool}],
      "epmd_port": 4369, "cluster_port": 44053, "cookie": "...", "well_known_cookies": ["vmq"],
      "timeout": 3.0, "concurrency": 16,
      "view": {"url": "http://10.0.0.1:8888", "api_key": "..."} | null}

Observations (every one has "src", "kind", and "dst" except "view"):
  {"kind": "epmd_names", "ok": true, "names": [["VerneMQ", 9100]]}   | "ok": false, "error", "detail"
  {"kind": "port_please", "ok": true, "found": true, "port": 9100, "node_type": 77, "highest": 6, "lowest": 5}
  {"kind": "handshake", "port": 9100, "ok": ..., "outcome": "ok|cookie_rejected|connect_failed|...", ...}
  {"kind": "well_known_cookie", "cookie": "vmq", ...the handshake's fields}  one per job["well_known_cookies"]
      (public default cookies, DIST-008) for targets whose "well_known" is true (the default); skipped when the
      handshake with the job's cookie did not reach the challenge; the handshake itself is reused (for every
      target) when the job's cookie is that well-known one
  {"kind": "tcp", "port_name": "cluster", "port": 44053, "ok": ..., "error", "detail", "elapsed_ms"}
  {"kind": "view", "ok": true, "status": 200, "body": "<cluster/show JSON text>"} | "ok": false, "error"
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable

from . import epmd, wire
from .handshake import REACHED_CHALLENGE, handshake
from .net import NetError, tcp_check

#: cluster/show of even a large cluster is a few kB
VIEW_MAX_BYTES = 4 << 20


def _fail(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, NetError):
        return {"ok": False, "error": exc.kind, "detail": exc.detail}
    if isinstance(exc, wire.ProtocolError):
        return {"ok": False, "error": "protocol", "detail": str(exc)}
    return {"ok": False, "error": "error", "detail": f"{type(exc).__name__}: {exc}"}


def probe_target(src: str, tgt: dict, job: dict, emit: Callable[[dict], None]) -> None:
    timeout = float(job.get("timeout", 3.0))
    host, name = tgt["host"], tgt["name"]
    short = name.split("@", 1)[0]
    base = {"src": src, "dst": name}

    def timed(fn):
        t0 = time.monotonic()
        try:
            out = fn()
        finally:
            base_ms = int((time.monotonic() - t0) * 1000)
        return out, base_ms

    # the cluster listener does not depend on EPMD
    t0 = time.monotonic()
    try:
        tcp_check(host, int(job.get("cluster_port", 44053)), timeout)
        res = {"ok": True}
    except Exception as exc:  # noqa: BLE001 - reported
        res = _fail(exc)
    emit({**base, "kind": "tcp", "port_name": "cluster", "port": int(job.get("cluster_port", 44053)),
          "elapsed_ms": int((time.monotonic() - t0) * 1000), **res})

    epmd_port = int(job.get("epmd_port", 4369))
    try:
        (_reported, names), ms = timed(lambda: epmd.names(host, epmd_port, timeout))
        emit({**base, "kind": "epmd_names", "ok": True, "names": [list(n) for n in names], "elapsed_ms": ms})
    except Exception as exc:  # noqa: BLE001
        emit({**base, "kind": "epmd_names", **_fail(exc)})
        return
    try:
        info = epmd.port_please2(host, short, epmd_port, timeout)
    except Exception as exc:  # noqa: BLE001
        emit({**base, "kind": "port_please", **_fail(exc)})
        return
    if info is None:
        emit({**base, "kind": "port_please", "ok": True, "found": False, "name": short})
        return
    emit({**base, "kind": "port_please", "ok": True, "found": True, "name": short, "port": info.port,
          "node_type": info.node_type, "protocol": info.protocol, "highest": info.highest, "lowest": info.lowest})
    cookie = job.get("cookie")
    hs = None
    if cookie:
        hs = handshake(host, info.port, cookie, timeout)
        emit({**base, "kind": "handshake", "port": info.port, **hs.to_dict()})
        if hs.outcome not in REACHED_CHALLENGE:
            return  # not as far as the challenge: a second handshake would only fail (or wait) the same way
    for wk in job.get("well_known_cookies") or ():
        if hs is not None and cookie == wk:  # the job's own cookie is this well-known one: that handshake answers
            res = hs
        elif tgt.get("well_known", True):
            res = handshake(host, info.port, wk, timeout)
        else:
            continue  # another source tries it on this node (once per node, see collect.distribution)
        emit({**base, "kind": "well_known_cookie", "cookie": wk, "port": info.port, **res.to_dict()})


def fetch_view(src: str, view: dict, timeout: float) -> dict:
    """GET /api/v1/cluster/show through the one node HTTP client (no redirects, one deadline, a size cap)."""
    from ..vernemq.http import HttpFailure, NodeHttp  # imported here: a job without a view starts faster

    base = view["url"].rstrip("/")
    out = {"src": src, "kind": "view", "url": base + "/api/v1/cluster/show"}
    try:
        client = NodeHttp(base, api_key=view.get("api_key"), timeout=timeout, max_bytes=VIEW_MAX_BYTES)
        status, body = client.get("/api/v1/cluster/show", auth=True)
    except HttpFailure as exc:
        return {**out, "ok": False, "status": exc.status, "error": exc.kind, "detail": exc.detail}
    except ValueError as exc:  # not an http(s) URL
        return {**out, "ok": False, "error": "url", "detail": str(exc)}
    return {**out, "ok": True, "status": status, "body": body.decode("utf-8", "replace")}


def run_job(job: dict, emit: Callable[[dict], None]) -> None:
    """All probes of one job, targets concurrently (bounded by job["concurrency"])."""
    src = job.get("source", "validator")
    targets: Iterable[dict] = job.get("targets", [])
    workers = max(1, min(int(job.get("concurrency", 16)), len(list(targets)) or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futs = [pool.submit(probe_target, src, t, job, emit) for t in job.get("targets", [])]
        if job.get("view"):
            futs.append(pool.submit(lambda: emit(fetch_view(src, job["view"], float(job.get("timeout", 3.0))))))
        for f in futs:
            f.result()


def main() -> int:
    try:
        job = json.loads(sys.stdin.read())
        if not isinstance(job, dict) or not isinstance(job.get("targets"), list):
            raise ValueError("job must be an object with a targets list")
    except ValueError as exc:
        print(json.dumps({"kind": "job_error", "detail": str(exc)}), flush=True)
        return 2
    import threading
    lock = threading.Lock()

    def emit(obs: dict) -> None:
        line = json.dumps(obs, sort_keys=True)
        with lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
    run_job(job, emit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
