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
from ..collect.clients import KeyAnswer, NodeObservation, Sample, ServiceFacts, view_of
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
    if sample.session_sources and node not in sample.session_sources:
        return None, (f"session/show was read from {', '.join(dict.fromkeys(sample.session_sources.values()))}, "
                      f"which does not see {node} running (netsplit), and no node that sees it answered: each "
                      "answer lists only the sessions of the nodes its node sees")
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


def _ws_not_upgraded(obs: NodeObservation | None, ws: int | None = None) -> int | None:
    """Open WS connections never upgraded: VerneMQ counts a WS socket in socket_open only after the upgrade,
    but in total_active_connections (ranch all_connections) from the accept."""
    ws = _int(_counter(obs, "active_mqttws_connections")) if ws is None else ws
    total = _int(_counter(obs, "total_active_connections"))
    opened, closed = _counter(obs, "socket_open"), _counter(obs, "socket_close")
    if total is None or opened is None or closed is None or ws is None:
        return None
    return max(0, min(ws, total - int(opened - closed)))


def _silent(obs: NodeObservation) -> Finding | None:
    """A skip pointing at CLIENTS-003 for a node whose status.json did not answer (reported once, there)."""
    if obs.reachable:
        return None
    return skipped(obs.name, f"{obs.name} does not answer ({obs.status.reason}): see CLIENTS-003")


def _service_facts(facts: Facts) -> ServiceFacts | None:
    svc = facts.get("clients.service")
    return svc if isinstance(svc, ServiceFacts) else None


_WS_PLAIN_REMEDY = ("Point the prober at the HTTP listener's /health (port 8888) instead of the WebSocket port, or "
                    "let it send a real upgrade and CONNECT; each plain connection holds a socket for up to 5 s, so "
                    "the status page's numbers jump while probes come and go.")
_WS_UPGRADED_REMEDY = ("Find the peers (`ss -tn state established '( sport = :8080 )'` in the pod) and fix the client "
                       "that upgrades to WebSocket but never sends CONNECT, or make the health check that upgrades "
                       "send CONNECT/DISCONNECT (or probe /health on 8888 instead); VerneMQ does not close these "
                       "connections, they stay until the peer closes them.")
_LB_REMEDY = ("Point load-balancer health probes at the HTTP port's /health instead of the MQTT port (or use "
              "externalTrafficPolicy Local with its health-check node port).")
_SLOW_REMEDY = "Fix the clients that connect but do not send CONNECT in time (check their TLS/auth set-up and logs)."


def rank_ghost_causes(ghost: int, tcp: int | None, ws: int | None, ws_not_upgraded: int | None,
                      close_timeout_rise: int | None, service: ServiceFacts | None,
                      ws_plain_by_sample: Mapping[str, int | None] | None = None) -> list[dict[str, Any]]:
    """The likely causes of ``ghost`` sockets without a session, most likely first, each with its evidence
    and its own remedy. ``kind``: ``ws_plain`` (WS port, never upgraded), ``ws_upgraded`` (upgraded, no
    CONNECT) or ``tcp`` (MQTT port; two alternative explanations for the same sockets)."""
    causes: list[dict[str, Any]] = []
    ws_idle = min(ghost, ws_not_upgraded or 0)
    rest = max(0, ghost - ws_idle)
    ws_upgraded = None if ws is None or ws_not_upgraded is None else max(0, ws - ws_not_upgraded)
    if ws_upgraded and not tcp:
        ws_up_ghost, tcp_ghost = min(rest, ws_upgraded), max(0, rest - ws_upgraded)
    elif ws_upgraded:
        # online sessions can sit on either listener: each count is an upper bound
        ws_up_ghost, tcp_ghost = min(rest, ws_upgraded), min(rest, tcp or 0) or rest
    else:
        ws_up_ghost, tcp_ghost = 0, rest
    if ws_idle:
        came_went = ""
        seen = [f"{n} in {label}" for label, n in (ws_plain_by_sample or {}).items() if n is not None]
        if len(seen) > 1:
            came_went = f"; seen over the run: {', '.join(seen)}"
        causes.append({"cause": "idle HTTP connections on the WebSocket port (never upgraded to MQTT)",
                       "kind": "ws_plain", "sockets": ws_idle,
                       "why": f"{ws} WS connections are open but socket_open - socket_close counts only "
                              f"{ws - ws_idle if ws is not None else '?'} upgraded ones; VerneMQ counts every WS "
                              "connection (ranch all_connections), even one that never sends a request. Cowboy "
                              "closes such a connection after 5 s, so they come and go: the pattern of a TCP or "
                              f"HTTP prober on the ws listener (load-balancer health checks, port scanners){came_went}",
                       "remedy": _WS_PLAIN_REMEDY})
    if ws_up_ghost:
        causes.append({"cause": "upgraded WebSocket connections that never sent CONNECT", "kind": "ws_upgraded",
                       "sockets": ws_up_ghost,
                       "why": f"{ws_upgraded} WS connections completed the upgrade (counted in socket_open) and "
                              f"{ws_up_ghost} of the open sockets have no MQTT session; VerneMQ keeps an upgraded "
                              "connection without CONNECT until the peer closes it, so they stay: a client stuck "
                              "after the upgrade, or a health check that upgrades and then idles",
                       "remedy": _WS_UPGRADED_REMEDY})
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
        slow = {"cause": "clients that open a socket but do not finish CONNECT", "kind": "tcp", "sockets": tcp_ghost,
                "why": "sockets without CONNECT are closed after the connect timeout (socket_close_timeout)",
                "remedy": _SLOW_REMEDY}
        lb = {"cause": "load-balancer TCP probes on the MQTT port", "kind": "tcp", "sockets": tcp_ghost,
              "why": lb_why, "remedy": _LB_REMEDY}
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


