"""Distribution probes on a 20-node lab, every ordered pair (380), from inside each node's namespace.

Rows (all measured in this run, against baselines measured in this run):
  * concurrent vs sequential: the same 380 pairs with concurrency 1 (sources one after another, targets
    one after another) and with concurrency 20/16. Goal >= 10x.
  * concurrent wall time vs the slowest single pair (one source, one target, same transport; sampled
    over 40 pairs, 2 per source). Goal <= 2x.
  * the same two with one node cut off by a partition (its pairs wait for timeouts), the case where a
    sequential validator becomes unusable.
  * the ceiling: the sequential wall time vs the CPU its own work needed, divided by the cores. That is the
    most any concurrency can give on this machine: where it is below a goal, the goal cannot be met here; and
    that floor vs the slowest single pair, the least ratio to one pair any concurrency can give.
  * the concurrent wall time vs its CPU floor: the CPU the validator and the lab's Erlang/epmd processes used
    in that run, divided by the cores. Near 1x the run is CPU-bound: no more concurrency can shorten it.
The well-known cookie (DIST-008) is tried once per node, as the collector does.
The netns transport probes from threads that entered each node's namespace with setns(2).
Needs root (the lab). `python -m tests.bench distribution [--nodes N] [--timeout S]`.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

from tests.lab import Lab, can_build
from validators.collect import distribution as coll
from validators.collect.targets import parse_targets
from validators.core.secret import reveal
from validators.transports.netns import NetnsTransport


def _opt(argv, name, default):
    for a in argv:
        if a.startswith(f"--{name}="):
            return type(default)(a.split("=", 1)[1])
    return default


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _all_pairs(spec, timeout, concurrency):
    facts = coll.collect(spec, NetnsTransport(concurrency), timeout=timeout, concurrency=concurrency, views=False)
    return facts["dist.observations"]


def _slowest_single(spec, timeout, sample):
    worst, worst_pair = 0.0, None
    t = NetnsTransport(1)
    for src, dst in sample:
        s = spec.node(src)
        job = {"source": src, "source_host": s.host, "netns": s.netns, "targets": [{"name": dst, "host": spec.node(dst).host}],
               "epmd_port": spec.epmd_port, "cluster_port": spec.cluster_port, "cookie": reveal(spec.cookie),
               "timeout": timeout, "concurrency": 1}
        dt, _ = _timed(lambda: t.run([job]))
        if dt > worst:
            worst, worst_pair = dt, f"{src} -> {dst}"
    return worst, worst_pair


def _cpu_seconds(pids) -> float:
    """User + system CPU of these processes so far (the lab's beam and epmd processes)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)  # every thread of the validator
    return r.ru_utime + r.ru_stime


def _rows(label, spec, timeout, sample, conc, lab_pids):
    cpu0, lab0 = _self_cpu(), _cpu_seconds(lab_pids)
    seq, obs_seq = _timed(lambda: _all_pairs(spec, timeout, 1))
    seq_py = _self_cpu() - cpu0
    seq_cpu = seq_py + _cpu_seconds(lab_pids) - lab0
    #: the shortest wall time any concurrency could give for the sequential run's work on these cores; the
    #: validator's own share runs on one core at a time whatever the threads (one interpreter, one GIL)
    seq_floor = max(seq_cpu / (os.cpu_count() or 1), seq_py)
    cpu0, lab0 = _self_cpu(), _cpu_seconds(lab_pids)
    par, obs_par = _timed(lambda: _all_pairs(spec, timeout, conc))
    cpu_py, cpu_lab = _self_cpu() - cpu0, _cpu_seconds(lab_pids) - lab0
    floor = (cpu_py + cpu_lab) / (os.cpu_count() or 1)
    single, pair = _slowest_single(spec, timeout, sample)
    ok_seq = sum(1 for o in obs_seq if o["kind"] == "handshake" and o.get("ok"))
    ok_par = sum(1 for o in obs_par if o["kind"] == "handshake" and o.get("ok"))
    n = len(spec.nodes)
    return [
        {"name": f"{label}: concurrent vs sequential ({n * (n - 1)} ordered pairs)", "ratio": seq / par,
         "goal": ">= 10x", "unit": "x",
         "detail": f"sequential {seq:.2f}s, concurrent {par:.2f}s; handshakes ok {ok_seq}/{ok_par}"},
        {"name": f"{label}: concurrent wall time vs slowest single pair", "ratio": par / single, "goal": "<= 2x",
         "unit": "x", "detail": f"all pairs {par:.2f}s, slowest single pair {single:.3f}s ({pair}, of {len(sample)})"},
        {"name": f"{label}: ceiling, sequential vs the CPU floor of its own work", "ratio": seq / seq_floor
         if seq_floor else 0.0, "goal": "the most any concurrency can give on this machine", "unit": "x",
         "detail": f"the sequential run used {seq_cpu:.2f}s of CPU (validator {seq_py:.2f}s, one core at a time) in "
                   f"{seq:.2f}s of wall; on {os.cpu_count()} cores that work needs {seq_floor:.2f}s of wall at best"},
        {"name": f"{label}: floor, the CPU floor of that work vs slowest single pair", "ratio": seq_floor / single,
         "goal": "the least any concurrency can give on this machine", "unit": "x",
         "detail": f"{seq_floor:.2f}s of wall at best vs {single:.3f}s for the slowest single pair"},
        {"name": f"{label}: concurrent wall time vs its CPU floor", "ratio": par / floor if floor else 0.0,
         "goal": "1x = nothing left to overlap", "unit": "x",
         "detail": f"CPU during the concurrent run: validator {cpu_py:.2f}s + lab's Erlang/epmd {cpu_lab:.2f}s "
                   f"on {os.cpu_count()} cores = {floor:.2f}s of wall at best"},
    ]


def main(argv: list[str]) -> list[dict]:
    ok, why = can_build()
    if not ok:
        print(f"   skipped: {why}")
        return []
    n = _opt(argv, "nodes", 20)
    timeout = _opt(argv, "timeout", 0.5)
    rows = []
    with Lab(n=n) as lab:
        spec = parse_targets(lab.targets("netns"), source="lab", need_cookie=True)
        names = [x.name for x in spec.nodes]
        sample = [(names[i], names[(i + k) % n]) for i in range(n) for k in (1, n // 2 or 1) if (i + k) % n != i]
        lab_pids = [p.pid for node in lab.nodes for p in node.procs.values()]
        rows += _rows(f"{n} nodes, healthy", spec, timeout, sample, 20, lab_pids)
        with lab.partition([n - 1], range(n - 1)):
            cut = [(names[i], names[n - 1]) for i in range(0, n - 1, max(1, (n - 1) // 10))]
            rows += _rows(f"{n} nodes, one cut off", spec, timeout, sample[:20] + cut, 20, lab_pids)
    return rows
