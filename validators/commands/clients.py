"""`vmq-validate clients`: is the client state VerneMQ reports consistent, and do real clients get through?

    vmq-validate clients --targets cluster.yaml                       # status, metrics, sessions per node
    vmq-validate clients --targets cluster.yaml --canary              # + a paho canary through every listener
    vmq-validate clients --targets cluster.yaml --entry lb=tcp://20.1.2.3:1883 --entry wss://mqtt.example.com/mqtt
    vmq-validate clients --targets cluster.yaml --canary --heartbeat 5m --interval 2
    vmq-validate clients --context C --namespace NS --release R      # pods via the API server proxy
    vmq-validate clients --in-cluster --namespace NS --release R --canary   # from a Job: pod IPs, canaries
    vmq-validate clients --replay DIR [DIR ...]                       # captured answers, one sample per DIR
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from typing import Any

from ..canary.heartbeat import parse_duration, run_heartbeat
from ..canary.model import SessionView
from ..canary.runner import CanaryOptions, Entry, parse_entry, run_canaries
from ..collect import clients as collect
from ..collect.targets import ClusterSpec, load_targets
from ..core.secret import PASSWORD, Secret
from ..core.errors import InputError
from ..core.model import Facts, NotApplicable, Unavailable
from ..vernemq.http import HttpFailure, NodeHttp, session_show_path
from ..vernemq.parse import ParseError, parse_session_show, parse_status_json
from .base import ReportCommand, add_kube_source_arguments

_VIEW_COLUMNS = ("node", "is_online", "clean_session", "statename")


def node_entries(spec: ClusterSpec) -> list[Entry]:
    """Every MQTT listener URL the targets file names (mqtt, mqtts, ws, wss of each node)."""
    out = []
    for n in spec.nodes:
        for key in ("mqtt", "mqtts", "ws", "wss"):
            url = getattr(n, key)
            if url:
                out.append(parse_entry(f"{n.name} {key}={url}", f"targets: {n.name}.{key}"))
    return out


def _settled(moment: str, rows) -> bool:
    online = [r for r in rows if r.is_online]
    return {"online": bool(online), "offline": not online and bool(rows), "cleaned": not rows}.get(moment, True)


def session_observer(clients: dict[str, NodeHttp], settle: float = 3.0, step: float = 0.1):
    """observe(moment, client_id) -> SessionView from the first node that answers.

    VerneMQ processes a DISCONNECT asynchronously, so the observer asks again (every ``step`` seconds, for
    at most ``settle`` seconds) until the rows look like the moment expects; the view it returns is the
    last answer either way, and the checks judge it.
    """

    def ask(client_id: str) -> SessionView | Unavailable:
        reasons = []
        for name, http in clients.items():
            path = session_show_path(_VIEW_COLUMNS, filters={"client_id": client_id})
            try:
                rows = parse_session_show(http.get_json(path, auth=True), client_id=client_id)
                status = parse_status_json(http.get_json("/status.json"))
            except (HttpFailure, ParseError) as exc:
                reasons.append(getattr(exc, "reason", None) or str(exc))
                continue
            return SessionView(rows=tuple(rows), num_online={n: s.num_online for n, s in status.items()},
                               asked=name)
        return Unavailable("; ".join(reasons) or "no node to ask")

    def observe(moment: str, client_id: str) -> SessionView | Unavailable:
        start = time.monotonic()
        while True:
            view = ask(client_id)
            waited = time.monotonic() - start
            if isinstance(view, Unavailable) or _settled(moment, view.rows) or waited >= settle:
                if isinstance(view, SessionView):
                    view = replace(view, waited_ms=round(waited * 1000.0, 1))
                return view
            time.sleep(step)

    return observe


class Clients(ReportCommand):
    name = "clients"
    help = "client state: status page vs session/show per node, ghost sockets, missing nodes, MQTT canaries"
    categories = ("clients",)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        src = parser.add_argument_group("source (one of)")
        src.add_argument("--targets", metavar="FILE",
                         help="targets file (the same as `distribution`); the API key by api_key_env/api_key_file")
        src.add_argument("--replay", nargs="+", metavar="DIR",
                         help="captured answers: one directory per sample, oldest first (nodeN_status.json, ...)")
        add_kube_source_arguments(src, in_cluster_help="use the pod's service account and reach the pods by IP "
                                                       "(a Job); enables --canary on the pods' listeners")
        s = parser.add_argument_group("sampling")
        s.add_argument("--samples", type=int, default=2, metavar="N",
                       help="times every node is read; counters are compared between them (2)")
        s.add_argument("--sample-interval", default="5s", metavar="DURATION", help="time between samples (5s)")
        s.add_argument("--session-limit", type=int, default=collect.DEFAULT_SESSION_LIMIT, metavar="N",
                       help="session/show --limit, which VerneMQ applies per node (1000000)")
        s.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS", help="HTTP and MQTT timeout (5)")
        s.add_argument("--key-header", action="store_true",
                       help="send the API key as x-api-key instead of the basic-auth user")
        c = parser.add_argument_group("canaries")
        c.add_argument("--canary", action="store_true",
                       help="run a canary through every listener of every node in the targets file")
        c.add_argument("--entry", action="append", default=[], metavar="[NAME=]URL",
                       help="another entry point: tcp://, ssl://, ws://HOST:PORT/mqtt, wss:// (repeatable; e.g. the "
                            "LoadBalancer address or the Ingress URL)")
        c.add_argument("--canary-user", metavar="USER", help="MQTT user name of the canary")
        c.add_argument("--canary-password-env", metavar="VAR", help="environment variable holding its password")
        c.add_argument("--canary-ca", metavar="FILE", help="CA bundle for TLS entry points")
        c.add_argument("--canary-insecure", action="store_true", help="do not verify TLS certificates (lab only)")
        c.add_argument("--heartbeat", metavar="DURATION", help="repeat the canaries for this long (e.g. 5m)")
        c.add_argument("--interval", default="1s", metavar="DURATION", help="heartbeat interval (1s)")

    def _canary_options(self, args: argparse.Namespace) -> CanaryOptions:
        password = None
        if args.canary_password_env:
            password = Secret.from_env(args.canary_password_env, "--canary-password-env", kind=PASSWORD)
        return CanaryOptions(timeout=args.timeout, username=args.canary_user, password=password,
                             ca_file=args.canary_ca, insecure=args.canary_insecure)

    def _source(self, args: argparse.Namespace):
        """(spec, HTTP client per node, meta, service facts, entries from the nodes allowed)."""
        if args.targets:
            spec = load_targets(args.targets, need_cookie=False)
            clients = collect.node_clients(spec, args.timeout)
            meta = {"source": "targets", "targets": args.targets}
            return spec, clients, meta, NotApplicable("the targets file names no Service"), True
        from ..collect.kubeclient import connect

        if not args.namespace:
            raise InputError("--namespace", "is required with a Kubernetes source.", "pass --namespace NS.")
        if not (args.release or args.selector):
            raise InputError("--release", "a release or a selector is required.", "pass --release R (or --selector).")
        kube = connect(args.kubeconfig, args.context, in_cluster=args.in_cluster)
        selector = args.selector or f"app.kubernetes.io/name=vernemq,app.kubernetes.io/instance={args.release}"
        spec, clients, kmeta, service = collect.kube_sources(kube, args.namespace, selector, args.in_cluster,
                                                             args.timeout)
        meta = {"source": "kubernetes", "context": kube.context, "namespace": args.namespace, "selector": selector,
                "http": "pod IPs" if args.in_cluster else "API server pod proxy", **kmeta}
        return spec, clients, meta, service, args.in_cluster

    def collect(self, args: argparse.Namespace) -> tuple[Facts, dict[str, Any]]:
        sources = [bool(args.targets), bool(args.replay), bool(args.context or args.in_cluster)]
        if sum(sources) != 1:
            raise InputError("--targets/--context/--replay", "give exactly one source.",
                             "pass --targets FILE, --context C (or --in-cluster) with --namespace and --release, "
                             "or --replay DIR... for captured answers.")
        if not 1 <= args.samples <= 100:
            raise InputError("--samples", f"{args.samples} is out of range.", "use 1 to 100.")
        if not 0 < args.timeout <= 120:
            raise InputError("--timeout", f"{args.timeout:g} is not a useful timeout.", "use 0.1 to 120 seconds.")
        if args.session_limit < 1:
            raise InputError("--session-limit", "must be at least 1.", "use e.g. 1000000.")
        interval = parse_duration(args.sample_interval, "--sample-interval")
        entries = [parse_entry(e) for e in args.entry]
        if args.replay:
            if args.canary or entries or args.heartbeat:
                raise InputError("--replay", "canaries need a live cluster.", "drop --canary/--entry/--heartbeat.")
            missing = [d for d in args.replay if not os.path.isdir(d)]
            if missing:
                raise InputError("--replay", f"{missing[0]} is not a directory.", "pass captured phase directories.")
            try:
                facts = collect.load_replay(args.replay)
            except ValueError as exc:
                raise InputError("--replay", f"{exc}.", "pass the directories that hold nodeN_status.json etc.") from None
            return facts, {"source": "replay", "samples": len(args.replay), "replay": list(args.replay)}

        spec, clients, meta, service, node_entries_ok = self._source(args)
        if args.canary:
            if not node_entries_ok:
                raise InputError("--canary", "the pods' own listeners are not reachable from outside the cluster.",
                                 "run with --in-cluster (as a Job), or name the LoadBalancer/Ingress with --entry URL.")
            entries = node_entries(spec) + entries
            if not entries:
                raise InputError("--canary", "the targets file names no mqtt/mqtts/ws/wss URL.",
                                 "add mqtt: tcp://HOST:1883 (and ws: ...) to the nodes, or pass --entry URL.")
        opts = self._canary_options(args) if entries else None
        heartbeat_s = parse_duration(args.heartbeat, "--heartbeat") if args.heartbeat else None
        hb_interval = parse_duration(args.interval, "--interval")
        if heartbeat_s is not None and not entries:
            raise InputError("--heartbeat", "needs entry points.", "add --canary or --entry URL.")
        if heartbeat_s is not None and hb_interval < 0.1:
            raise InputError("--interval", f"{args.interval} is shorter than 100ms.",
                             "use e.g. 1s (one canary round per interval).")
        if heartbeat_s is not None and heartbeat_s / hb_interval > 100_000:
            raise InputError("--heartbeat", f"{args.heartbeat} at --interval {args.interval} is more than 100000 "
                             "rounds.", "use a longer --interval or a shorter --heartbeat.")
        if heartbeat_s is not None and not 0 < hb_interval <= heartbeat_s:
            raise InputError("--interval", f"{args.interval} does not fit into --heartbeat {args.heartbeat}.",
                             "use an interval shorter than the heartbeat.")
        if args.key_header:
            for http in clients.values():
                http.key_header = True
        observer = session_observer(clients) if spec.api_key else None
        done: dict[str, Any] = {}

        samples = []
        for i in range(args.samples):
            if i:
                time.sleep(interval)
            samples.append(collect.sample_cluster(clients, f"sample {i + 1}", bool(spec.api_key),
                                                  args.session_limit))
            if i == 0 and entries:
                # between the first and the second sample, so the second one sees the cluster after them
                done["canaries"] = run_canaries(entries, opts, observer)
                if heartbeat_s is not None:
                    done["heartbeat"] = run_heartbeat(entries, heartbeat_s, hb_interval, opts)
        facts = Facts({"clients.samples": samples, "clients.expected": [n.name for n in spec.nodes],
                       "clients.service": service})
        facts.set("clients.canaries", done["canaries"] if entries else
                  NotApplicable("no canary asked for (--canary or --entry)"))
        facts.set("clients.heartbeat", done["heartbeat"] if heartbeat_s is not None else
                  NotApplicable("no heartbeat asked for (--heartbeat DURATION)"))
        meta.update(nodes=len(spec.nodes), samples=args.samples, api_key_given=bool(spec.api_key),
                    entries=[e.url for e in entries])
        return facts, meta


COMMAND = Clients()
