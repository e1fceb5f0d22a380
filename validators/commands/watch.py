"""`vmq-validate watch`: the live commands on a schedule, served as Prometheus metrics.

    vmq-validate watch --targets cluster.yaml                                   # VMs, bare metal, the lab
    vmq-validate watch --context C --namespace NS --release R --commands distribution,clients
    vmq-validate watch --in-cluster --namespace NS --release R --distribution-args "--transport direct"

Every ``--interval`` (60s, with +/- ``--jitter``) one *run* executes the chosen commands one after the other
in a forked child process, so a run never overlaps the next one, a run that is still busy at ``--deadline``
(the interval by default) is killed and marked ``deadline``, and the watcher's own memory holds nothing but
the last run. The child sends each command's report back as the JSON renderer's (redacted) text; the
watcher turns it into metrics on ``--listen`` (127.0.0.1:9910):

* ``/metrics``: ``vmq_validate_check_status{check,subject,severity,status}`` (one series per status, 1 for the
  current one), ``vmq_validate_findings{command,severity}``, the time, duration and outcome of each command's
  last run and ``vmq_validate_collection_errors_total{command}`` (see docs/watch.md);
* ``/report``: the last run as one JSON report (the JSON renderer, so redacted);
* ``/healthz``: 200 while the schedule is alive, 503 when it has stalled.

Collect once, check purely, render at the edge: the child runs the commands' own collectors and the
registered checks; this module only schedules, transports and renders.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import shlex
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Mapping

from .. import __version__
from ..canary.heartbeat import parse_duration
from ..core import redact
from ..core.errors import InputError, VmqError
from ..core.model import Report, Result, Severity, Status
from ..core.policy import Policy
from ..core.registry import catalog
from ..core.runner import run_checks
from ..report import render
from .base import UtilityCommand, add_kube_source_arguments

#: the commands watch can run, in the order a run executes them
WATCH_COMMANDS = ("cluster", "distribution", "clients", "preflight")
#: the pre-flight checks that make sense on a schedule: PREFLIGHT-005 repeats CLIENTS-001 and PREFLIGHT-007
#: needs the version an upgrade goes to. Every pre-flight collector is read-only.
PREFLIGHT_SUBSET = ("PREFLIGHT-001", "PREFLIGHT-002", "PREFLIGHT-003", "PREFLIGHT-004", "PREFLIGHT-006")
OUTCOMES = ("ok", "findings", "error", "deadline")
STATUSES = tuple(s.value for s in Status)
SEVERITIES = tuple(s.value for s in Severity)


def allowed_commands(source: str) -> tuple[str, ...]:
    """What each source can run: `cluster` needs the API; `preflight` has no --in-cluster (it reads pods
    through the API server's pod proxy, which the validator's Role does not grant)."""
    return {"targets": ("distribution", "clients", "preflight"),
            "context": WATCH_COMMANDS,
            "in-cluster": ("cluster", "distribution", "clients")}[source]


class _ArgsParser(argparse.ArgumentParser):
    """Parses one command's options for watch; a bad option is an InputError naming --COMMAND-args."""

    def __init__(self, field_name: str, **kw):
        super().__init__(add_help=False, **kw)
        self.field_name = field_name

    def error(self, message: str):
        raise InputError(self.field_name, f"{message}.", f"see `vmq-validate {self.prog} --help` for its options.")


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InputError("--listen", f"{text!r} is not ADDRESS:PORT.", "use e.g. 127.0.0.1:9910 or 0.0.0.0:9910.")
    return host, int(port)


# ---------------------------------------------------------------------------------------------- the plan
@dataclass
class Plan:
    """Everything a run needs, fixed at start: per command, its parsed arguments and its checks."""

    commands: list[str]
    namespaces: dict[str, argparse.Namespace]
    interval: float
    jitter: float
    deadline: float
    listen: tuple[str, int]
    policy: Policy
    #: check ID -> severity label (the policy's severity of the check: stable across the check's statuses)
    severities: dict[str, str] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)


