"""CLIENTS-0xx: is the client state that VerneMQ reports consistent, and do real clients get through?

VerneMQ 2.1's status page computes, per node (vmq_info:node_status/0):
    num_online  = open listener sockets (TCP/TLS: ranch active connections; WS/WSS: all connections)
    num_offline = queue processes - num_online
so a socket without an MQTT session (a load-balancer TCP probe, a client that never sends CONNECT,
an idle HTTP connection on the WebSocket port) counts as online and makes offline negative.
These checks compare that arithmetic with what session/show says, per node, and explain the gap.
All checks are pure functions of the facts collected by validators/collect/clients.py.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ..canary.model import CanaryResult, HeartbeatRun, SessionView
from ..collect.clients import NodeObservation, Sample, ServiceFacts
from ..core.model import Facts, Finding, NotApplicable, Unavailable, failed, passed, skipped, unknown, warned
from ..core.registry import check
from ..vernemq.sessions import SessionSummary

CATEGORY = "clients"


# --------------------------------------------------------------------------- helpers

def _latest(facts: Facts) -> Sample:
    return facts["clients.samples"][-1]


def _nodes_in(sample: Sample) -> list[str]:
    """Nodes with a status.json entry in this sample (deduplicated: every node lists every reachable node)."""
    names: dict[str, None] = {}
    for obs in sample.nodes.values():
        names[obs.name] = None
        if not isinstance(obs.status, Unavailable):
            for n in obs.status:
                names[n] = None
    return [n for n in names if sample.status_entry(n) is not None]


def _session_counts(sample: Sample, node: str) -> tuple[Any, str | None]:
    """(NodeSessions, None) or (None, why the per-node session count is not known)."""
    s = sample.sessions
    if isinstance(s, Unavailable):
        return None, f"session/show is unavailable: {s.reason}"
    if s.rows and not s.has_node:
        return None, "session/show rows carry no node column (ask with --node)"
    if node in s.truncated_nodes():
        limit = 100 if s.limit is None else s.limit
        return None, f"session/show returned {limit} rows for {node}, the per-node limit: the count is incomplete"
    return s.node(node), None


def _counter(obs: NodeObservation | None, name: str) -> float | None:
    if obs is None or isinstance(obs.counters, Unavailable):
        return None
    return obs.counters.get(name)


def _int(v: float | None) -> int | None:
    return None if v is None else int(v)


def _delta(samples: list[Sample], node: str, name: str) -> int | None:
    """How much counter ``name`` rose on ``node`` between the first and the last sample (None if unknown
    or if it went backwards, i.e. the node restarted in between)."""
    first = _counter(samples[0].nodes.get(node), name)
    last = _counter(samples[-1].nodes.get(node), name)
    if first is None or last is None or len(samples) < 2 or last < first:
        return None
    return int(last - first)


def _service_facts(facts: Facts) -> ServiceFacts | None:
    svc = facts.get("clients.service")
    return svc if isinstance(svc, ServiceFacts) else None


def rank_ghost_causes(ghost: int, tcp: int | None, ws: int | None, ws_not_upgraded: int | None,
                      close_timeout_rise: int | None, service: ServiceFacts | None) -> list[dict[str, Any]]:
    """The likely causes of ``ghost`` sockets without a session, most likely first, each with its evidence."""
    causes: list[dict[str, Any]] = []
    ws_idle = min(ghost, ws_not_upgraded or 0)
    tcp_ghost = max(0, ghost - ws_idle)
    if ws_idle:
        causes.append({"cause": "idle HTTP connections on the WebSocket port (never upgraded to MQTT)",
                       "sockets": ws_idle,
                       "why": f"{ws} WS connections are open but socket_open - socket_close counts only "
                              f"{ws - ws_idle if ws is not None else '?'} upgraded ones; VerneMQ counts every WS "
                              "connection (ranch all_connections), even plain HTTP: load-balancer HTTP probes, "
                              "browsers or keep-alive connections on the ws listener"})
    if tcp_ghost:
        lb_why = "bare TCP sockets on the MQTT port that never send CONNECT: the pattern of load-balancer TCP " \
                 "health probes"
        lb_score = 1
        if service is not None:
            if service.type == "LoadBalancer" and (service.external_traffic_policy or "Cluster") == "Cluster":
                lb_why = (f"Service {service.name} is a LoadBalancer with externalTrafficPolicy Cluster: the cloud "
                          "load balancer probes the MQTT port on every node and kube-proxy forwards the probes "
                          "to the pods")
                lb_score = 3
            if service.probe_annotations:
                lb_why += f"; probe annotations {dict(service.probe_annotations)}"
                lb_score = max(lb_score, 2)
        slow = {"cause": "clients that open a socket but do not finish CONNECT", "sockets": tcp_ghost,
                "why": "sockets without CONNECT are closed after the connect timeout (socket_close_timeout)"}
        lb = {"cause": "load-balancer TCP probes on the MQTT port", "sockets": tcp_ghost, "why": lb_why}
        if close_timeout_rise:
            slow["why"] = (f"socket_close_timeout rose by {close_timeout_rise} during the run: VerneMQ closed "
                           "that many sockets because no CONNECT came in time")
            ordered = [slow, lb] if lb_score < 3 else [lb, slow]
        else:
            if close_timeout_rise == 0:
                slow["why"] = "socket_close_timeout did not rise during the run, so this is less likely"
            ordered = [lb, slow]
        causes.extend(ordered)
    causes.sort(key=lambda c: -c["sockets"])  # stable: keeps the order above among equals
    return causes


# --------------------------------------------------------------------------- CLIENTS-001

@check("CLIENTS-001", title="No ghost sockets: open MQTT sockets match online sessions on every node",
       severity="error", category=CATEGORY, needs=("clients.samples",), defaults={"tolerance": 0},
       remedy="Find what holds sockets without an MQTT session (see the ranked causes in the evidence): point "
              "load-balancer health probes at the HTTP port's /health instead of the MQTT port (or use "
              "externalTrafficPolicy Local with its health-check node port), fix clients that connect but do not "
              "send CONNECT, and keep plain HTTP off the WebSocket listener. Until then read online clients from "
              "`vmq-admin session show --is_online=true`, not from the status page.")
def ghost_sockets(facts: Facts, conf: Mapping[str, Any]) -> Iterable[Finding]:
    """Ghost sockets: a node counts more open sockets than online MQTT sessions.

    VerneMQ 2.1.2 shows ``num_online`` = open listener sockets and ``num_offline`` = queues - sockets on
    its status page. A socket that has no MQTT session (an LB TCP probe, a client that never sends
    CONNECT, an idle HTTP connection on the WebSocket port) inflates online and can make offline negative
    ("online 5, offline -5"). This check compares, for each node of the latest sample, the sockets
    (status.json num_online) with the sessions session/show reports online on that node; without
    session/show it can still flag a negative num_offline. The evidence names the numbers and ranks the
    likely cause from the metrics: WS connections never upgraded (socket_open counts WS sockets only
    after the upgrade), socket_close_timeout rising during the run (clients not finishing CONNECT), and
    the Service in front of the pods (LoadBalancer with externalTrafficPolicy Cluster probes every node).
    Option ``tolerance``: ghost sockets to accept per node (connections in the middle of CONNECT).
    """
    samples: list[Sample] = facts["clients.samples"]
    sample = samples[-1]
    service = _service_facts(facts)
    for node in _nodes_in(sample):
        st = sample.status_entry(node)
        obs = sample.nodes.get(node)
        counts, why_not = _session_counts(sample, node)
        online_sessions = counts.online if counts is not None else None
        tcp = _int(_counter(obs, "active_mqtt_connections"))
        ws = _int(_counter(obs, "active_mqttws_connections"))
        if (tcp is None or ws is None) and obs is not None and not isinstance(obs.listeners, Unavailable):
            # no metrics: listener/show has ranch's numbers (TCP/TLS active, WS/WSS all connections)
            tcp = sum(lst.active_conns for lst in obs.listeners if lst.type in ("mqtt", "mqtts"))
            ws = sum(lst.all_conns for lst in obs.listeners if lst.type in ("mqttws", "mqttwss"))
        total = _int(_counter(obs, "total_active_connections"))
        opened, closed = _counter(obs, "socket_open"), _counter(obs, "socket_close")
        ws_not_upgraded = None
        if total is not None and opened is not None and closed is not None and ws is not None:
            ws_not_upgraded = max(0, min(ws, total - int(opened - closed)))
        if online_sessions is not None:
            ghost = st.num_online - online_sessions
        elif st.num_offline < 0:
            ghost = -st.num_offline  # at least this many: sockets exceed every queue, online or not
        else:
            ghost = None
        evidence = {"sample": sample.label, "num_online": st.num_online, "num_offline": st.num_offline,
                    "queues": st.queues, "online_sessions": online_sessions, "tcp_sockets": tcp, "ws_sockets": ws,
                    "ws_not_upgraded": ws_not_upgraded,
                    "socket_close_timeout_rise": _delta(samples, node, "socket_close_timeout")}
        if ghost is None:
            yield unknown(node, f"{st.num_online} sockets, num_offline {st.num_offline}; cannot count online "
                                f"sessions: {why_not}", **evidence)
            continue
        if ghost > conf["tolerance"] or st.num_offline < 0:
            causes = rank_ghost_causes(max(ghost, 0), tcp, ws, ws_not_upgraded,
                                       evidence["socket_close_timeout_rise"], service)
            evidence["ghost_sockets"] = ghost
            evidence["likely_causes"] = causes
            sessions_txt = (f"{online_sessions} online sessions" if online_sessions is not None
                            else f"{st.queues} queues in all (session/show unavailable)")
            top = f"; most likely: {causes[0]['cause']} ({causes[0]['why']})" if causes else ""
            yield failed(node, f"{st.num_online} open sockets but {sessions_txt}: {ghost} ghost sockets, so the "
                               f"status page shows online {st.num_online} / offline {st.num_offline}{top}",
                         **evidence)
        else:
            yield passed(node, f"{st.num_online} open sockets, {online_sessions} online sessions", **evidence)


# --------------------------------------------------------------------------- CLIENTS-002

@check("CLIENTS-002", title="status.json agrees with session/show on every node", severity="error",
       category=CATEGORY, needs=("clients.samples",), defaults={"tolerance": 0},
       remedy="Compare `vmq-admin session show --node --is_online` with the status page of the same node. Queues "
              "without a session row point to a stuck queue process (restart the node or `vmq-admin session "
              "disconnect --cleanup` the client); online sessions missing from num_online mean the status page is "
              "read from a node that does not see the others (check `vmq-admin cluster show`).")
def status_vs_sessions(facts: Facts, conf: Mapping[str, Any]) -> Iterable[Finding]:
    """status.json and session/show must describe the same sessions on each node.

    By VerneMQ's formula num_online + num_offline is the node's number of queue processes, which must
    equal the session rows session/show returns for that node (online and offline, with ``--node``).
    And every session that session/show reports online has a socket, so online sessions may never exceed
    num_online (if they do, the status page shows connected clients as offline). Ghost sockets
    (num_online above online sessions) are CLIENTS-001's subject and are not repeated here.
    Option ``tolerance``: sessions of difference to accept per node (clients connecting while sampling).
    """
    sample = _latest(facts)
    for node in _nodes_in(sample):
        st = sample.status_entry(node)
        counts, why_not = _session_counts(sample, node)
        if counts is None:
            yield unknown(node, f"cannot compare: {why_not}", sample=sample.label)
            continue
        ev = {"sample": sample.label, "num_online": st.num_online, "num_offline": st.num_offline,
              "queues": st.queues, "sessions_online": counts.online, "sessions_offline": counts.offline,
              "sessions_total": counts.total, "sessions_from": sample.sessions_from}
        problems = []
        if abs(st.queues - counts.total) > conf["tolerance"]:
            problems.append(f"{st.queues} queues (num_online {st.num_online} + num_offline {st.num_offline}) but "
                            f"{counts.total} session rows")
        if counts.online - st.num_online > conf["tolerance"]:
            problems.append(f"{counts.online} sessions online but only {st.num_online} counted online: connected "
                            "clients are shown as offline")
        if problems:
            yield failed(node, "; ".join(problems), **ev)
        else:
            yield passed(node, f"{st.queues} queues = {counts.total} sessions ({counts.online} online, "
                               f"{counts.offline} offline)", **ev)


# --------------------------------------------------------------------------- CLIENTS-003

@check("CLIENTS-003", title="Every node is in the cluster view and answers", severity="error", category=CATEGORY,
       needs=("clients.samples",),
       remedy="Bring the node back (pod events, `kubectl logs`, OOM kills) or, if it is gone for good, remove it "
              "with `vmq-admin cluster leave node=NAME kill_sessions=true` on a running node. Sessions whose "
              "queues lived on the missing node get no messages until it returns.")
def node_missing(facts: Facts, conf: Mapping[str, Any]) -> Iterable[Finding]:
    """A node is missing from status.json, not running in the cluster view, or does not answer.

    Each node's status.json lists every node it can reach, so a node absent from all of them, marked
    ``false`` in ``mystatus`` or ``Running: false`` in cluster/show is out of the cluster. Its clients'
    sessions drop out of every total (the status page simply shows fewer clients); the evidence counts the
    sessions that still point at the node now and in earlier samples of the run (e.g. before it died).
    """
    samples: list[Sample] = facts["clients.samples"]
    sample = samples[-1]
    expected = list(dict.fromkeys(list(facts.get("clients.expected") or []) + sample.known_nodes()))
    answering = [o for o in sample.nodes.values() if o.reachable]
    for node in expected:
        obs = sample.nodes.get(node)
        missing_from = [o.name for o in answering if node not in o.status]
        down_in_mystatus = sorted({o.name for o in answering for st in o.status.values()
                                   if st.mystatus.get(node) is False})
        not_running = [o.name for o in answering if not isinstance(o.cluster, Unavailable)
                       and any(m.node == node and not m.running for m in o.cluster)]
        unreachable = obs.status.reason if obs is not None and not obs.reachable else None
        problems = []
        if missing_from:
            problems.append(f"missing from the status.json of {', '.join(missing_from)}")
        if not_running:
            problems.append(f"Running=false in the cluster/show of {', '.join(not_running)}")
        if down_in_mystatus:
            problems.append(f"unreachable in the mystatus of {', '.join(down_in_mystatus)}")
        if unreachable:
            problems.append(f"its own HTTP does not answer ({unreachable})")
        ev: dict[str, Any] = {"sample": sample.label, "missing_from_status_of": missing_from,
                              "running_false_in": not_running, "mystatus_false_in": down_in_mystatus,
                              "http": unreachable or ("ok" if obs is not None else "not asked (not a target)")}
        stranded = {}
        for s in samples:
            if isinstance(s.sessions, SessionSummary) and node in s.sessions.by_node:
                c = s.sessions.by_node[node]
                stranded[s.label] = {"online": c.online, "offline": c.offline}
        if stranded:
            ev["sessions_on_node"] = stranded
        if problems:
            if not answering:
                yield unknown(node, "no node answered at all: " + "; ".join(problems), **ev)
                continue
            last = next(reversed(stranded.items()), None)
            tail = (f"; {last[1]['online'] + last[1]['offline']} sessions ({last[1]['online']} online) pointed at "
                    f"it in {last[0]}") if last else ""
            yield failed(node, "; ".join(problems) + tail, **ev)
        else:
            yield passed(node, f"in the status.json and cluster view of {len(answering)} answering node(s)", **ev)


# --------------------------------------------------------------------------- CLIENTS-004

@check("CLIENTS-004", title="No client id is online on two nodes", severity="error", category=CATEGORY,
       needs=("clients.samples",),
       remedy="Two sessions online for one client id happen only while the cluster is split (each side accepted the "
              "client). Heal the netsplit (CLIENTS-006), then disconnect the stale session with `vmq-admin session "
              "disconnect client-id=ID`; check allow_register_during_netsplit in vernemq.conf.")
def duplicate_online(facts: Facts, conf: Mapping[str, Any]) -> Iterable[Finding]:
    """The same client id is online on more than one node.

    VerneMQ keeps one session per client id in the cluster; a new CONNECT takes the session over. The
    same id online on two nodes means the nodes disagree about the registry, which is what a netsplit
    with registrations allowed on both sides produces. Read from the session/show rows with ``--node``.
    """
    sample = _latest(facts)
    s = sample.sessions
    if isinstance(s, Unavailable):
        yield unknown("cluster", f"session/show is unavailable: {s.reason}")
        return
    if s.rows and not s.has_node:
        yield unknown("cluster", "session/show rows carry no node column (ask with --node)")
        return
    online = sum(c.online for c in s.by_node.values())
    if not s.duplicates:
        yield passed("cluster", f"{online} online sessions, each on one node", sample=sample.label,
                     online_sessions=online)
        return
    for cid, nodes in sorted(s.duplicates.items()):
        yield failed(cid, f"online on {len(nodes)} nodes: {', '.join(nodes)}", sample=sample.label, nodes=nodes)


# --------------------------------------------------------------------------- CLIENTS-005

_MONOTONIC = ("socket_open", "socket_close", "mqtt_connect_received", "mqtt_connack_sent", "netsplit_detected",
              "netsplit_resolved", "queue_setup")


@check("CLIENTS-005", title="Counters never go backwards during the run (no node restart)", severity="warning",
       category=CATEGORY, needs=("clients.samples",),
       remedy="A counter that goes backwards means the node restarted between two samples: find out why (`kubectl "
              "describe pod`, OOMKilled, liveness probe failures, node drain) and read its rates from after the "
              "restart only.")
def counters_backwards(facts: Facts, conf: Mapping[str, Any]) -> Iterable[Finding]:
    """Cumulative counters (socket_open, mqtt_connack_sent, netsplit_detected, ...) went down between samples.

    VerneMQ's counters only grow while the node runs; a lower value in a later sample means the node
    restarted in between (its in-memory metrics start again from zero). Needs two samples or more.
    """
    samples: list[Sample] = facts["clients.samples"]
    if len(samples) < 2:
        yield skipped("-", "one sample only: nothing to compare (run with --samples 2 or more)")
        return
    nodes = list(dict.fromkeys(n for s in samples for n in s.nodes))
    for node in nodes:
        drops = []
        compared = False
        for before, after in zip(samples, samples[1:]):
            b, a = before.nodes.get(node), after.nodes.get(node)
            for name in _MONOTONIC:
                vb, va = _counter(b, name), _counter(a, name)
                if vb is None or va is None:
                    continue
                compared = True
                if va < vb:
                    drops.append({"counter": name, "before": int(vb), "after": int(va),
                                  "between": [before.label, after.label]})
        if drops:
            d = drops[0]
            yield warned(node, f"{len(drops)} counter(s) went backwards between {d['between'][0]} and "
                               f"{d['between'][1]} (e.g. {d['counter']} {d['before']} -> {d['after']}): the node "
                               "restarted", drops=drops)
        elif compared:
            yield passed(node, f"counters only grew over {len(samples)} samples")
        else:
            yield unknown(node, "no two samples with metrics from this node")


# --------------------------------------------------------------------------- CLIENTS-006

@check("CLIENTS-006", title="No netsplit: detected == resolved and not rising during the run", severity="error",
       category=CATEGORY, needs=("clients.samples",),
       remedy="Find why nodes lost each other: pod restarts, the Erlang distribution ports (4369 and the "
              "distribution range) blocked by a NetworkPolicy, DNS of the headless Service, CPU starvation. Run "
              "`vmq-validate distribution` for the network side.")
def netsplits(facts: Facts, conf: Mapping[str, Any]) -> Iterable[Finding]:
    """Netsplit counters: a netsplit detected and not (yet) resolved, or new netsplits during the run.

    ``vernemq_netsplit_detected`` counts the times this node lost a cluster peer and
    ``vernemq_netsplit_resolved`` the times a lost peer came back. More detected than resolved means a
    peer is still gone; detected rising between samples means the cluster split while we watched.
    (A freshly started cluster commonly shows 1/1: the first node saw the second one join late.)
    """
    samples: list[Sample] = facts["clients.samples"]
    sample = samples[-1]
    for node, obs in sample.nodes.items():
        det, res = _counter(obs, "netsplit_detected"), _counter(obs, "netsplit_resolved")
        if det is None or res is None:
            reason = obs.counters.reason if isinstance(obs.counters, Unavailable) else "netsplit counters missing"
            yield unknown(node, f"no netsplit counters: {reason}")
            continue
        rise = _delta(samples, node, "netsplit_detected")
        ev = {"sample": sample.label, "netsplit_detected": int(det), "netsplit_resolved": int(res),
              "detected_rise_during_run": rise}
        problems = []
        if det > res:
            problems.append(f"{int(det - res)} netsplit(s) not resolved (detected {int(det)}, resolved {int(res)})")
        if rise:
            problems.append(f"netsplit_detected rose by {rise} during the run ({samples[0].label} -> {sample.label})")
        if problems:
            yield failed(node, "; ".join(problems), **ev)
        else:
            yield passed(node, f"netsplits detected {int(det)}, resolved {int(res)}, none during the run", **ev)


# --------------------------------------------------------------------------- CLIENTS-007

@check("CLIENTS-007", title="/health and /health/listeners_full_cluster agree", severity="warning",
       category=CATEGORY, needs=("clients.samples",),
       remedy="A node reports itself healthy while the cluster is incomplete. Decide what Kubernetes should probe: "
              "/health keeps a node in service on its own, /health/listeners_full_cluster takes every node out of "
              "the Service when one is missing. Meanwhile bring the missing node back (CLIENTS-003).")
def health_disagrees(facts: Facts, conf: Mapping[str, Any]) -> Iterable[Finding]:
    """``/health`` says OK while ``/health/listeners_full_cluster`` says DOWN.

    vmq_health_http answers /health from the local node only; listeners_full_cluster is DOWN (HTTP 503)
    as soon as one cluster node is offline. A Kubernetes probe on /health therefore keeps routing clients
    to a node of a broken cluster, and its clients' sessions on the missing node are unreachable.
    """
    sample = _latest(facts)
    for node, obs in sample.nodes.items():
        h, f = obs.health, obs.health_full
        if isinstance(h, Unavailable) or isinstance(f, Unavailable):
            reason = h.reason if isinstance(h, Unavailable) else f.reason
            yield unknown(node, f"health not read: {reason}")
            continue
        ev = {"health": h.status, "health_http": h.http_status, "listeners_full_cluster": f.status,
              "listeners_full_cluster_http": f.http_status, "reasons": list(f.reasons)}
        if h.ok and not f.ok:
            yield failed(node, f"/health is OK but /health/listeners_full_cluster is DOWN "
                               f"({'; '.join(f.reasons) or 'no reason given'})", **ev)
        elif not h.ok:
            yield failed(node, f"/health is DOWN ({'; '.join(h.reasons) or 'no reason given'})", **ev)
        else:
            yield passed(node, "both OK", **ev)


# --------------------------------------------------------------------------- canaries

def _canaries(facts: Facts) -> list[CanaryResult]:
    return facts["clients.canaries"]


@check("CLIENTS-010", title="Canary: connect, subscribe, publish QoS 1 and receive through every entry point",
       severity="error", category=CATEGORY, needs=("clients.canaries",),
       remedy="Follow the failed stage: connect -> the address, port, Service/Ingress or NetworkPolicy; CONNACK -> "
              "credentials and allow_anonymous / auth plugins; SUBACK -> ACLs; message never delivered -> publish "
              "ACLs or a cluster that does not route between nodes (CLIENTS-003/006); WebSocket -> the path (/mqtt) "
              "and the Ingress upgrade headers and timeouts.")
def canary_pubsub(facts: Facts, conf: Mapping[str, Any]) -> Iterable[Finding]:
    """A real MQTT client (paho-mqtt, MQTT 3.1.1) through each configured entry point.

    Each canary connects with a unique client id and clean_session=false, subscribes QoS 1 to its own
    topic, publishes one QoS 1 message there and must receive it before the deadline. The finding names
    the stage that failed (connect, CONNACK, SUBACK, PUBACK, delivery) and the timings.
    """
    for r in _canaries(facts):
        ev = {"url": r.url, "client_id": r.client_id, "stage": r.stage or "none", "timings_ms": dict(r.timings_ms)}
        if r.received:
            yield passed(r.entry, f"message came back in {r.timings_ms.get('roundtrip', 0):.1f} ms "
                                  f"(connect {r.timings_ms.get('connect', 0):.1f} ms)", **ev)
        else:
            yield failed(r.entry, f"failed after stage '{r.stage or 'none'}': {r.error}", **ev)


def _rows_on(view: SessionView) -> tuple[list[str], list[str]]:
    online = [row.node or "?" for row in view.rows if row.is_online]
    offline = [row.node or "?" for row in view.rows if not row.is_online]
    return online, offline


@check("CLIENTS-011", title="Canary: online on exactly one node and counted there; offline after disconnect; "
                            "cleaned up", severity="error", category=CATEGORY, needs=("clients.canaries",),
       remedy="If the canary got through but session/show does not list it, the entry point leads to a broker that "
              "is not part of this cluster (another release, a stale LoadBalancer backend) or session/show reads a "
              "different cluster. Online on two nodes: see CLIENTS-004. Still online after DISCONNECT: the node did "
              "not process the disconnect (check its logs). Left behind after cleanup: delete it with `vmq-admin "
              "session disconnect client-id=ID --cleanup`.")
def canary_visible(facts: Facts, conf: Mapping[str, Any]) -> Iterable[Finding]:
    """What session/show said about the canary's own client id at three moments.

    While connected: exactly one row online, on one node, and that node's status.json num_online is at
    least 1 (the canary's socket is counted there). After DISCONNECT with clean_session=false: the row is
    still there and offline (the persistent session survived). After the cleanup connection with
    clean_session=true: no row (nothing left behind).
    """
    for r in _canaries(facts):
        if not r.received:
            yield skipped(r.entry, f"the canary did not get through (CLIENTS-010): {r.error}")
            continue
        if not r.views:
            if r.error:
                yield unknown(r.entry, f"the canary failed before session/show was asked: {r.error}",
                              client_id=r.client_id, stage=r.stage)
            else:
                yield skipped(r.entry, "no session/show observer (no API key or no HTTP endpoint)")
            continue
        problems, ev = [], {"client_id": r.client_id}
        online_v = r.views.get("online")
        if isinstance(online_v, Unavailable):
            yield unknown(r.entry, f"session/show while connected: {online_v.reason}", **ev)
            continue
        if online_v is not None:
            on, off = _rows_on(online_v)
            ev["while_connected"] = {"online_on": on, "offline_on": off, "num_online": dict(online_v.num_online)}
            if len(on) != 1:
                problems.append(f"while connected it is online on {len(on)} node(s) {on} (expected exactly one)")
            elif on[0] != "?" and online_v.num_online and online_v.num_online.get(on[0], 0) < 1:
                problems.append(f"online on {on[0]} but that node's status.json counts num_online "
                                f"{online_v.num_online.get(on[0])}")
        off_v = r.views.get("offline")
        if isinstance(off_v, SessionView):
            on, off = _rows_on(off_v)
            ev["after_disconnect"] = {"online_on": on, "offline_on": off}
            if on:
                problems.append(f"still online on {on} after DISCONNECT")
            elif len(off) != 1:
                problems.append(f"after DISCONNECT with clean_session=false expected one offline session, found "
                                f"{len(off)}")
        cleaned = r.views.get("cleaned")
        if isinstance(cleaned, SessionView):
            ev["after_cleanup"] = len(cleaned.rows)
            if cleaned.rows:
                problems.append(f"{len(cleaned.rows)} session row(s) left after the clean_session=true cleanup")
        if problems:
            yield failed(r.entry, "; ".join(problems), **ev)
        else:
            yield passed(r.entry, f"online on {ev.get('while_connected', {}).get('online_on')}, offline after "
                                  "disconnect, gone after cleanup", **ev)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    vs = sorted(values)
    k = (len(vs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(vs) - 1)
    return round(vs[lo] + (vs[hi] - vs[lo]) * (k - lo), 3)


@check("CLIENTS-012", title="Client heartbeat: canaries keep getting through, latency within bounds",
       severity="error", category=CATEGORY, needs=("clients.heartbeat",),
       defaults={"max_drop_ratio": 0.0, "max_p99_ms": 1000.0},
       remedy="Drops during a heartbeat while single canaries pass point to something intermittent: a LoadBalancer "
              "backend that is not ready, an idle timeout shorter than the keepalive, a node restarting "
              "(CLIENTS-005) or a netsplit (CLIENTS-006). High p99 latency points to an overloaded node or a "
              "cross-zone hop.")
def heartbeat(facts: Facts, conf: Mapping[str, Any]) -> Iterable[Finding]:
    """The canary repeated every ``--interval`` seconds for ``--heartbeat`` seconds per entry point.

    Reports the drop ratio (canaries that did not get their message back) and the round-trip latency
    percentiles p50/p90/p99/max. Options ``max_drop_ratio`` (0.0) and ``max_p99_ms`` (1000).
    """
    runs: list[HeartbeatRun] = facts["clients.heartbeat"]
    for run in runs:
        lat = [r.timings_ms["roundtrip"] for r in run.results if r.received and "roundtrip" in r.timings_ms]
        drops = [r for r in run.results if not r.received]
        n = len(run.results)
        ev = {"attempts": n, "drops": len(drops), "interval_s": run.interval_s, "duration_s": run.duration_s,
              "p50_ms": percentile(lat, 0.5), "p90_ms": percentile(lat, 0.9), "p99_ms": percentile(lat, 0.99),
              "max_ms": max(lat) if lat else None,
              "drop_errors": sorted({d.error or "?" for d in drops})[:5]}
        if n == 0:
            yield unknown(run.entry, "no attempt was made", **ev)
            continue
        problems = []
        if len(drops) / n > conf["max_drop_ratio"]:
            problems.append(f"{len(drops)} of {n} canaries dropped ({', '.join(ev['drop_errors'])})")
        if ev["p99_ms"] is not None and ev["p99_ms"] > conf["max_p99_ms"]:
            problems.append(f"p99 round trip {ev['p99_ms']} ms above {conf['max_p99_ms']} ms")
        if problems:
            yield failed(run.entry, "; ".join(problems), **ev)
        else:
            yield passed(run.entry, f"{n} canaries, no drop; round trip p50 {ev['p50_ms']} / p99 {ev['p99_ms']} ms",
                         **ev)


__all__ = ["rank_ghost_causes", "percentile", "NotApplicable"]