def _ghost_summary(causes: list[dict[str, Any]]) -> tuple[str, str | None]:
    """(the causes for the message, one kind each; a remedy per kind when there is more than one kind)."""
    by_kind: dict[str, dict[str, Any]] = {}
    for c in causes:
        by_kind.setdefault(c["kind"], c)  # the first of a kind is its most likely explanation
    if not by_kind:
        return "", None
    until = " Until then read online clients from `vmq-admin session show --is_online=true`, not from the status page."
    if len(by_kind) == 1:
        c = next(iter(by_kind.values()))
        # the MQTT port has two explanations for the same sockets: the check's remedy covers both
        return f"; most likely: {c['cause']} ({c['why']})", None if c["kind"] == "tcp" else c["remedy"] + until
    parts = [f"{c['sockets']} {c['cause']} ({c['why']})" for c in by_kind.values()]
    remedy = " ".join(f"[{c['sockets']} {c['cause']}] {c['remedy']}" for c in by_kind.values())
    return "; they are of different kinds: " + "; ".join(parts), remedy + until


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
    likely cause from the metrics, each kind with its own remedy: plain connections on the WebSocket port
    that never upgraded (socket_open counts WS sockets only after the upgrade; Cowboy closes them after
    5 s, so they come and go like a prober), upgraded WebSocket connections that never sent CONNECT (they
    stay until the peer closes them: a stuck client or a health check that upgrades), and on the MQTT port
    socket_close_timeout rising during the run (clients not finishing CONNECT) or the Service in front of
    the pods (LoadBalancer with externalTrafficPolicy Cluster probes every node).
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
        ws_not_upgraded = _ws_not_upgraded(obs)
        if ws_not_upgraded is None and ws is not None:
            ws_not_upgraded = _ws_not_upgraded(obs, ws)
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
            plain_seen = {s.label: _ws_not_upgraded(s.nodes.get(node)) for s in samples} if len(samples) > 1 else None
            causes = rank_ghost_causes(max(ghost, 0), tcp, ws, ws_not_upgraded,
                                       evidence["socket_close_timeout_rise"], service, plain_seen)
            evidence["ghost_sockets"] = ghost
            evidence["likely_causes"] = causes
            if plain_seen:
                evidence["ws_not_upgraded_by_sample"] = plain_seen
            sessions_txt = (f"{online_sessions} online sessions" if online_sessions is not None
                            else f"{st.queues} queues in all (session/show unavailable)")
            top, remedy = _ghost_summary(causes)
            gone = [label for label, n in (plain_seen or {}).items() if n and label != sample.label]
            if gone and not ws_not_upgraded:
                top += (f"; the plain connections on the WebSocket port seen in {', '.join(gone)} are gone by "
                        f"{sample.label} (Cowboy closes them after 5 s): those come and go, these stay")
            yield failed(node, f"{st.num_online} open sockets but {sessions_txt}: {ghost} ghost sockets, so the "
                               f"status page shows online {st.num_online} / offline {st.num_offline}{top}",
                         remedy=remedy, **evidence)
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
              "sessions_total": counts.total,
              "sessions_from": sample.session_sources.get(node, sample.sessions_from)}
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