def build_plan(args: argparse.Namespace) -> Plan:
    from . import load_commands

    sources = [s for s, on in (("targets", bool(args.targets)), ("context", bool(args.context)),
                               ("in-cluster", bool(args.in_cluster))) if on]
    if len(sources) != 1:
        raise InputError("--targets/--context/--in-cluster", "give exactly one source.",
                         "pass --targets FILE, or --context C / --in-cluster with --namespace and --release.")
    source = sources[0]
    if source != "targets" and not args.namespace:
        raise InputError("--namespace", "is required with a Kubernetes source.", "pass --namespace NS.")
    if source != "targets" and not (args.release or args.selector):
        raise InputError("--release", "a release or a selector is required.", "pass --release R (or --selector).")
    allowed = allowed_commands(source)
    if args.commands:
        chosen = [c.strip() for c in args.commands.split(",") if c.strip()]
        for c in chosen:
            if c not in WATCH_COMMANDS:
                raise InputError("--commands", f"{c!r} is not a command watch runs.",
                                 f"use a comma-separated subset of {','.join(WATCH_COMMANDS)}.")
            if c not in allowed:
                raise InputError("--commands", f"{c} cannot run from a {source} source.",
                                 f"with {source} use {','.join(allowed)}.")
        if not chosen:
            raise InputError("--commands", "is empty.", f"use e.g. {','.join(allowed)}.")
        chosen = [c for c in WATCH_COMMANDS if c in chosen]
    else:
        chosen = list(allowed)
    interval = parse_duration(args.interval, "--interval")
    if not 1 <= interval <= 86400:
        raise InputError("--interval", f"{args.interval} is out of range.", "use 1s to 24h (e.g. 60s).")
    deadline = parse_duration(args.deadline, "--deadline") if args.deadline else interval
    if not 0 < deadline <= interval:
        raise InputError("--deadline", f"{args.deadline} is not within the interval ({interval:g}s).",
                         "use a deadline no longer than --interval.")
    if not 0 <= args.jitter <= 0.5:
        raise InputError("--jitter", f"{args.jitter:g} is out of range.", "use a fraction from 0 to 0.5 (0.1).")
    listen = parse_listen(args.listen)
    policy = Policy.load(args.policy)

    source_argv: list[str] = []
    if args.targets:
        source_argv += ["--targets", args.targets]
    else:
        for opt in ("context", "kubeconfig", "namespace", "release", "selector"):
            if getattr(args, opt):
                source_argv += [f"--{opt}", getattr(args, opt)]
        if args.in_cluster:
            source_argv.append("--in-cluster")
    by_name = {c.name: c for c in load_commands()}
    namespaces = {}
    for name in chosen:
        field_name = f"--{name}-args"
        try:
            given = getattr(args, f"{name}_args") or []
            extra = [a for one in ([given] if isinstance(given, str) else given) for a in shlex.split(one)]
        except ValueError as exc:
            raise InputError(field_name, f"cannot be split into options ({exc}).", "quote it like a shell would.")
        p = _ArgsParser(field_name, prog=name)
        by_name[name].add_arguments(p)
        p.add_argument("--policy")  # the watcher's own --policy is passed on
        clash = {"--targets", "--context", "--kubeconfig", "--in-cluster", "--namespace", "--release",
                 "--selector", "--policy"} & {e.split("=", 1)[0] for e in extra}
        if clash:
            raise InputError(field_name, f"{sorted(clash)[0]} belongs to watch itself.",
                             f"give it once, before {field_name}.")
        ns = p.parse_args(source_argv + extra)
        ns.policy = args.policy
        namespaces[name] = ns
    cat = catalog()
    severities = {cid: policy.severity(spec).value for cid, spec in cat.items()}
    meta_source = {"source": "targets" if args.targets else "kubernetes", "targets": args.targets,
                   "context": args.context, "in_cluster": bool(args.in_cluster), "namespace": args.namespace,
                   "release": args.release}
    return Plan(chosen, namespaces, interval, args.jitter, deadline, listen, policy, severities,
                {k: v for k, v in meta_source.items() if v not in (None, False)})


