"""DIST-0xx: Erlang distribution between VerneMQ nodes (EPMD, ports, cookie, membership).

Pure functions over the facts of :mod:`validators.collect.distribution`. Pairwise findings have the
subject ``"SRC -> DST"`` (SRC is a node, or ``validator`` with the direct transport); per-node findings
have the node name. Each failure is reported once, at its root: a step that could not run because an
earlier one failed is ``skip`` with a pointer to the check that failed.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Mapping

from ..core.model import Facts, Finding, failed, passed, skipped, unknown
from ..core.registry import check
from ..erldist.handshake import ACCEPTED  # outcomes where the peer accepted our digest (sent a challenge_ack)

NEEDS = ("dist.cluster", "dist.observations")
WELL_KNOWN = "well_known_cookie"


def pair(src: str, dst: str) -> str:
    return f"{src} -> {dst}"


class _Index:
    def __init__(self, facts: Facts):
        self.cluster: Mapping[str, Any] = facts["dist.cluster"]
        self.by: dict[tuple[str, str, str], dict] = {}
        self.transport_errors: dict[str, list[str]] = defaultdict(list)
        #: the well-known cookies tried (DIST-008): as the collector lists them, and any an observation names
        self.well_known: list[str] = list(self.cluster.get("well_known_cookies") or [])
        for o in facts["dist.observations"]:
            kind = o.get("kind")
            if kind == "transport_error":
                self.transport_errors[o.get("src", "?")].append(o.get("detail", ""))
            elif "dst" in o:
                if kind == WELL_KNOWN and o.get("cookie") not in self.well_known:
                    self.well_known.append(str(o.get("cookie")))
                key = (kind, o.get("port_name", "")) if kind == "tcp" else \
                    (kind, ":" + str(o.get("cookie"))) if kind == WELL_KNOWN else (kind, "")
                self.by[(key[0] + key[1], o["src"], o["dst"])] = o

    def get(self, kind: str, src: str, dst: str) -> dict | None:
        return self.by.get((kind, src, dst))

    def pairs(self) -> list[tuple[str, str]]:
        return [tuple(p) for p in self.cluster["pairs"]]  # type: ignore[misc]

    def missing(self, src: str, dst: str, what: str, because: str) -> Finding:
        """No observation: the source's probes failed as a whole (unknown) or an earlier step failed (skip)."""
        if self.transport_errors.get(src):
            return unknown(pair(src, dst), f"could not run the probes from {src}: {self.transport_errors[src][0]}",
                           transport_error=self.transport_errors[src][0])
        return skipped(pair(src, dst), f"{what} not tested: {because}")


def _net_evidence(o: Mapping[str, Any]) -> dict[str, Any]:
    return {k: o[k] for k in ("port", "error", "detail", "elapsed_ms") if k in o}


@check("DIST-001", title="EPMD is reachable from every node (NAMES)", severity="error", category="distribution",
       needs=NEEDS,
       remedy="Allow TCP 4369 (EPMD) between all VerneMQ pods: NetworkPolicy ingress from the release's own pods "
              "on port `epmd`, and check that epmd runs in the pod (`epmd -names`).")
def epmd_reachable(facts: Facts, conf: Mapping[str, Any]) -> Iterable[Finding]:
    """Every source asks every target's EPMD (port 4369) for its NAMES over TCP.

    Erlang nodes find each other's distribution port through EPMD; a node whose EPMD cannot be reached
    from a peer cannot be connected to by that peer. Evidence: the error (refused = something rejects,
    e.g. a NetworkPolicy with reject or nothing listening; timeout = packets dropped) and the port.
    """
    idx = _Index(facts)
    port = idx.cluster["epmd_port"]
    for src, dst in idx.pairs():
        o = idx.get("epmd_names", src, dst)
        if o is None:
            yield idx.missing(src, dst, "EPMD", "no observation")
        elif o.get("ok"):
            yield passed(pair(src, dst), f"EPMD on port {port} answered NAMES", port=port, names=o.get("names"))
        elif o.get("error") == "protocol":
            yield failed(pair(src, dst), f"port {port} answered, but not as EPMD: {o.get('detail')}",
                         port=port, **_net_evidence(o))
        else:
            yield failed(pair(src, dst), f"EPMD of {dst} (port {port}) is not reachable from {src}: "
                                         f"{o.get('error')} ({o.get('detail')})", port=port, **_net_evidence(o))