def _ghost_member_remedy(node: str, runner: str | None, expected: bool | None) -> str:
    hint = ""
    if expected is False:
        hint = (f"{node} is not one of the nodes the targets file or the pods name, so it is most likely gone for "
                "good (a scaled-down StatefulSet keeps its members: the image no longer leaves the cluster on "
                "scale-down). ")
    elif expected is True:
        hint = f"{node} is one of the nodes the targets file or the pods name, so it should come back. "
    return (hint + f"Gone for good: remove it from the membership with `vmq-admin cluster leave node={node} -k`, run "
            f"on a running node ({runner or 'any running node'}); a node that is down cannot hand its queues over, "
            "so to keep its offline sessions and queued messages start it once and make it leave while it runs "
            "(a leave of a running node migrates queues and messages). Should come back (crashed, evicted, pod "
            "stuck): bring it back with its data (`kubectl describe pod`, `kubectl logs`, its volume); it rejoins "
            "by itself and restores its persistent sessions from disk. Until then the cluster is degraded: "
            "/health/listeners_full_cluster stays DOWN and an upgrade must not start (preflight blocks).")


@check("CLIENTS-003", title="Every cluster member is running and answers", severity="error", category=CATEGORY,
       needs=("clients.samples",),
       remedy="Bring the node back (pod events, `kubectl logs`, OOM kills) or, if it is gone for good, remove it "
              "with `vmq-admin cluster leave node=NAME -k` on a running node. Sessions whose queues lived on the "
              "missing node get no messages until it returns.")
def node_missing(facts: Facts, conf: Mapping[str, Any]) -> Iterable[Finding]:
    """A cluster member is not running: missing from status.json, not running in the cluster view, or silent.

    Each node's status.json lists every node it can reach, so a node absent from all of them, marked
    ``false`` in ``mystatus`` or ``Running: false`` in cluster/show is out of the cluster. A node stopped
    without ``vmq-admin cluster leave`` (a StatefulSet scaled down, a pod that never came back) stays a
    member with Running=false: a ghost member. Its sessions drop out of every total (no status.json
    counts them, session/show lists none of them), /health stays OK while
    /health/listeners_full_cluster is DOWN, and the others count a netsplit. The evidence counts the
    sessions that pointed at the node in this and earlier samples (e.g. before it stopped). A node that
    answers itself but that others do not see is a netsplit: CLIENTS-006 reports it and this check skips it.
    """
    samples: list[Sample] = facts["clients.samples"]
    sample = samples[-1]
    expected_given = list(facts.get("clients.expected") or [])
    expected = list(dict.fromkeys(expected_given + sample.known_nodes()))
    answering = [o for o in sample.nodes.values() if o.reachable]
    views = {o.name: view_of(o) for o in answering}
    for node in expected:
        obs = sample.nodes.get(node)
        missing_from = [o.name for o in answering if node not in o.status]
        down_in_mystatus = sorted({o.name for o in answering for st in o.status.values()
                                   if st.mystatus.get(node) is False})
        not_running = [o.name for o in answering if not isinstance(o.cluster, Unavailable)
                       and any(m.node == node and not m.running for m in o.cluster)]
        unreachable = obs.status.reason if obs is not None and not obs.reachable else None
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
        if obs is not None and obs.reachable and node in obs.status:
            not_seen_by = sorted(o for o, (up, _down) in views.items() if o != node and node not in up)
            if not_seen_by:
                yield skipped(node, f"{node} answers and runs, but {', '.join(not_seen_by)} does not see it running: "
                                    "a netsplit, not a stopped node (see CLIENTS-006)", **ev)
            else:
                yield passed(node, f"in the status.json and cluster view of {len(answering)} answering node(s)", **ev)
            continue
        problems = []
        if missing_from:
            problems.append(f"missing from the status.json of {', '.join(missing_from)}")
        if not_running:
            problems.append(f"Running=false in the cluster/show of {', '.join(not_running)}")
        if down_in_mystatus:
            problems.append(f"unreachable in the mystatus of {', '.join(down_in_mystatus)}")
        if unreachable:
            problems.append(f"its own HTTP does not answer ({unreachable})")
        if not problems:
            yield passed(node, f"in the status.json and cluster view of {len(answering)} answering node(s)", **ev)
            continue
        if not answering:
            yield unknown(node, "no node answered at all: " + "; ".join(problems), **ev)
            continue
        last = next(reversed(stranded.items()), None)
        tail = (f"; {last[1]['online'] + last[1]['offline']} sessions ({last[1]['online']} online) pointed at "
                f"it in {last[0]}") if last else ""
        if not (not_running or down_in_mystatus):
            yield failed(node, "; ".join(problems) + tail, **ev)
            continue
        # a member that is not running: say what that does to the rest of the cluster
        others = [o.name for o in answering]
        health_split = [o.name for o in answering if not isinstance(o.health, Unavailable) and o.health.ok
                        and not isinstance(o.health_full, Unavailable) and not o.health_full.ok]
        netsplits = {o.name: int(v) for o in answering if (v := _counter(o, "netsplit_detected")) is not None}
        ev.update(member_not_running=True, health_ok_but_full_cluster_down_on=health_split,
                  netsplit_detected=netsplits,
                  expected=None if not expected_given else node in expected_given)
        where = []
        if not_running:
            where.append(f"Running=false in the cluster/show of {', '.join(not_running)}")
        if missing_from:
            where.append(f"dropped from the status.json of {', '.join(missing_from)}"
                         + (" (mystatus false)" if down_in_mystatus else ""))
        if unreachable:
            where.append(f"its own HTTP does not answer ({unreachable})")
        msg = (f"{node} is a cluster member that is not running: {'; '.join(where)}. Its sessions are counted "
               "nowhere: no status.json counts them and session/show lists none of them (its persistent sessions "
               f"and their queued messages wait on its disk){tail}")
        if health_split:
            msg += (f". /health stays OK on {', '.join(health_split)} while /health/listeners_full_cluster is DOWN "
                    "(503)")
        if any(netsplits.values()):
            msg += ("; netsplit_detected " + ", ".join(f"{n} {v}" for n, v in netsplits.items())
                    + " (a node that stops without `cluster leave` counts as a netsplit)")
        yield failed(node, msg, remedy=_ghost_member_remedy(node, others[0] if others else None, ev["expected"]),
                     **ev)


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

