"""Upgrade pre-flight: is this cluster in a state where a rolling upgrade is safe?

Pure functions over facts gathered once by ``validators.collect.preflight``:

``preflight_views``     {"nodes": {node: {"members": {node: running}, "version": str, "num_online": int,
                        "num_offline": int}}, "unreachable": {node_or_pod: reason}} — every node's own
                        view, as reported by ``/status.json``, and the endpoints that could not be read.
``preflight_expected``  {"count": int, "names": [node, ...] | None, "source": str}
``preflight_metrics``   {node: {"samples": [{metric: value}, ...], "interval": seconds}} or
                        {node: {"error": reason}} — two samples of ``/metrics`` taken ``interval`` apart.
``preflight_pods``      [{"name", "ready", "phase", "version"}] (Kubernetes only)
``preflight_workload``  {"name", "replicas", "ready_replicas", "current_revision", "update_revision"}
``preflight_pdbs``      [{"name", "disruptions_allowed", "expected_pods", "current_healthy"}]
``preflight_versions``  {"current": {node_or_pod: version}, "target": str | None}
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from ..core.model import Facts, Finding, failed, passed, skipped, warned
from ..core.registry import check

CATEGORY = "preflight"


@check("PREFLIGHT-001", title="All nodes running with identical membership", severity="error", category=CATEGORY,
       needs=("preflight_views", "preflight_expected"),
       remedy="Bring every node back (`vmq-admin cluster show` on each must list the same nodes, all running); "
              "remove departed nodes with `vmq-admin cluster leave` before upgrading.")
def membership(facts: Facts, conf: Mapping[str, Any]) -> Iterable[Finding]:
    """Every node must be running and see the same cluster as every other node.

    A rolling upgrade restarts one node at a time; the others must carry the load and keep the
    metadata (subscriptions, retained messages) replicated. If one node is already down, or two
    nodes disagree about the membership (a netsplit, or a node that left only half-way), the
    restart of the next pod takes a second node away and clients lose sessions. Each node's view
    comes from its own ``/status.json`` (``mystatus``); the expected node count comes from the
    StatefulSet replicas or the targets file.
    """
    views, expected = facts["preflight_views"]["nodes"], facts["preflight_expected"]
    for who, reason in sorted(facts["preflight_views"].get("unreachable", {}).items()):
        yield failed(who, f"cannot read this node's status: {reason}",
                     remedy="make the node's HTTP listener (port 8888) reachable, then run the pre-flight again.")
    ok_views = views
    names = expected.get("names")
    count = expected.get("count")
    if names:
        for node in sorted(set(names) - set(views)):
            yield failed(node, f"listed in the {expected.get('source', 'inventory')} but no node reported it")
    if count is not None and len(views) != count:
        yield failed("cluster", f"{len(views)} node(s) reported, {count} expected ({expected.get('source', '')})",
                     reported=sorted(views), expected=count)
    distinct = {tuple(sorted(v["members"].items())) for v in ok_views.values()}
    for node, v in sorted(ok_views.items()):
        down = sorted(m for m, running in v["members"].items() if not running)
        if down:
            yield failed(node, f"sees member(s) not running: {', '.join(down)}", members=v["members"])
        elif len(distinct) > 1:
            yield failed(node, "its membership view differs from another node's",
                         members=sorted(v["members"]))
        else:
            yield passed(node, f"running; sees {len(v['members'])} member(s), all running",
                         members=sorted(v["members"]))


def _metric(sample: Mapping[str, float], name: str) -> float | None:
    return sample.get(name)


@check("PREFLIGHT-002", title="No netsplit counters rising", severity="error", category=CATEGORY,
       needs=("preflight_metrics",),
       remedy="Find and fix the network problem between the nodes (NetworkPolicy for 4369/44053/9100-9109, "
              "DNS of the headless Service) and wait until netsplit_detected stops rising.")
def netsplits(facts: Facts, conf: Mapping[str, Any]) -> Iterable[Finding]:
    """``netsplit_detected`` must not rise between two samples, and every detected netsplit must be resolved.

    The two ``/metrics`` samples are taken some seconds apart (``--interval``). A counter that rises
    means the cluster is partitioning right now; an upgrade on top of that can lose metadata writes.
    ``netsplit_detected`` above ``netsplit_resolved`` means a partition has not healed yet.
    """
    for node, m in sorted(facts["preflight_metrics"].items()):
        if "error" in m:
            yield failed(node, f"cannot read /metrics: {m['error']}")
            continue
        samples = m["samples"]
        first, last = samples[0], samples[-1]
        d0, d1 = _metric(first, "netsplit_detected"), _metric(last, "netsplit_detected")
        r1 = _metric(last, "netsplit_resolved")
        if d1 is None:
            yield failed(node, "the node exports no netsplit_detected metric", remedy="enable the metrics endpoint "
                         "(vmq_metrics_http) on port 8888.")
            continue
        open_splits = f"{d1 - r1:g} netsplit(s) detected but not resolved" if r1 is not None and d1 > r1 else ""
        if len(samples) >= 2 and d1 > d0:
            yield failed(node, f"netsplit_detected rose from {d0:g} to {d1:g} in {m.get('interval', 0):g}s"
                               + (f"; {open_splits}" if open_splits else ""), detected=[d0, d1])
        elif open_splits:
            yield failed(node, open_splits, detected=d1, resolved=r1)
        elif len(samples) < 2:
            yield warned(node, "only one sample: cannot tell whether netsplits are rising",
                         remedy="run the pre-flight with an interval above 0.", netsplit_detected=d1)
        else:
            yield passed(node, f"netsplit counters steady ({d1:g} detected, "
                               f"{format(r1, 'g') if r1 is not None else '?'} resolved)")


@check("PREFLIGHT-003", title="All pods ready and the StatefulSet settled", severity="error", category=CATEGORY,
       needs=("preflight_pods", "preflight_workload"),
       remedy="Wait for the pods to become ready (`kubectl get pods -l app.kubernetes.io/instance=RELEASE`), "
              "and for any running rollout to finish, before starting an upgrade.")
def pods_ready(facts: Facts, conf: Mapping[str, Any]) -> Iterable[Finding]:
    """Every VerneMQ pod must be Ready, their number must match the replicas, and no rollout may be running.

    A StatefulSet whose current and update revisions differ is in the middle of a rollout (maybe a
    stopped partitioned upgrade); starting another upgrade on top of it mixes three versions.
    """
    pods, sts = facts["preflight_pods"], facts["preflight_workload"]
    replicas = sts.get("replicas")
    if replicas is not None and len(pods) != replicas:
        yield failed(sts["name"], f"{len(pods)} pod(s) found, the StatefulSet wants {replicas}",
                     pods=sorted(p["name"] for p in pods))
    cur, upd = sts.get("current_revision"), sts.get("update_revision")
    if cur and upd and cur != upd:
        yield failed(sts["name"], f"a rollout is in progress (current revision {cur}, update revision {upd})",
                     remedy="finish or roll back the running rollout first (check updateStrategy.rollingUpdate."
                            "partition).")
    for p in sorted(pods, key=lambda p: p["name"]):
        if p.get("ready"):
            yield passed(p["name"], "ready")
        else:
            yield failed(p["name"], f"not ready (phase {p.get('phase') or 'unknown'})", phase=p.get("phase"))


@check("PREFLIGHT-004", title="A PodDisruptionBudget allows exactly the one disruption an upgrade needs",
       severity="error", category=CATEGORY, needs=("preflight_pdbs",),
       remedy="Enable the chart's PodDisruptionBudget (maxUnavailable: 1) and make all pods ready so that "
              "status.disruptionsAllowed is at least 1.")
def pdb(facts: Facts, conf: Mapping[str, Any]) -> Iterable[Finding]:
    """A PDB must cover the VerneMQ pods and currently allow at least one disruption.

    Without a PDB, node drains during the upgrade window can take several brokers at once. With
    ``disruptionsAllowed: 0`` (a pod already unhealthy, or ``minAvailable`` equal to the replicas)
    every eviction is refused and drains hang. A PDB allowing more than one disruption is reported
    as a warning: two brokers may go away together.
    """
    pdbs = facts["preflight_pdbs"]
    if not pdbs:
        yield failed("pdb", "no PodDisruptionBudget selects the VerneMQ pods")
        return
    for p in sorted(pdbs, key=lambda p: p["name"]):
        allowed = p.get("disruptions_allowed")
        if allowed is None:
            yield failed(p["name"], "the PDB has no status yet (disruptionsAllowed unknown)")
        elif allowed < 1:
            yield failed(p["name"], f"allows {allowed} disruption(s); {p.get('current_healthy')} of "
                                    f"{p.get('expected_pods')} pods healthy", disruptions_allowed=allowed)
        elif allowed > 1:
            yield warned(p["name"], f"allows {allowed} disruptions at once; an upgrade needs exactly 1",
                         remedy="set the PDB to maxUnavailable: 1.", disruptions_allowed=allowed)
        else:
            yield passed(p["name"], "allows exactly 1 disruption", disruptions_allowed=allowed)


@check("PREFLIGHT-005", title="Client session counts are consistent", severity="error", category=CATEGORY,
       needs=("preflight_views",),
       remedy="Wait for half-open connections to finish or close (run the pre-flight again in a minute) and run "
              "`vmq-validate clients` for the detailed session comparison.")
def client_state(facts: Facts, conf: Mapping[str, Any]) -> Iterable[Finding]:
    """Online and offline session counts must be plain non-negative numbers on every node.

    VerneMQ 2.1 computes ``num_offline`` as sessions minus online connections; sockets that never
    sent an MQTT CONNECT count as online without a session and turn the offline count negative
    ("online 5, offline -5"). Upgrading while the counts are inconsistent hides whether sessions
    survived the restart, because the before/after comparison is meaningless.
    """
    for node, v in sorted(facts["preflight_views"]["nodes"].items()):
        on, off = v.get("num_online"), v.get("num_offline")
        if not isinstance(on, int) or not isinstance(off, int):
            yield failed(node, f"session counts missing from /status.json (online {on!r}, offline {off!r})")
        elif on < 0 or off < 0:
            yield failed(node, f"inconsistent session counts: online {on}, offline {off}", num_online=on,
                         num_offline=off)
        else:
            yield passed(node, f"online {on}, offline {off}", num_online=on, num_offline=off)


def backlog_of(sample: Mapping[str, float]) -> float:
    """Messages queued and not yet delivered, dropped or expired: an upper bound of the offline backlog."""
    inn = sample.get("queue_message_in", 0.0)
    out = sum(sample.get(k, 0.0) for k in ("queue_message_out", "queue_message_drop", "queue_message_expired",
                                           "queue_message_unhandled"))
    return max(0.0, inn - out)


@check("PREFLIGHT-006", title="Offline-message backlog under the threshold", severity="error", category=CATEGORY,
       needs=("preflight_metrics",), defaults={"max_offline_messages": 10000},
       remedy="Let persistent clients reconnect and drain their queues (or expire them) before the upgrade; a "
              "restarting node must reload every queued message from disk.")
def backlog(facts: Facts, conf: Mapping[str, Any]) -> Iterable[Finding]:
    """The messages queued for offline sessions, per node, must stay under ``max_offline_messages``.

    Computed from the counters of the last ``/metrics`` sample as ``queue_message_in`` minus
    ``queue_message_out``, ``_drop``, ``_expired`` and ``_unhandled`` (an upper bound). A large
    backlog makes a node's restart slow and its readiness late, which stretches the upgrade and
    the time the cluster runs one node short.
    """
    limit = conf["max_offline_messages"]
    for node, m in sorted(facts["preflight_metrics"].items()):
        if "error" in m:
            yield failed(node, f"cannot read /metrics: {m['error']}")
            continue
        sample = m["samples"][-1]
        if "queue_message_in" not in sample:
            yield failed(node, "the node exports no queue_message_in metric")
            continue
        value = backlog_of(sample)
        if value > limit:
            yield failed(node, f"about {value:g} queued message(s), above the limit {limit}", backlog=value,
                         limit=limit)
        else:
            yield passed(node, f"about {value:g} queued message(s) (limit {limit})", backlog=value, limit=limit)


_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str | None) -> tuple[int, int, int] | None:
    """``"2.1.2"``, ``"v2.0.1-alpine"``, ``"2.1"`` -> (major, minor, patch); anything else -> None."""
    if not isinstance(text, str):
        return None
    m = _VERSION.match(text.strip())
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


#: transitions that need a documented manual procedure: (from (major, minor), to at least (major, minor), reason)
GUARDED = (
    ((2, 0), (2, 1), "VerneMQ 2.1.0 changed the on-disk format of the metadata store; an in-place rolling upgrade "
                     "from 2.0.x must follow the documented 2.0 -> 2.1 migration procedure (back up the data "
                     "volumes, upgrade, and do not roll back without the backup)"),
    ((1, 13), (2, 0), "VerneMQ 2.0 is a major release with incompatible configuration and defaults; follow the "
                      "migration guide to 2.0 (upgrade to the latest 1.13.x first)"),
)


@check("PREFLIGHT-007", title="The version path is allowed", severity="error", category=CATEGORY,
       needs=("preflight_versions",), defaults={"allow_metadata_migration": False},
       remedy="Upgrade along an allowed path: patch and minor steps within a series; for a guarded step, follow "
              "the documented procedure and then set the check option allow_metadata_migration: true.")
def version_path(facts: Facts, conf: Mapping[str, Any]) -> Iterable[Finding]:
    """The target version must be reachable from the running version in one rolling upgrade.

    Blocked: a mixed running cluster (a previous upgrade did not finish), a downgrade, a skipped
    major version, and guarded transitions (2.0.x -> 2.1.x changed the metadata store's on-disk
    format; 1.x -> 2.x) unless ``allow_metadata_migration`` is set after following the documented
    procedure, in which case it is a warning that still names the reason.
    """
    v = facts["preflight_versions"]
    current, target_text = v.get("current") or {}, v.get("target")
    parsed = {who: parse_version(text) for who, text in current.items()}
    unknown_nodes = sorted(who for who, p in parsed.items() if p is None)
    for who in unknown_nodes:
        yield failed(who, f"cannot read the running version ({current[who]!r})")
    running = {p for p in parsed.values() if p is not None}
    if len(running) > 1:
        yield failed("cluster", "the nodes run different versions: " + ", ".join(
            f"{who}={current[who]}" for who in sorted(current)), remedy="finish (or roll back) the previous "
                     "upgrade so that every node runs the same version first.")
        return
    if not running:
        if not unknown_nodes:
            yield failed("cluster", "no running version could be read")
        return
    (cur,) = running
    cur_text = ".".join(map(str, cur))
    if not target_text:
        yield skipped("version", f"running {cur_text}; no target version given")
        return
    tgt = parse_version(target_text)
    if tgt is None:
        yield failed("version", f"the target version {target_text!r} is not a version number",
                     remedy="give the target as MAJOR.MINOR.PATCH (e.g. 2.1.2).")
        return
    step = f"{cur_text} -> {target_text}"
    if tgt < cur:
        yield failed("version", f"{step} is a downgrade; VerneMQ does not support downgrading a cluster in place",
                     remedy="restore the pre-upgrade backup of the data volumes instead.", current=cur_text,
                     target=target_text)
        return
    if tgt[0] > cur[0] + 1:
        yield failed("version", f"{step} skips a major version", remedy="upgrade one major version at a time.",
                     current=cur_text, target=target_text)
        return
    for src, dst, reason in GUARDED:
        if cur[:2] <= src and tgt[:2] >= dst:
            if conf["allow_metadata_migration"]:
                yield warned("version", f"{step}: {reason}. Allowed by allow_metadata_migration.",
                             current=cur_text, target=target_text)
            else:
                yield failed("version", f"{step} is blocked: {reason}", current=cur_text, target=target_text)
            return
    if tgt == cur:
        yield passed("version", f"{step}: same version (a configuration-only rollout)")
    else:
        yield passed("version", f"{step} is a supported rolling upgrade", current=cur_text, target=target_text)
