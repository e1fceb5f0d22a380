"""Every captured VerneMQ 2.1.2 phase replayed through the CLIENTS checks (the same facts as a live run)."""

from __future__ import annotations

import json
import shutil

import pytest

from validators.cli import execute, main
from validators.collect.clients import ServiceFacts, load_replay
from validators.core.model import Status
from validators.core.registry import by_category
from validators.core.runner import run_checks


def _run(vmq_fixtures, *phases, facts_hook=None):
    facts = load_replay([vmq_fixtures / p for p in phases])
    if facts_hook:
        facts_hook(facts)
    return run_checks("clients", by_category("clients"), facts)


def _by(report, check):
    return {r.subject: r for r in report.results if r.check == check}


N1, N2 = "VerneMQ1@127.0.0.1", "VerneMQ2@127.0.0.2"


@pytest.mark.parametrize("phase", ["00_fresh_cluster_no_clients", "02_steady_clients", "05_restarted_after_kill"])
def test_consistent_phases_have_no_finding(vmq_fixtures, phase):
    report = _run(vmq_fixtures, phase)
    assert report.findings_at_or_above("warning") == []
    for check in ("CLIENTS-001", "CLIENTS-002", "CLIENTS-003", "CLIENTS-006"):
        got = _by(report, check)
        assert set(got) == {N1, N2} and all(r.status is Status.PASS for r in got.values()), check


def test_phase02_numbers_per_node(vmq_fixtures):
    report = _run(vmq_fixtures, "02_steady_clients")
    ev = {n: dict(r.evidence) for n, r in _by(report, "CLIENTS-002").items()}
    assert (ev[N1]["num_online"], ev[N1]["num_offline"], ev[N1]["sessions_online"], ev[N1]["sessions_offline"]) == \
        (3, 2, 3, 2)
    assert (ev[N2]["num_online"], ev[N2]["num_offline"], ev[N2]["sessions_online"], ev[N2]["sessions_offline"]) == \
        (2, 2, 2, 2)


def test_phase05_offline_sessions_are_consistent(vmq_fixtures):
    report = _run(vmq_fixtures, "05_restarted_after_kill")
    for r in _by(report, "CLIENTS-002").values():
        assert (r.evidence["num_online"], r.evidence["num_offline"], r.evidence["sessions_offline"]) == (0, 3, 3)


def test_phase01_ghost_sockets_with_numbers_and_ranked_cause(vmq_fixtures):
    report = _run(vmq_fixtures, "01_raw_sockets_no_sessions")
    ghosts = _by(report, "CLIENTS-001")
    n1, n2 = ghosts[N1], ghosts[N2]
    assert n1.status is Status.FAIL and n2.status is Status.FAIL
    assert (n1.evidence["num_online"], n1.evidence["num_offline"], n1.evidence["online_sessions"],
            n1.evidence["ghost_sockets"], n1.evidence["tcp_sockets"]) == (5, -5, 0, 5, 5)
    assert (n2.evidence["num_online"], n2.evidence["num_offline"], n2.evidence["ghost_sockets"],
            n2.evidence["ws_sockets"], n2.evidence["ws_not_upgraded"]) == (3, -3, 3, 3, 3)
    # node1: bare TCP sockets on 1883 -> LB probes first; node2: never-upgraded WS connections -> idle HTTP first
    assert n1.evidence["likely_causes"][0]["cause"].startswith("load-balancer TCP probes")
    assert n2.evidence["likely_causes"][0]["cause"].startswith("idle HTTP connections on the WebSocket port")
    assert "online 5 / offline -5" in n1.message and "online 3 / offline -3" in n2.message
    # the queues agree with the (empty) session list: not CLIENTS-002's business
    assert all(r.status is Status.PASS for r in _by(report, "CLIENTS-002").values())


def test_phase01_without_session_show_still_flags_negative_offline(vmq_fixtures, tmp_path):
    phase = tmp_path / "01"
    shutil.copytree(vmq_fixtures / "01_raw_sockets_no_sessions", phase)
    for f in phase.glob("*session_show*"):
        f.unlink()
    facts = load_replay([phase])
    report = run_checks("clients", by_category("clients"), facts)
    n1 = _by(report, "CLIENTS-001")[N1]
    assert n1.status is Status.FAIL and n1.evidence["online_sessions"] is None and n1.evidence["ghost_sockets"] == 5
    assert _by(report, "CLIENTS-002")[N1].status is Status.UNKNOWN


@pytest.mark.parametrize("phase", ["03_node2_killed_t10s", "04_node2_killed_t60s"])
def test_killed_node_is_missing_netsplit_unresolved_and_health_disagrees(vmq_fixtures, phase):
    report = _run(vmq_fixtures, phase)
    missing = _by(report, "CLIENTS-003")
    assert missing[N2].status is Status.FAIL and missing[N1].status is Status.PASS
    assert missing[N2].evidence["running_false_in"] == [N1]
    assert missing[N2].evidence["missing_from_status_of"] == [N1]
    split = _by(report, "CLIENTS-006")[N1]
    assert split.status is Status.FAIL
    assert (split.evidence["netsplit_detected"], split.evidence["netsplit_resolved"]) == (2, 1)
    health = _by(report, "CLIENTS-007")[N1]
    assert health.status is Status.FAIL and health.evidence["listeners_full_cluster_http"] == 503
    # node1's own numbers stay consistent: only its sessions are left
    assert _by(report, "CLIENTS-001")[N1].status is Status.PASS
    assert _by(report, "CLIENTS-002")[N1].status is Status.PASS