@check("DIST-002", title="The node is registered in EPMD under the expected name", severity="error",
       category="distribution", needs=NEEDS,
       remedy="The node's Erlang VM is not running or was started with another name: check the pod's logs, "
              "`vmq-admin cluster show`, and the nodename (VerneMQ@<host>) in vm.args / DOCKER_VERNEMQ_NODENAME.")
def registered(facts: Facts, conf: Mapping[str, Any]) -> Iterable[Finding]:
    """The short name before '@' (e.g. ``VerneMQ``) must be in the NAMES answer of the node's own EPMD.

    A reachable EPMD that does not list the node means the VM is down, restarting, or runs under a
    different name, so peers cannot connect to it. Judged from every source that reached the EPMD.
    """
    idx = _Index(facts)
    for node in idx.cluster["nodes"]:
        short = node.split("@", 1)[0]
        seen = [(s, o) for (k, s, d), o in idx.by.items() if k == "epmd_names" and d == node and o.get("ok")]
        if not seen:
            yield skipped(node, "no source could read this node's EPMD (see DIST-001)")
            continue
        listed = sorted({n for _s, o in seen for n, _p in o.get("names", [])})
        if any(short in [n for n, _p in o.get("names", [])] for _s, o in seen):
            yield passed(node, f"EPMD lists {short}", names=listed, observers=sorted(s for s, _ in seen))
        else:
            yield failed(node, f"EPMD on {node.split('@', 1)[1]} answers but lists no node named {short!r}"
                               f" (it lists {listed or 'nothing'})", names=listed,
                         observers=sorted(s for s, _ in seen))


@check("DIST-003", title="The distribution port is inside the configured range (PORT_PLEASE2)",
       severity="error", category="distribution", needs=NEEDS,
       remedy="Pin the distribution port range in the image and the NetworkPolicy alike: "
              "DOCKER_VERNEMQ_ERLANG__DISTRIBUTION__PORT_RANGE__MINIMUM/MAXIMUM (chart value "
              "`distribution.portRange`) must match the NetworkPolicy's port/endPort.")
def port_in_range(facts: Facts, conf: Mapping[str, Any]) -> Iterable[Finding]:
    """PORT_PLEASE2 returns the port the node listens on for distribution; it must be inside the range.

    The NetworkPolicy opens only the range (default 9100-9109). A node listening elsewhere (the image
    ignored the range setting, or an old pod template) is reachable only where nothing filters, and
    splits from its peers as soon as the policy is enforced.
    """
    idx = _Index(facts)
    lo, hi = idx.cluster["dist_port_range"]
    for node in idx.cluster["nodes"]:
        obs = [o for (k, _s, d), o in idx.by.items() if k == "port_please" and d == node and o.get("ok")]
        found = [o for o in obs if o.get("found")]
        if not found:
            why = "the node is not registered in EPMD (see DIST-002)" if obs else "no source reached its EPMD"
            yield skipped(node, f"distribution port unknown: {why}")
            continue
        ports = sorted({o["port"] for o in found})
        outside = [p for p in ports if not lo <= p <= hi]
        ev = {"ports": ports, "range": [lo, hi], "highest_version": found[0].get("highest"),
              "lowest_version": found[0].get("lowest")}
        if outside:
            yield failed(node, f"distribution port {outside[0]} is outside the range {lo}-{hi}", **ev)
        else:
            yield passed(node, f"distribution port {ports[0]} is inside {lo}-{hi}", **ev)


@check("DIST-004", title="The distribution port is reachable from every node", severity="error",
       category="distribution", needs=NEEDS,
       remedy="Allow TCP on the distribution port range (default 9100-9109) between all VerneMQ pods "
              "(NetworkPolicy `port: 9100, endPort: 9109`), and make sure nothing else filters it.")