# ----------------------------------------------------------------------------------------------- one run
def _run_command(name: str, ns: argparse.Namespace, policy: Policy) -> dict[str, Any]:
    """One command in the child: its collector once, then its (watch-selected) checks. Never raises."""
    from . import load_commands

    cmd = {c.name: c for c in load_commands()}[name]
    start = time.monotonic()
    try:
        facts, meta = cmd.collect(ns)
        specs = cmd.checks(ns)
        if name == "preflight":
            specs = [s for s in specs if s.id in PREFLIGHT_SUBSET]
        report = run_checks(name, specs, facts, policy, meta)
        doc = json.loads(render(report, "json", fail_on="error"))
        return {"command": name, "report": doc, "duration": time.monotonic() - start}
    except VmqError as exc:
        return {"command": name, "error": redact.scrub(str(exc)), "input_error": isinstance(exc, InputError),
                "duration": time.monotonic() - start}
    except Exception as exc:  # a collector bug must not take the watcher down; it is a collection error
        return {"command": name, "error": redact.scrub(f"{type(exc).__name__}: {exc}"), "input_error": False,
                "duration": time.monotonic() - start}


def _child(plan: Plan, wfd: int) -> None:
    """The forked child: run every command, one JSON line each on ``wfd``, then exit without cleanup."""
    code = 0
    try:
        os.setpgid(0, 0)  # the watcher kills the whole group at the deadline (probes, ip netns exec ...)
        redact._lock = threading.Lock()  # noqa: SLF001 - a lock another thread held at fork time is not ours
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        with os.fdopen(wfd, "w") as out:
            for name in plan.commands:
                out.write(json.dumps(_run_command(name, plan.namespaces[name], plan.policy)) + "\n")
                out.flush()
    except BaseException:  # noqa: BLE001 - the parent reports missing lines as errors
        code = 1
    finally:
        os._exit(code)


def _reap_orphans() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


@dataclass
class CommandRun:
    command: str
    outcome: str  # ok | findings | error | deadline
    started: float  # wall clock
    duration: float
    report: dict[str, Any] | None = None
    error: str | None = None
    input_error: bool = False


@dataclass
class Cycle:
    started: float
    duration: float
    runs: list[CommandRun]
    cut: bool
    cpu_seconds: float