def test_phase03_node2_http_unreachable_and_phase04_not_asked(vmq_fixtures):
    m3 = _by(_run(vmq_fixtures, "03_node2_killed_t10s"), "CLIENTS-003")[N2]
    assert "HTTP 000" in m3.evidence["http"]
    m4 = _by(_run(vmq_fixtures, "04_node2_killed_t60s"), "CLIENTS-003")[N2]
    assert m4.evidence["http"].startswith("not asked")


def test_sessions_still_pointing_at_the_killed_node_from_the_earlier_sample(vmq_fixtures):
    report = _run(vmq_fixtures, "02_steady_clients", "03_node2_killed_t10s")
    m = _by(report, "CLIENTS-003")[N2]
    assert m.evidence["sessions_on_node"] == {"02_steady_clients": {"online": 2, "offline": 2}}
    assert "4 sessions (2 online) pointed at it in 02_steady_clients" in m.message
    split = _by(report, "CLIENTS-006")[N1]
    assert split.evidence["detected_rise_during_run"] == 1 and "rose by 1 during the run" in split.message


def test_restart_between_samples_makes_counters_go_backwards(vmq_fixtures):
    report = _run(vmq_fixtures, "04_node2_killed_t60s", "05_restarted_after_kill")
    r = _by(report, "CLIENTS-005")[N1]
    assert r.status is Status.WARN
    drops = {d["counter"]: (d["before"], d["after"]) for d in r.evidence["drops"]}
    assert drops["socket_open"] == (11, 0) and drops["mqtt_connack_sent"] == (6, 0)
    # the netsplit counter went down with the restart: no "rise during the run" is claimed
    assert _by(report, "CLIENTS-006")[N1].evidence["detected_rise_during_run"] is None


def test_counters_only_grow_between_steady_samples(vmq_fixtures):
    report = _run(vmq_fixtures, "00_fresh_cluster_no_clients", "02_steady_clients")
    assert {r.status for r in _by(report, "CLIENTS-005").values()} == {Status.PASS}


def test_service_facts_rank_lb_probes_first(vmq_fixtures):
    def hook(facts):
        facts.set("clients.service", ServiceFacts(name="vmq", type="LoadBalancer", external_traffic_policy="Cluster"))
    n1 = _by(_run(vmq_fixtures, "01_raw_sockets_no_sessions", facts_hook=hook), "CLIENTS-001")[N1]
    assert "externalTrafficPolicy Cluster" in n1.evidence["likely_causes"][0]["why"]


def test_malformed_capture_becomes_unknown_with_the_field(vmq_fixtures, tmp_path):
    phase = tmp_path / "02"
    shutil.copytree(vmq_fixtures / "02_steady_clients", phase)
    doc = json.loads((phase / "node2_status.json").read_text())
    doc[0]["VerneMQ2@127.0.0.2"]["num_offline"] = "two"
    (phase / "node2_status.json").write_text(json.dumps(doc))
    (phase / "node1_metrics.prom").write_text("vernemq_socket_open{node=\"a\"} eleven\n")
    report = run_checks("clients", by_category("clients"), load_replay([phase]))
    # node2's own status.json is unreadable: node1's copy of node2's entry is used, node2 is still checked
    assert _by(report, "CLIENTS-002")[N2].status is Status.PASS
    n2_http = _by(report, "CLIENTS-003")[N2]
    assert "num_offline" in n2_http.evidence["http"] and "expected a whole number" in n2_http.evidence["http"]
    assert "line 1 (vernemq_socket_open)" in _by(report, "CLIENTS-006")[N1].message


def test_cli_replay_exit_codes_and_json(vmq_fixtures, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["clients", "--replay", str(vmq_fixtures / "02_steady_clients"), "--report-json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["summary"]["failed"] is False and doc["meta"]["source"] == "replay"
    assert main(["clients", "--replay", str(vmq_fixtures / "01_raw_sockets_no_sessions"), "--format", "json"]) == 1
    assert main(["clients", "--replay", str(tmp_path / "nope")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert main(["clients"]) == 2
    rep = execute(["clients", "--replay", str(vmq_fixtures / "03_node2_killed_t10s")])
    assert rep.exit_code() == 1


def test_policy_tolerance_accepts_small_ghosts(vmq_fixtures, tmp_path):
    pol = tmp_path / "p.yaml"
    pol.write_text("checks:\n  CLIENTS-001:\n    options: {tolerance: 5}\n")
    rep = execute(["clients", "--replay", str(vmq_fixtures / "01_raw_sockets_no_sessions"), "--policy", str(pol)])
    # tolerance does not excuse a negative num_offline: the status page is wrong either way
    assert {r.status for r in rep.results if r.check == "CLIENTS-001"} == {Status.FAIL}


def test_listener_show_stands_in_for_missing_metrics(vmq_fixtures, tmp_path):
    phase = tmp_path / "01"
    shutil.copytree(vmq_fixtures / "01_raw_sockets_no_sessions", phase)
    for f in phase.glob("*metrics.prom"):
        f.unlink()
    n2 = _by(run_checks("clients", by_category("clients"), load_replay([phase])), "CLIENTS-001")[N2]
    assert (n2.evidence["tcp_sockets"], n2.evidence["ws_sockets"], n2.evidence["ws_not_upgraded"]) == (0, 3, None)
    assert n2.status is Status.FAIL and n2.evidence["ghost_sockets"] == 3
