"""1,000 canaries against a local Mosquitto: all at once (one selector thread) vs one after another.

Each canary is the full check: connect (clean_session=false), subscribe QoS 1, publish QoS 1, receive,
disconnect, reconnect with clean_session=true to delete the session. Rows:
  * loopback TCP: no network latency at all, so a canary is pure CPU (Python + paho) and concurrency
    can only overlap the broker's share: this row shows the floor, not the goal's situation.
  * TCP through a 5 ms round-trip link: a delay proxy (a separate process) holds every chunk 2.5 ms
    in each direction, like a cross-zone hop to a LoadBalancer. This is the situation of the goal.
  * WebSocket (Mosquitto's own listener answers the upgrade after a delay).
Sequential times for the slow rows are measured on ``--sample`` canaries and scaled to 1,000 (the
per-canary cost is flat); the concurrent time is always measured on all of them.

    python -m tests.bench canary [--canaries=N] [--sample=N]
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


async def _delay_proxy(listen: tuple[str, int], target: tuple[str, int], delay: float) -> None:
    async def pipe(reader, writer):
        queue: asyncio.Queue = asyncio.Queue()

        async def sender():
            while True:
                due, data = await queue.get()
                if data is None:
                    break
                wait = due - asyncio.get_running_loop().time()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
            writer.close()

        task = asyncio.ensure_future(sender())
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                await queue.put((asyncio.get_running_loop().time() + delay, data))
        except (ConnectionError, OSError):
            pass
        await queue.put((0, None))
        try:
            await task
        except (ConnectionError, OSError):
            pass

    async def handle(r, w):
        try:
            ur, uw = await asyncio.open_connection(*target)
        except OSError:
            w.close()
            return
        await asyncio.gather(pipe(r, uw), pipe(ur, w), return_exceptions=True)

    server = await asyncio.start_server(handle, *listen, backlog=2048)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def _timed_canaries(entry, n: int, concurrent: bool) -> tuple[float, int]:
    from validators.canary.runner import CanaryOptions, run_canaries

    opts = CanaryOptions(timeout=30.0)
    t = time.perf_counter()
    if concurrent:
        results = run_canaries([entry] * n, opts, concurrency=n)
    else:
        results = [r for _ in range(n) for r in run_canaries([entry], opts)]
    return time.perf_counter() - t, sum(r.completed for r in results)


def main(argv: list[str]) -> list[dict]:
    sys.path.insert(0, str(ROOT))
    from tests.standin.lab import StandinLab, free_port
    from validators.canary.runner import parse_entry

    n, sample = 1000, 100
    for a in argv:
        if a.startswith("--canaries="):
            n = int(a.split("=", 1)[1])
        if a.startswith("--sample="):
            sample = int(a.split("=", 1)[1])
    rows = []
    with StandinLab(nodes=1, broker_conf="max_connections -1") as lab:
        tcp = parse_entry(lab.broker_url("tcp"))
        ws = parse_entry(lab.broker_url("ws"))
        port = free_port(lab.broker_addr)
        proxy = subprocess.Popen([sys.executable, "-m", "tests.bench.bench_canary", "--delay-proxy",
                                  f"{lab.broker_addr}:{port}", f"{lab.broker_addr}:{lab.broker_ports[0]}", "0.0025"],
                                 cwd=ROOT, stdout=subprocess.PIPE, start_new_session=True)
        try:
            proxy.stdout.readline()
            slow = parse_entry(f"tcp://{lab.broker_addr}:{port}")
            for label, entry, seq_n in (("loopback TCP", tcp, n), ("TCP, 5 ms round trip", slow, min(sample, n)),
                                        ("WebSocket", ws, min(max(sample // 4, 10), n))):
                t_seq, ok_seq = _timed_canaries(entry, seq_n, concurrent=False)
                t_seq_n = t_seq * n / seq_n
                t_con, ok_con = _timed_canaries(entry, n, concurrent=True)
                scaled = "" if seq_n == n else f" (measured on {seq_n}, scaled)"
                rows.append({"name": f"{n} canaries, {label}: sequential / concurrent", "ratio": t_seq_n / t_con,
                             "goal": ">= 20", "unit": "x",
                             "detail": f"sequential {t_seq_n:.1f}s{scaled}, {ok_seq}/{seq_n} completed; concurrent "
                                       f"{t_con:.1f}s, {ok_con}/{n} completed"})
        finally:
            proxy.kill()
            proxy.wait()
    return rows


if __name__ == "__main__":  # pragma: no cover
    if len(sys.argv) == 5 and sys.argv[1] == "--delay-proxy":
        lh, lp = sys.argv[2].rsplit(":", 1)
        th, tp = sys.argv[3].rsplit(":", 1)
        asyncio.run(_delay_proxy((lh, int(lp)), (th, int(tp)), float(sys.argv[4])))
    else:
        for row in main(sys.argv[1:]):
            print(row)