def run_cycle(plan: Plan, stop: threading.Event | None = None) -> Cycle:
    """Fork, let the child run the commands, read their reports until the deadline, kill what is left."""
    wall, start = time.time(), time.monotonic()
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child ends in os._exit
        os.close(rfd)
        _child(plan, wfd)
    os.close(wfd)
    buf, lines, cut = b"", [], False
    end = start + plan.deadline
    try:
        while True:
            left = end - time.monotonic()
            if left <= 0 or (stop is not None and stop.is_set()):
                cut = True
                break
            ready, _, _ = select.select([rfd], [], [], min(left, 0.5))
            if not ready:
                continue
            chunk = os.read(rfd, 65536)
            if not chunk:
                break
            buf += chunk
            *done, buf = buf.split(b"\n")
            lines.extend(done)
    finally:
        os.close(rfd)
        if cut:
            for target in (-pid, pid):
                try:
                    os.kill(target, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        _, _, usage = os.wait4(pid, 0)
        if os.getpid() == 1:  # PID 1 of a container: also reap what a killed run left orphaned
            _reap_orphans()
    duration = time.monotonic() - start
    got = {}
    for line in lines:
        try:
            doc = json.loads(line)
            got[doc["command"]] = doc
        except (ValueError, KeyError, TypeError):
            continue
    runs, offset = [], 0.0
    for name in plan.commands:
        doc = got.get(name)
        if doc is None:
            why = (f"cut at the deadline ({plan.deadline:g}s) before {name} finished" if cut
                   else f"the run ended without a report from {name}")
            runs.append(CommandRun(name, "deadline" if cut else "error", wall + offset,
                                   max(0.0, duration - offset), error=why))
            offset = duration
            continue
        d = float(doc.get("duration", 0.0))
        if "error" in doc:
            runs.append(CommandRun(name, "error", wall + offset, d, error=redact.scrub(str(doc["error"])),
                                   input_error=bool(doc.get("input_error"))))
        else:
            report = doc["report"]
            outcome = "findings" if report.get("summary", {}).get("failed") else "ok"
            runs.append(CommandRun(name, outcome, wall + offset, d, report=report))
        offset += d
    return Cycle(wall, duration, runs, cut, usage.ru_utime + usage.ru_stime)


# ------------------------------------------------------------------------------------------ the state
class State:
    """The last cycle, as immutable snapshots the HTTP threads read (no secrets: all text is redacted)."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.lock = threading.Lock()
        self.last: dict[str, CommandRun] = {}
        self.collection_errors = {c: 0 for c in plan.commands}
        self.deadlines = 0
        self.cycles = 0
        self.report_json = b'{"status": "no run yet"}\n'
        self.last_cycle: Cycle | None = None
        self.heartbeat = time.monotonic()

    def update(self, cycle: Cycle) -> None:
        report = combined_report(self.plan, cycle)
        text = render(report, "json", fail_on="error").encode()
        with self.lock:
            for run in cycle.runs:
                self.last[run.command] = run
                if run.outcome in ("error", "deadline"):
                    self.collection_errors[run.command] += 1
            self.deadlines += int(cycle.cut)
            self.cycles += 1
            self.report_json = text
            self.last_cycle = cycle
            self.heartbeat = time.monotonic()

    def snapshot(self):
        with self.lock:
            return (dict(self.last), dict(self.collection_errors), self.deadlines, self.cycles, self.last_cycle)


def _result(d: Mapping[str, Any]) -> Result:
    return Result(check=d["check"], title=d["title"], status=Status(d["status"]), severity=Severity(d["severity"]),
                  category=d["category"], subject=d["subject"], message=d["message"], remedy=d["remedy"],
                  evidence=d.get("evidence") or {})


def combined_report(plan: Plan, cycle: Cycle) -> Report:
    """The cycle as one Report for the JSON renderer: every command's results; per command its meta/outcome."""
    results, commands = [], {}
    for run in cycle.runs:
        entry: dict[str, Any] = {"outcome": run.outcome, "duration_seconds": round(run.duration, 3)}
        if run.report is not None:
            results.extend(_result(r) for r in run.report.get("results", []))
            entry["meta"] = run.report.get("meta", {})
        if run.error:
            entry["error"] = run.error
        commands[run.command] = entry
    meta = {**plan.source, "watch": {"started": cycle.started, "duration_seconds": round(cycle.duration, 3),
                                     "cut_at_deadline": cycle.cut, "deadline_seconds": plan.deadline,
                                     "interval_seconds": plan.interval}, "commands": commands}
    return Report("watch", results, meta)


# ------------------------------------------------------------------------------------------ /metrics
class WatchCollector:
    """A prometheus_client Collector over :class:`State`: built per scrape from the last cycle only."""

    def __init__(self, state: State):
        self.state = state

    def describe(self):  # no samples at registration time
        return []

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        last, errors, deadlines, cycles, cycle = self.state.snapshot()
        plan = self.state.plan
        status = GaugeMetricFamily("vmq_validate_check_status",
                                   "1 for the current status of a check on a subject, 0 for the other statuses",
                                   labels=["check", "subject", "severity", "status"])
        findings = GaugeMetricFamily("vmq_validate_findings", "findings (fail, warn, unknown) in the last run",
                                     labels=["command", "severity"])
        ts = GaugeMetricFamily("vmq_validate_last_run_timestamp_seconds", "when the command's last run started",
                               labels=["command"])
        dur = GaugeMetricFamily("vmq_validate_last_run_duration_seconds", "how long the command's last run took",
                                labels=["command"])
        outcome = GaugeMetricFamily("vmq_validate_last_run_outcome",
                                    "1 for the outcome of the command's last run (ok, findings, error, deadline)",
                                    labels=["command", "outcome"])
        errs = CounterMetricFamily("vmq_validate_collection_errors", "runs of a command that ended without a "
                                   "report (collection error or cut at the deadline)", labels=["command"])
        for name in plan.commands:
            errs.add_metric([name], errors.get(name, 0))
            run = last.get(name)
            if run is None:
                continue
            ts.add_metric([name], run.started)
            dur.add_metric([name], run.duration)
            for o in OUTCOMES:
                outcome.add_metric([name, o], 1.0 if run.outcome == o else 0.0)
            if run.report is None:
                continue
            count = {s: 0 for s in SEVERITIES}
            for r in run.report.get("results", []):
                if r["status"] in ("fail", "warn", "unknown"):
                    count[r["severity"]] = count.get(r["severity"], 0) + 1
            for sev, n in count.items():
                findings.add_metric([name, sev], n)
            seen = set()
            for r in run.report.get("results", []):
                key = (r["check"], redact.scrub(str(r["subject"])))
                if key in seen:  # one subject judged twice by a check: the first verdict stands
                    continue
                seen.add(key)
                sev = plan.severities.get(r["check"], r["severity"])
                for s in STATUSES:
                    status.add_metric([key[0], key[1], sev, s], 1.0 if r["status"] == s else 0.0)
        yield status
        yield findings
        yield ts
        yield dur
        yield outcome
        yield errs
        yield CounterMetricFamily("vmq_validate_deadline_exceeded", "runs cut at the deadline", value=deadlines)
        yield CounterMetricFamily("vmq_validate_runs", "runs completed since the watcher started", value=cycles)
        yield GaugeMetricFamily("vmq_validate_last_cycle_duration_seconds", "duration of the last run (all commands)",
                                value=cycle.duration if cycle else 0.0)
        yield GaugeMetricFamily("vmq_validate_interval_seconds", "the configured --interval", value=plan.interval)
        info = GaugeMetricFamily("vmq_validate_info", "the watcher's version and commands",
                                 labels=["version", "commands"])
        info.add_metric([__version__, ",".join(plan.commands)], 1.0)
        yield info


def make_server(state: State, registry) -> ThreadingHTTPServer:
    from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

    stall = state.plan.interval * (1 + state.plan.jitter) + state.plan.deadline + 30

    class Handler(BaseHTTPRequestHandler):
        server_version = "vmq-validate-watch"
        sys_version = ""

        def _send(self, code: int, ctype: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self):  # noqa: N802 - http.server's name
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            elif path == "/report":
                with state.lock:
                    body = state.report_json
                self._send(200, "application/json", body)
            elif path == "/healthz":
                with state.lock:
                    age = time.monotonic() - state.heartbeat
                ok = age <= stall
                self._send(200 if ok else 503, "text/plain; charset=utf-8",
                           b"ok\n" if ok else f"stalled: no run for {age:.0f}s\n".encode())
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found: try /metrics, /report or /healthz\n")

        do_HEAD = do_GET  # noqa: N815

        def log_message(self, fmt, *a):  # quiet: a scrape every 15 s is not news
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        address_family = __import__("socket").AF_INET6 if ":" in state.plan.listen[0] else \
            __import__("socket").AF_INET

    try:
        return Server(state.plan.listen, Handler)
    except OSError as exc:
        raise InputError("--listen", f"cannot listen on {state.plan.listen[0]}:{state.plan.listen[1]} "
                         f"({exc.strerror}).", "pick a free address and port.") from None


# ------------------------------------------------------------------------------------------ the loop
def serve(plan: Plan, max_cycles: int | None = None, log: Callable[[str], None] | None = None,
          on_cycle: Callable[[Cycle, State], None] | None = None) -> int:
    from prometheus_client import CollectorRegistry

    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    state = State(plan)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WatchCollector(state))
    server = make_server(state, registry)
    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    log(f"vmq-validate watch: {','.join(plan.commands)} every {plan.interval:g}s on http://{host}:{port}/metrics")
    code, n = 0, 0
    try:
        while not stop.is_set():
            cycle = run_cycle(plan, stop)
            if stop.is_set():
                break
            if n == 0:
                bad = [r for r in cycle.runs if r.input_error]
                if bad:  # the same bad input would fail every run: refuse it now, like the commands do
                    log(f"vmq-validate watch: error: {bad[0].command}: {bad[0].error}")
                    code = 2
                    break
            state.update(cycle)
            for r in cycle.runs:
                if r.outcome in ("error", "deadline"):
                    log(f"vmq-validate watch: {r.command}: {r.outcome}: {r.error}")
            if on_cycle:
                on_cycle(cycle, state)
            n += 1
            if max_cycles is not None and n >= max_cycles:
                break
            wait = plan.interval * (1 + random.uniform(-plan.jitter, plan.jitter)) - cycle.duration
            stop.wait(max(0.0, wait))
    finally:
        server.shutdown()
        server.server_close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stop.is_set():
        log("vmq-validate watch: stopped")
    return code