def _who_sees_whom(sample: Sample, node: str) -> tuple[str, dict[str, Any]]:
    """How ``node`` sees its peers and how each peer it does not see answers (a partition or a stopped node)."""
    obs = sample.nodes.get(node)
    if obs is None or not obs.reachable:
        return "", {}
    up, down = view_of(obs)
    parts = []
    for peer in sorted(down):
        pobs = sample.nodes.get(peer)
        if pobs is not None and pobs.reachable and peer in pobs.status:
            if node not in view_of(pobs)[0]:
                parts.append(f"{peer} answers and sees {node} as not running too: both sides are up and cut off "
                             "from each other (a network partition)")
            else:
                parts.append(f"{peer} answers and sees {node} running, but {node} cannot reach it (a one-way cut)")
        elif pobs is not None:
            parts.append(f"{peer} does not answer: it is stopped or gone (CLIENTS-003)")
        else:
            parts.append(f"{peer} was not asked")
    ev = {"sees_running": sorted(up), "sees_not_running": sorted(down)}
    if not down:
        return "", ev
    return (f"{node} sees {', '.join(sorted(up))} running and {', '.join(sorted(down))} not running; "
            + "; ".join(parts)), ev


def _restarted_peers(sample: Sample, node: str) -> list[str]:
    """Peers whose counters started after ``node`` lost them: no netsplit of their own and a shorter uptime."""
    obs = sample.nodes.get(node)
    mine = _counter(obs, "system_wallclock")
    out = []
    for peer, pobs in sample.nodes.items():
        if peer == node or _counter(pobs, "netsplit_detected") != 0:
            continue
        theirs = _counter(pobs, "system_wallclock")
        if mine is None or theirs is None or theirs < mine:
            out.append(peer)
    return out


@check("CLIENTS-006", title="No netsplit: detected == resolved, not rising during the run, and who sees whom",
       severity="error", category=CATEGORY, needs=("clients.samples",),
       remedy="Find why nodes lost each other: pod restarts, the Erlang distribution ports (4369 and the "
              "distribution range) or the cluster port 44053 blocked by a NetworkPolicy, DNS of the headless "
              "Service, CPU starvation. Run `vmq-validate distribution` for the network side. A member that is "
              "stopped rather than cut off is CLIENTS-003's subject.")
