"""`vmq-validate watch` over many runs: memory stays flat, and what one run of a 20-node cluster costs.

The cluster is a replay of captured VerneMQ 2.1.2 answers (tests/watch/replay.py, 20 nodes, served by a
separate process so its memory is not counted). The watcher's own loop runs here without sleeping: per
cycle one forked run of `clients` (1 sample) and the watch subset of `preflight`, the State update (the
/report JSON rendered through the redactor) and one /metrics scrape through prometheus_client.

  * memory: RSS of this process after the last cycle against RSS after cycle 10 (goal <= 1.1x);
  * CPU: one cycle's CPU time (the forked run's user+system time, plus the watcher's update and scrape),
    reported as seconds and as a share of the default 60 s interval.

    python -m tests.bench watch [--cycles=N]      # 1000 by default
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def main(argv: list[str]) -> list[dict]:
    sys.path.insert(0, str(ROOT))
    from prometheus_client import CollectorRegistry, generate_latest

    from validators.cli import build_parser
    from validators.commands.watch import State, WatchCollector, build_plan, run_cycle

    cycles = 1000
    for a in argv:
        if a.startswith("--cycles="):
            cycles = int(a.split("=", 1)[1])
    cycles = max(cycles, 11)
    tmp = Path(tempfile.mkdtemp(prefix="bench-watch-"))
    targets = tmp / "targets.yaml"
    server = subprocess.Popen([sys.executable, "-m", "tests.watch.replay", "--nodes", "20", "--targets", str(targets)],
                              cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not targets.exists():
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the replay cluster did not start")
            time.sleep(0.05)
        parser, _ = build_parser()
        plan = build_plan(parser.parse_args([
            "watch", "--targets", str(targets), "--commands", "clients,preflight", "--clients-args", "--samples 1",
            "--preflight-args", "--interval 0"]))
        state = State(plan)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(WatchCollector(state))
        rss10 = 0
        cpu, series, outcomes = [], 0, set()
        start = time.monotonic()
        for i in range(1, cycles + 1):
            p0 = time.process_time()
            cycle = run_cycle(plan)
            state.update(cycle)
            text = generate_latest(registry)
            cpu.append(cycle.cpu_seconds + time.process_time() - p0)
            outcomes.update(r.outcome for r in cycle.runs)
            if i == 10:
                rss10 = rss_kib()
                series = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
        rss_last = rss_kib()
        wall = time.monotonic() - start
    finally:
        server.terminate()
        server.wait(10)
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
    one = statistics.median(cpu)
    return [
        {"name": f"RSS after cycle {cycles} / after cycle 10", "ratio": rss_last / rss10, "goal": "<= 1.1",
         "unit": "x", "detail": f"{rss10} KiB -> {rss_last} KiB; {series} series per scrape; outcomes "
                                f"{sorted(outcomes)}; {cycles} cycles in {wall:.0f}s"},
        {"name": "one cycle's CPU time, 20-node replay (clients + preflight), share of the 60 s interval",
         "ratio": one / 60.0 * 100.0, "goal": "report", "unit": "%",
         "detail": f"median {one * 1000:.0f} ms CPU per cycle (p90 {sorted(cpu)[int(len(cpu) * 0.9)] * 1000:.0f} ms; "
                   "the forked run's user+system time plus the watcher's update and scrape)"},
    ]


if __name__ == "__main__":  # pragma: no cover
    for row in main(sys.argv[1:]):
        print(row)
