"""CLIENTS checks on hand-made facts: options, cause ranking, canary and heartbeat verdicts."""

from __future__ import annotations

import json
import shutil

from validators.canary.model import CanaryResult, HeartbeatRun, SessionView
from validators.checks.clients import percentile, rank_ghost_causes
from validators.cli import execute
from validators.collect.clients import ServiceFacts, load_replay
from validators.core.model import Facts, Status, Unavailable
from validators.core.registry import by_category, get
from validators.core.runner import run_checks
from validators.vernemq.parse import SessionRow
from validators.vernemq.sessions import NodeSessions, SessionSummary

N1 = "VerneMQ1@127.0.0.1"


def _one_ghost_phase(vmq_fixtures, tmp_path):
    """Phase 02 with one more socket on node1 (num_online 4, num_offline 1: queues still 5)."""
    phase = tmp_path / "02g"
    shutil.copytree(vmq_fixtures / "02_steady_clients", phase)
    for f in ("node1_status.json", "node2_status.json"):
        doc = json.loads((phase / f).read_text())
        doc[0][N1].update(num_online=4, num_offline=1)
        (phase / f).write_text(json.dumps(doc))
    return phase


def test_tolerance_option(vmq_fixtures, tmp_path):
    phase = _one_ghost_phase(vmq_fixtures, tmp_path)
    strict = execute(["clients", "--replay", str(phase)])
    r = next(r for r in strict.results if r.check == "CLIENTS-001" and r.subject == N1)
    assert r.status is Status.FAIL and r.evidence["ghost_sockets"] == 1
    pol = tmp_path / "p.yaml"
    pol.write_text("checks:\n  CLIENTS-001:\n    options: {tolerance: 1}\n")
    loose = execute(["clients", "--replay", str(phase), "--policy", str(pol)])
    assert next(r for r in loose.results if r.check == "CLIENTS-001" and r.subject == N1).status is Status.PASS


def test_online_sessions_above_sockets_means_clients_shown_offline(vmq_fixtures, tmp_path):
    phase = tmp_path / "02s"
    shutil.copytree(vmq_fixtures / "02_steady_clients", phase)
    for f in ("node1_status.json", "node2_status.json"):
        doc = json.loads((phase / f).read_text())
        doc[0][N1].update(num_online=1, num_offline=4)
        (phase / f).write_text(json.dumps(doc))
    rep = execute(["clients", "--replay", str(phase)])
    r = next(r for r in rep.results if r.check == "CLIENTS-002" and r.subject == N1)
    assert r.status is Status.FAIL and "3 sessions online but only 1 counted online" in r.message


def test_rank_causes_close_timeout_first_when_it_rose():
    causes = rank_ghost_causes(4, tcp=4, ws=0, ws_not_upgraded=0, close_timeout_rise=7, service=None)
    assert causes[0]["cause"].startswith("clients that open a socket") and "rose by 7" in causes[0]["why"]
    causes = rank_ghost_causes(4, tcp=4, ws=0, ws_not_upgraded=0, close_timeout_rise=0, service=None)
    assert causes[0]["cause"].startswith("load-balancer") and "did not rise" in causes[1]["why"]
    lb = ServiceFacts("vmq", "LoadBalancer", "Cluster")
    causes = rank_ghost_causes(4, tcp=4, ws=0, ws_not_upgraded=0, close_timeout_rise=7, service=lb)
    assert causes[0]["cause"].startswith("load-balancer")
    mixed = rank_ghost_causes(5, tcp=2, ws=3, ws_not_upgraded=3, close_timeout_rise=None, service=None)
    assert [c["sockets"] for c in mixed] == [3, 2, 2] and mixed[0]["cause"].startswith("idle HTTP")


def _facts_with_sessions(vmq_fixtures, summary):
    facts = load_replay([vmq_fixtures / "02_steady_clients"])
    facts["clients.samples"][-1].sessions = summary
    return facts


def _results(facts, check):
    return [r for r in run_checks("clients", [get(check)], facts).results]


def test_duplicate_online_client(vmq_fixtures):
    s = SessionSummary(rows=2, by_node={N1: NodeSessions(online=1)}, duplicates={"dev-1": [N1, "VerneMQ2@h"]})
    (r,) = _results(_facts_with_sessions(vmq_fixtures, s), "CLIENTS-004")
    assert r.status is Status.FAIL and r.subject == "dev-1" and r.evidence["nodes"] == [N1, "VerneMQ2@h"]