def dist_reachable(facts: Facts, conf: Mapping[str, Any]) -> Iterable[Finding]:
    """A TCP connection from each source to the target's distribution port (the one EPMD returned).

    Tested as the first step of the handshake (DIST-006). When the source could not learn the port
    (EPMD unreachable or node not registered) the pair is skipped; that root cause is DIST-001/002.
    """
    idx = _Index(facts)
    for src, dst in idx.pairs():
        o = idx.get("handshake", src, dst)
        if o is None:
            yield idx.missing(src, dst, "distribution port", "its port is unknown from this source (see DIST-001/002)")
        elif o.get("outcome") == "connect_failed":
            yield failed(pair(src, dst), f"distribution port {o.get('port')} of {dst} is not reachable from {src}: "
                                         f"{o.get('error')} ({o.get('detail')})", **_net_evidence(o))
        else:
            yield passed(pair(src, dst), f"TCP connect to distribution port {o.get('port')} succeeded",
                         port=o.get("port"))


@check("DIST-005", title="The cluster listener (44053) is reachable from every node", severity="error",
       category="distribution", needs=NEEDS,
       remedy="Allow TCP 44053 (`cluster` port, listener.vmq.clustering) between all VerneMQ pods and check "
              "that the listener is bound to the pod address (`vmq-admin listener show`).")
def cluster_port_reachable(facts: Facts, conf: Mapping[str, Any]) -> Iterable[Finding]:
    """A TCP connection from each source to the target's VerneMQ cluster listener (default 44053).

    VerneMQ forwards published messages between nodes over this listener, not over distribution: a
    cluster that is connected but cannot reach 44053 loses messages between nodes.
    """
    idx = _Index(facts)
    for src, dst in idx.pairs():
        o = idx.get("tcpcluster", src, dst)
        if o is None:
            yield idx.missing(src, dst, "cluster port", "no observation")
        elif o.get("ok"):
            yield passed(pair(src, dst), f"TCP connect to cluster port {o.get('port')} succeeded", port=o.get("port"))
        else:
            yield failed(pair(src, dst), f"cluster port {o.get('port')} of {dst} is not reachable from {src}: "
                                         f"{o.get('error')} ({o.get('detail')})", **_net_evidence(o))


_WELL_KNOWN_REMEDY = (
    "The official image takes its cookie from `-setcookie` in /vernemq/etc/vm.args, which ships as `-setcookie "
    "vmq`: with that file present the release starts with `-args_file etc/vm.args`, and `distributed_cookie` in "
    "vernemq.conf, where DOCKER_VERNEMQ_DISTRIBUTED_COOKIE lands, is ignored. Write the release's Secret cookie "
    "(chart values `erlangCookie.existingSecret` / `erlangCookie.existingSecretKey`; by default the Secret the "
    "chart generates) onto the `-setcookie` line of vm.args before the node starts (e.g. in the init container "
    "that seeds /vernemq/etc), on all nodes in one rollout (nodes on different cookies cannot talk), then check "
    "that `vmq-validate distribution` passes DIST-006 with the Secret's cookie and DIST-008. Until then keep EPMD "
    "(4369) and the distribution ports reachable only from the release's own pods (NetworkPolicy).")

_COOKIE_REMEDY = ("Give every node the same cookie, from the same Secret (after a re-install the Secret may have been "
                  "regenerated while old pods kept the old value: restart them). Compare the pods' vm.args "
                  "-setcookie: the official image's node takes its cookie from there, not from "
                  "DOCKER_VERNEMQ_DISTRIBUTED_COOKIE (see DIST-008).")


@check("DIST-006", title="The distribution handshake succeeds (same cookie)", severity="error",
       category="distribution", needs=NEEDS, remedy=_COOKIE_REMEDY)
