"""session/show reconcile at scale: 1,000,000 sessions in the real answer shape.

Rows carry the columns the client validator asks for (``--client_id --node --is_online --clean_session
--statename --offline_messages --peer_host --peer_port``), keys sorted and compact as VerneMQ answers,
spread over 3 nodes, 2/3 online. Baselines are measured in the same run:
  * time: ``json.loads`` of the same bytes (goal: reconcile <= 2x that)
  * memory: the payload size (goal: the reconcile's peak <= 2x the payload), measured in a fresh child
    process as peak RSS above an idle child's, while the answer is streamed from a file in 1 MiB chunks.

    python -m tests.bench sessions [--sessions=N]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NODES = ("VerneMQ@10.42.0.11", "VerneMQ@10.42.1.12", "VerneMQ@10.42.2.13")


def write_payload(path: Path, n: int) -> int:
    """Write an n-session answer to ``path``; returns its size in bytes."""
    with open(path, "wb") as fh:
        fh.write(b'{"table":[')
        batch = []
        for i in range(n):
            node = NODES[i % 3]
            if i % 3:
                row = ('{"clean_session":%s,"client_id":"device-%08d","is_online":true,"node":"%s",'
                       '"offline_messages":0,"peer_host":"10.%d.%d.%d","peer_port":%d,"statename":"online"}'
                       % ("true" if i % 2 else "false", i, node, (i >> 16) & 255, (i >> 8) & 255, i & 255,
                          1024 + i % 60000))
            else:
                row = ('{"clean_session":false,"client_id":"device-%08d","is_online":false,"node":"%s",'
                       '"offline_messages":%d,"peer_host":null,"peer_port":null,"statename":"offline"}'
                       % (i, node, i % 7))
            batch.append(row)
            if len(batch) == 10000:
                fh.write(("," if i >= 10000 else "").encode() + ",".join(batch).encode())
                batch = []
        if batch:
            fh.write(("," if n > len(batch) else "").encode() + ",".join(batch).encode())
        fh.write(b'],"type":"table"}')
    return path.stat().st_size


_CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
mode, path = sys.argv[2], sys.argv[3]
from validators.vernemq.sessions import reconcile_stream
def chunks():
    with open(path, "rb") as fh:
        while True:
            b = fh.read(1 << 20)
            if not b:
                return
            yield b
t = time.perf_counter()
if mode == "stream":
    s = reconcile_stream(chunks(), limit=10**7)
    rows = s.rows
elif mode == "loads":
    with open(path, "rb") as fh:
        data = fh.read()
    rows = len(json.loads(data)["table"])
else:
    rows = 0
# VmHWM: this process's own peak RSS (ru_maxrss would carry the parent's peak over fork/exec)
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"rows": rows, "seconds": time.perf_counter() - t, "maxrss_kib": hwm}))
"""


def _child(mode: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(ROOT), mode, str(path)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def main(argv: list[str]) -> list[dict]:
    sys.path.insert(0, str(ROOT))
    from validators.vernemq.sessions import reconcile_bytes

    n = 1_000_000
    for a in argv:
        if a.startswith("--sessions="):
            n = int(a.split("=", 1)[1])
    with tempfile.TemporaryDirectory(prefix="bench-sessions-") as tmp:
        path = Path(tmp) / "session_show.json"
        size = write_payload(path, n)
        data = path.read_bytes()
        # time, same bytes in memory, best of 3 each
        t_loads = min(_timed(lambda: json.loads(data)) for _ in range(3))
        t_rec = min(_timed(lambda: reconcile_bytes(data, limit=10**7)) for _ in range(3))
        summary = reconcile_bytes(data, limit=10**7)
        assert summary.rows == n, (summary.rows, n)
        del data
        idle = _child("idle", path)
        stream = _child("stream", path)
        loads = _child("loads", path)
    mib = size / 1048576
    peak = (stream["maxrss_kib"] - idle["maxrss_kib"]) * 1024
    loads_peak = (loads["maxrss_kib"] - idle["maxrss_kib"]) * 1024
    return [
        {"name": f"reconcile {n:,} sessions / json.loads (time)", "ratio": t_rec / t_loads, "goal": "<= 2", "unit": "x",
         "detail": f"reconcile {t_rec:.2f}s, json.loads {t_loads:.2f}s, payload {mib:.0f} MiB; streamed from a file "
                   f"in a child: {stream['seconds']:.2f}s"},
        {"name": f"reconcile {n:,} sessions peak memory / payload", "ratio": peak / size, "goal": "<= 2", "unit": "x",
         "detail": f"peak RSS above an idle child {peak / 1048576:.0f} MiB for a {mib:.0f} MiB answer streamed in "
                   f"1 MiB chunks; json.loads of the same answer: {loads_peak / 1048576:.0f} MiB "
                   f"({loads_peak / size:.1f}x)"},
    ]


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":  # pragma: no cover
    for row in main(sys.argv[1:]):
        print(row)
    os._exit(0)