def netsplits(facts: Facts, conf: Mapping[str, Any]) -> Iterable[Finding]:
    """Netsplit counters and views: a netsplit not resolved, new netsplits during the run, and healed ones.

    ``vernemq_netsplit_detected`` counts the times this node lost a cluster peer (a network cut, a crash,
    and also a graceful stop without ``cluster leave``) and ``vernemq_netsplit_resolved`` the times a lost
    peer came back. More detected than resolved means a peer is still gone: the finding says whom the
    node sees and, for each peer it does not see, whether that peer answers (and sees this node) — both
    sides up and cut off is a partition — or not (stopped: CLIENTS-003). detected rising between samples
    means the cluster split while we watched. detected == resolved > 0 is a split that healed: a warning,
    unless a peer's counters explain it as a restart or a late join (the peer counted no netsplit itself
    and has been up for less time than this node, ``vernemq_system_wallclock``), as after a fresh start or a
    graceful restart of that peer: that passes with the explanation.
    """
    samples: list[Sample] = facts["clients.samples"]
    sample = samples[-1]
    for node, obs in sample.nodes.items():
        if (silent := _silent(obs)) is not None:
            yield silent
            continue
        det, res = _counter(obs, "netsplit_detected"), _counter(obs, "netsplit_resolved")
        if det is None or res is None:
            reason = obs.counters.reason if isinstance(obs.counters, Unavailable) else "netsplit counters missing"
            yield unknown(node, f"no netsplit counters: {reason}")
            continue
        rise = _delta(samples, node, "netsplit_detected")
        views, view_ev = _who_sees_whom(sample, node)
        ev = {"sample": sample.label, "netsplit_detected": int(det), "netsplit_resolved": int(res),
              "detected_rise_during_run": rise, **view_ev}
        uptime = _counter(obs, "system_wallclock")
        if uptime is not None:
            ev["uptime_s"] = round(uptime / 1000.0, 1)
        problems = []
        if det > res:
            problems.append(f"{int(det - res)} netsplit(s) not resolved (detected {int(det)}, resolved {int(res)})")
        if rise:
            problems.append(f"netsplit_detected rose by {rise} during the run ({samples[0].label} -> {sample.label})")
        if problems or views:
            yield failed(node, "; ".join(([f"netsplit: {views}"] if views else []) + problems), **ev)
        elif det > 0:
            restarted = _restarted_peers(sample, node)
            if restarted and det <= len(restarted):  # each restart or late join of a peer counts once
                ages = ", ".join(f"{p} up {_counter(sample.nodes[p], 'system_wallclock') / 1000.0:.0f} s"
                                 for p in restarted if _counter(sample.nodes[p], "system_wallclock") is not None)
                yield passed(node, f"netsplits detected {int(det)}, resolved {int(res)}: explained by "
                                   f"{', '.join(restarted)} starting after {node} saw it"
                                   + (f" ({ages}; {node} up {uptime / 1000.0:.0f} s)" if ages and uptime else "")
                                   + ", which counted no netsplit itself: a restart or a late join whose counters "
                                     "started again from 0, not a fault", restarted_peers=restarted, **ev)
            else:
                peers_said = (f"{len(restarted)} of them explained by {', '.join(restarted)} restarting; the others "
                              "were counted by the peers too" if restarted else
                              "the peers counted it too and none restarted since")
                yield warned(node, f"a netsplit happened and healed: detected {int(det)}, resolved {int(res)}; "
                                   f"{peers_said}, so the cluster was split for a while (messages between the sides "
                                   "were not routed then)",
                             remedy="Nothing is split now. Find what cut the nodes apart (the time is in the logs: "
                                    "'netsplit detected'), e.g. a NetworkPolicy change, a node or zone network "
                                    "outage, CPU starvation (net_ticktime); and check that clients did not register "
                                    "on both sides (CLIENTS-004).", **ev)
        else:
            saw = [p for p, pobs in sample.nodes.items() if p != node and (pd := _counter(pobs, "netsplit_detected"))
                   and pd == _counter(pobs, "netsplit_resolved") and uptime is not None
                   and (pu := _counter(pobs, "system_wallclock")) is not None and pu > uptime]
            why = (f": {node} started after {', '.join(saw)} (up {uptime / 1000.0:.0f} s), whose healed netsplit "
                   f"count is {node}'s restart or late join; {node}'s own counters started again from 0 then, "
                   "not a fault") if saw else ", none during the run"
            yield passed(node, f"netsplits detected {int(det)}, resolved {int(res)}{why}",
                         **({"restarted": True} if saw else {}), **ev)


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
        if (silent := _silent(obs)) is not None:
            yield silent
            continue
        h, f = obs.health, obs.health_full
        if isinstance(h, Unavailable) or isinstance(f, Unavailable):
            reason = h.reason if isinstance(h, Unavailable) else f.reason
            yield unknown(node, f"health not read: {reason}")
            continue
        ev = {"health": h.status, "health_http": h.http_status, "listeners_full_cluster": f.status,
              "listeners_full_cluster_http": f.http_status, "reasons": list(f.reasons)}
        if h.ok and not f.ok:
            down = sorted(view_of(obs)[1]) if obs.reachable else []
            ev["sees_not_running"] = down
            who = f": {node} does not see {', '.join(down)} running" if down else ""
            yield failed(node, f"/health is OK but /health/listeners_full_cluster is DOWN "
                               f"({'; '.join(f.reasons) or 'no reason given'}){who}", **ev)
        elif not h.ok:
            yield failed(node, f"/health is DOWN ({'; '.join(h.reasons) or 'no reason given'})", **ev)
        else:
            yield passed(node, "both OK", **ev)