def handshake_ok(facts: Facts, conf: Mapping[str, Any]) -> Iterable[Finding]:
    """A real Erlang distribution handshake (version 6) from each source, as a hidden node.

    The probe sends its name, reads the status and the challenge, answers with the MD5 digest of the
    cluster cookie, and waits for the challenge acknowledgement, then closes: no node is joined and no
    message is sent. If the target closes after our reply without acknowledging, the cookies differ:
    that is reported as a cookie mismatch, not as "unreachable" (connectivity is DIST-004).
    """
    idx = _Index(facts)
    given = bool(idx.cluster.get("cookie_given"))
    whose = "the cluster cookie" if given else "the source pod's own cookie"
    for src, dst in idx.pairs():
        o = idx.get("handshake", src, dst)
        ev = {k: o[k] for k in ("port", "outcome", "stage", "error", "detail", "peer_name", "peer_version")
              if o and o.get(k)} if o else {}
        if o is None and not given and not idx.transport_errors.get(src):
            yield skipped(pair(src, dst), "no cookie given (cookie_env/cookie_file or the release's Secret)")
        elif o is None:
            yield idx.missing(src, dst, "handshake", "the distribution port is unknown (see DIST-001/002)")
        elif o.get("outcome") == "ok":
            note = "" if given else ": the source pod's own, ack not verified"
            yield passed(pair(src, dst), f"handshake with {o.get('peer_name')} acknowledged (same cookie{note})", **ev)
        elif o.get("outcome") == "connect_failed":
            yield skipped(pair(src, dst), "no TCP connection to the distribution port (see DIST-004)")
        elif o.get("outcome") == "cookie_rejected":
            wk = [c for c in idx.well_known
                  if (idx.get(f"{WELL_KNOWN}:{c}", src, dst) or {}).get("outcome") in ACCEPTED]
            if wk:  # the node runs on a public default cookie instead of the configured one
                yield failed(pair(src, dst), f"connected to {dst} on port {o.get('port')}, but it rejected {whose}: "
                                             f"it runs on the well-known cookie {wk[0]!r} instead (see DIST-008)",
                             connected=True, cookie_rejected=True, well_known_cookie_accepted=wk[0],
                             remedy=_WELL_KNOWN_REMEDY, **ev)
                continue
            yield failed(pair(src, dst), f"connected to {dst} on port {o.get('port')}, but it rejected {whose} "
                                         "(closed the connection after our challenge reply): its cookie "
                                         "differs", connected=True, cookie_rejected=True, **ev)
        elif o.get("outcome") == "ack_mismatch":
            yield failed(pair(src, dst), f"{dst} acknowledged with a digest of another cookie", connected=True, **ev)
        elif str(o.get("outcome", "")).startswith("status_"):
            yield failed(pair(src, dst), f"{dst} refused the connection at recv_status: {o.get('detail')}",
                         connected=True, remedy="A node refuses a peer whose name is already connected (alive) or "
                                                "not allowed (net_kernel:allow/1); check the node names.", **ev)
        else:
            yield failed(pair(src, dst), f"handshake with {dst} failed at {o.get('stage')}: {o.get('outcome')} "
                                         f"({o.get('detail')})", connected=True,
                         remedy="Check that the distribution port really belongs to the Erlang node (PORT_PLEASE2 "
                                "answer) and that no proxy sits in between.", **ev)


@check("DIST-007", title="Every node's cluster view lists the same nodes, all running (no netsplit)",
       severity="error", category="distribution", needs=("dist.cluster", "dist.views"),
       remedy="Find the broken link with DIST-001..006 (the pair that cannot connect), fix it, then check "
              "`vmq-admin cluster show` on every node; a node left out needs `vmq-admin cluster join "
              "discovery-node=<a running node>`.")
def membership(facts: Facts, conf: Mapping[str, Any]) -> Iterable[Finding]:
    """Each node's ``GET /api/v1/cluster/show`` must list exactly the expected nodes, all ``Running: true``.

    A node that lists a member as not running, or misses it, sees a netsplit: the finding names who
    (the observer) sees whom (the member) how. Needs the HTTP API key (scope mgmt); a view that cannot be
    read is ``unknown`` for that node.
    """
    cluster = facts["dist.cluster"]
    expected = list(cluster["nodes"])
    views = facts["dist.views"]
    for obs in expected:
        v = views.get(obs) or {"ok": False, "reason": "not collected"}
        if not v.get("ok"):
            yield unknown(obs, f"cannot read the cluster view of {obs}: {v.get('reason')}")
            continue
        table = {n: r for n, r in v["members"]}
        running = sorted(n for n, r in table.items() if r)
        down = sorted(n for n, r in table.items() if not r)
        ev = {"running": running, "not_running": down, "missing": sorted(set(expected) - set(table)),
              "unexpected": sorted(set(table) - set(expected))}
        bad = False
        for m in expected:
            if m not in table:
                bad = True
                yield failed(pair(obs, m), f"{obs} does not list {m} in its cluster view", **ev)
            elif not table[m]:
                bad = True
                yield failed(pair(obs, m), f"netsplit: {obs} sees {m} as not running "
                                           f"({obs} sees running: {', '.join(running)})", **ev)
        for m in sorted(set(table) - set(expected)):
            bad = True
            yield failed(pair(obs, m), f"{obs} lists {m}, which is not one of the expected nodes", **ev)
        if not bad:
            yield passed(obs, f"{obs} sees all {len(expected)} nodes running", **ev)