class Watch(UtilityCommand):
    name = "watch"
    help = "run cluster/distribution/clients/preflight on a schedule and serve the results as Prometheus metrics"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        src = parser.add_argument_group("source (one of)")
        src.add_argument("--targets", metavar="FILE", help="targets file (VMs, bare metal, the lab)")
        add_kube_source_arguments(src, in_cluster_help="use the pod's service account (the chart's validator)")
        w = parser.add_argument_group("schedule")
        w.add_argument("--commands", metavar="LIST",
                       help=f"comma-separated subset of {','.join(WATCH_COMMANDS)} (default: all the source allows)")
        w.add_argument("--interval", default="60s", metavar="DURATION", help="time between runs (60s)")
        w.add_argument("--jitter", type=float, default=0.1, metavar="FRACTION",
                       help="random +/- fraction of the interval (0.1)")
        w.add_argument("--deadline", metavar="DURATION", help="a run still busy after this is cut (the interval)")
        w.add_argument("--listen", default="127.0.0.1:9910", metavar="ADDR:PORT",
                       help="where /metrics, /report and /healthz are served (127.0.0.1:9910)")
        w.add_argument("--policy", metavar="FILE", help="YAML policy: per-check severity, enabled, options")
        w.add_argument("--cycles", type=int, metavar="N", help="stop after N runs (default: until SIGTERM)")
        examples = {"cluster": "--timeout 10", "distribution": "--transport direct",
                    "clients": "--samples 1 --canary", "preflight": "--interval 5"}
        for name in WATCH_COMMANDS:
            w.add_argument(f"--{name}-args", metavar="OPTIONS", action="append",
                           help=f"more options for {name}, as one string (e.g. '{examples[name]}'); repeatable, "
                                "the strings are joined")

    def run(self, args: argparse.Namespace) -> int:
        try:
            plan = build_plan(args)
            if args.cycles is not None and args.cycles < 1:
                raise InputError("--cycles", f"{args.cycles} is not positive.", "use 1 or more, or leave it out.")
            if args.targets:  # read it once here too: bad input is refused before listening
                from ..collect.targets import load_targets
                load_targets(args.targets, need_cookie=False)
            return serve(plan, max_cycles=args.cycles)
        except VmqError as exc:
            print(redact.scrub(f"vmq-validate watch: error: {exc}"), file=sys.stderr)
            return exc.exit_code


COMMAND = Watch()