# --------------------------------------------------------------------------- CLIENTS-013

@check("CLIENTS-013", title="The API key is accepted on every node", severity="error", category=CATEGORY,
       needs=("clients.samples",),
       remedy="Add the key on every node: `vmq-admin api-key add key=KEY scope=mgmt` in each pod (`kubectl exec`), "
              "and again on a node that joins later. The key lands in the replicated metadata, but each node serves "
              "keys from its own cache, so a key added on one node is refused by the others. The official image "
              "adds API_KEY itself in every pod, 60 s after the pod starts: a 401 in the first minute after a "
              "(re)start is that window. `vmq-admin api-key show` on a node lists the keys it accepts. If every node "
              "refuses, check that the validator has the right key (the release's Secret, api_key_env/file).")
def api_key_accepted(facts: Facts, conf: Mapping[str, Any]) -> Iterable[Finding]:
    """Per node: did the node accept the API key (HTTP 200 on ``/api/v1/cluster/show``) or refuse it (401)?

    VerneMQ 2.1.2's ``vmq-admin api-key add`` takes effect only on the node where it runs (it writes the key
    to the replicated metadata but updates only the local config cache, which is what the HTTP API reads),
    and a node that joins later does not get it. A 401 has an empty body and the same headers whether the
    key was never added on that node, not added yet, or is simply wrong. Without an accepted key on any
    node, the checks that read session/show or cluster/show are ``unknown`` with that reason.
    """
    sample = _latest(facts)
    answers = {n: o.api_key for n, o in sample.nodes.items()}
    if answers and all(isinstance(a, NotApplicable) for a in answers.values()):
        yield skipped("-", next(iter(answers.values())).reason)
        return
    accepted = [n for n, a in answers.items() if isinstance(a, KeyAnswer) and a.accepted]
    refused = [n for n, a in answers.items() if isinstance(a, KeyAnswer) and not a.accepted]
    for node, a in answers.items():
        if isinstance(a, Unavailable) and (silent := _silent(sample.nodes[node])) is not None:
            yield silent
        elif isinstance(a, NotApplicable):
            yield skipped(node, a.reason)
        elif isinstance(a, Unavailable):
            yield unknown(node, f"no answer to a request with the API key: {a.reason}")
        elif a.accepted:
            yield passed(node, f"accepted: HTTP {a.http_status} to GET {a.path} with the key", key_accepted=True,
                         http_status=a.http_status, path=a.path)
        else:
            if accepted:
                why = (f"{', '.join(accepted)} accepted the same key, so it was added there but not (yet) on "
                       f"{node}: `vmq-admin api-key add` takes effect only on the node where it runs")
            else:
                why = ("no node accepted it: the key is not added on any node (yet) or it is wrong, and every "
                       "check that needs the API (session/show, cluster/show) is unknown")
            yield failed(node, f"refused the API key: HTTP 401 to GET {a.path}; a 401 looks the same for a key not "
                               f"added (yet) and a wrong key; {why}", key_accepted=False, http_status=a.http_status,
                         path=a.path, accepted_on=accepted, refused_on=refused)


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