@check("DIST-008", title="No node accepts a well-known Erlang cookie (the image default `vmq`)", severity="critical",
       category="distribution", needs=NEEDS, remedy=_WELL_KNOWN_REMEDY)
def well_known_cookie(facts: Facts, conf: Mapping[str, Any]) -> Iterable[Finding]:
    """One source per node also runs the handshake with every cookie VerneMQ's packaging ships as a default
    (`vmq`: the image's vm.args `-setcookie vmq`, and `distributed_cookie`'s default in the release's schema and
    stock vernemq.conf), whatever cookie the operator configured, and stops after the challenge acknowledgement.
    Once per node, not per pair: the answer does not depend on who asks, and each refused attempt is an error
    line in the node's log. When the chosen source could not get as far as the challenge, another source that
    did tries it (the collector's second round).

    A node that acknowledges it runs on that public cookie: anyone who reaches its EPMD (4369) and its
    distribution port can connect as a cluster peer and run any code on it (a hidden node pinging it with
    this cookie gets `pong`). That is what the official image does with any chart that only sets
    DOCKER_VERNEMQ_DISTRIBUTED_COOKIE, because its vm.args `-setcookie vmq` wins. A node that closes the
    connection after the challenge reply refused the cookie (`pang`; it logs "Connection attempt from node
    ... rejected. Invalid challenge reply."): pass. The well-known cookie is public and named in the report;
    the configured cookie never is. Per node: fail when any source was accepted, pass when refused.
    """
    idx = _Index(facts)
    tried = idx.well_known
    names = ", ".join(repr(c) for c in tried) or "none"
    for node in idx.cluster["nodes"]:
        obs = sorted(((s, o) for (k, s, d), o in idx.by.items() if k.startswith(WELL_KNOWN) and d == node),
                     key=lambda so: so[0])
        accepted = [(s, o) for s, o in obs if o.get("outcome") in ACCEPTED]
        refused = [(s, o) for s, o in obs if o.get("outcome") == "cookie_rejected"]
        if accepted:
            cookies = sorted({o.get("cookie") for _s, o in accepted})
            first = accepted[0][1]
            yield failed(node, f"{node} accepts the well-known cookie {cookies[0]!r} (VerneMQ's packaged default): it "
                               "acknowledged our challenge reply, as it answers `pong` to a ping with this cookie; "
                               "anyone who reaches its EPMD and distribution port can connect as a peer and run "
                               "code on it", cookies_accepted=cookies, accepted_by=[s for s, _o in accepted],
                         port=first.get("port"), peer_name=first.get("peer_name"), outcome=first.get("outcome"),
                         ping="pong", tried=tried)
        elif refused:
            yield passed(node, f"{node} refused the well-known cookie(s) {names}: it closed the connection after our "
                               "challenge reply (a ping with it gets `pang`; the node logs \"Connection attempt from "
                               "node ... rejected. Invalid challenge reply.\")", refused_by=[s for s, _o in refused],
                         port=refused[0][1].get("port"), outcome="cookie_rejected", ping="pang", tried=tried)
        elif obs:
            yield unknown(node, f"the handshake with the well-known cookie(s) {names} did not finish: "
                                + "; ".join(f"{s}: {o.get('outcome')} at {o.get('stage')}" for s, o in obs[:3]),
                          outcomes={s: o.get("outcome") for s, o in obs}, tried=tried)
        else:
            srcs = [s for s, d in idx.pairs() if d == node]
            errs = [idx.transport_errors[s][0] for s in srcs if idx.transport_errors.get(s)]
            if srcs and len(errs) == len(srcs):
                yield unknown(node, f"could not run the probes towards {node}: {errs[0]}", transport_error=errs[0])
            else:
                yield skipped(node, f"well-known cookie(s) {names} not tried: no source got as far as the handshake's "
                                    "challenge (see DIST-001/002/004/006)")