def test_truncated_session_list_is_unknown_not_pass(vmq_fixtures):
    s = SessionSummary(rows=4, limit=2, by_node={N1: NodeSessions(online=2), "VerneMQ2@127.0.0.2":
                                                 NodeSessions(online=1, offline=1)})
    res = _results(_facts_with_sessions(vmq_fixtures, s), "CLIENTS-002")
    assert {r.status for r in res} == {Status.UNKNOWN} and "per-node limit" in res[0].message


def test_rows_without_node_column_are_unknown(vmq_fixtures):
    s = SessionSummary(rows=3, by_node={"?": NodeSessions(online=3)}, has_node=False)
    (r,) = _results(_facts_with_sessions(vmq_fixtures, s), "CLIENTS-004")
    assert r.status is Status.UNKNOWN and "--node" in r.message


def test_sessions_unavailable_reason_reaches_the_report(vmq_fixtures):
    facts = _facts_with_sessions(vmq_fixtures, Unavailable("GET x: 401 Unauthorized"))
    res = _results(facts, "CLIENTS-001")
    assert {r.status for r in res} == {Status.UNKNOWN} and "401" in res[0].message


def _canary(entry="lb", received=True, error=None, stage="cleanup", views=None):
    return CanaryResult(entry=entry, url="tcp://x:1883", client_id="c1", stage=stage, error=error,
                        received=received, timings_ms={"connect": 1.0, "roundtrip": 2.0}, views=views or {})


def _view(*rows, num_online=None):
    return SessionView(rows=tuple(rows), num_online=num_online or {})


def _canary_facts(results):
    return Facts({"clients.canaries": results})


def test_canary_checks():
    good = _canary(views={"online": _view(SessionRow("c1", True, N1), num_online={N1: 1}),
                          "offline": _view(SessionRow("c1", False, N1)), "cleaned": _view()})
    not_visible = _canary("ingress", views={"online": _view(), "offline": _view(), "cleaned": _view()})
    twice = _canary("lb2", views={"online": _view(SessionRow("c1", True, N1), SessionRow("c1", True, "B@h"))})
    left = _canary("lb3", views={"online": _view(SessionRow("c1", True, N1), num_online={N1: 1}),
                                 "offline": _view(SessionRow("c1", True, N1)),
                                 "cleaned": _view(SessionRow("c1", False, N1))})
    uncounted = _canary("lb4", views={"online": _view(SessionRow("c1", True, N1), num_online={N1: 0})})
    broken = _canary("tcp", received=False, error="connection refused by x:1", stage="")
    facts = _canary_facts([good, not_visible, twice, left, uncounted, broken])
    pubsub = {r.subject: r for r in run_checks("c", [get("CLIENTS-010")], facts).results}
    assert pubsub["lb"].status is Status.PASS and pubsub["tcp"].status is Status.FAIL
    assert "connection refused" in pubsub["tcp"].message and pubsub["tcp"].evidence["stage"] == "none"
    vis = {r.subject: r for r in run_checks("c", [get("CLIENTS-011")], facts).results}
    assert vis["lb"].status is Status.PASS
    assert vis["ingress"].status is Status.FAIL and "online on 0 node(s)" in vis["ingress"].message
    assert vis["lb2"].status is Status.FAIL and "online on 2 node(s)" in vis["lb2"].message
    assert vis["lb3"].status is Status.FAIL and "still online" in vis["lb3"].message
    assert "left after the clean_session=true cleanup" in vis["lb3"].message
    assert vis["lb4"].status is Status.FAIL and "counts num_online 0" in vis["lb4"].message
    assert vis["tcp"].status is Status.SKIP


def test_heartbeat_percentiles_and_drops():
    ok = [_canary() for _ in range(9)]
    for i, c in enumerate(ok):
        c.timings_ms["roundtrip"] = float(i + 1)
    drop = _canary(received=False, error="no its own message back within 5s")
    run = HeartbeatRun(entry="lb", url="tcp://x", interval_s=1, duration_s=10, results=ok + [drop])
    (r,) = run_checks("c", [get("CLIENTS-012")], Facts({"clients.heartbeat": [run]})).results
    assert r.status is Status.FAIL and r.evidence["drops"] == 1 and r.evidence["p50_ms"] == 5.0
    assert r.evidence["max_ms"] == 9.0 and "1 of 10 canaries dropped" in r.message
    run.results = ok
    (r,) = run_checks("c", [get("CLIENTS-012")], Facts({"clients.heartbeat": [run]})).results
    assert r.status is Status.PASS
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5 and percentile([], 0.5) is None


def test_every_clients_check_is_explained():
    specs = by_category("clients")
    assert len(specs) == 11
    for s in specs:
        assert s.doc and s.remedy and s.id.startswith("CLIENTS-")
