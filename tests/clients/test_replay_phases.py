"""Phases 06-12 of the VerneMQ 2.1.2 captures through `vmq-validate clients --replay` and `preflight --replay`.

Each test pins the exact findings (check, subject, status) of a phase and the evidence a platform engineer
reads first. The numbers are the ones tests/fixtures/vernemq/2.1.2/CAPTURE.md states for each phase.
"""

from __future__ import annotations

import json
import shutil

import pytest

from validators.cli import execute, main
from validators.collect.clients import load_replay
from validators.core.model import Severity, Status
from validators.core.registry import by_category
from validators.core.runner import run_checks

V1, V2, V3 = "VerneMQ1@127.0.0.1", "VerneMQ2@127.0.0.2", "VerneMQ3@127.0.0.3"
NOT_RUN = {"CLIENTS-010", "CLIENTS-011", "CLIENTS-012"}  # canaries and heartbeat: nothing to replay


def _clients(vmq_fixtures, *phases, expected=None):
    """`vmq-validate clients --replay PHASE...`; with ``expected``, the same facts plus the nodes an operator named."""
    if expected is None:
        return execute(["clients", "--replay", *[str(vmq_fixtures / p) for p in phases]])
    facts = load_replay([vmq_fixtures / p for p in phases])
    facts.set("clients.expected", expected)
    return run_checks("clients", by_category("clients"), facts)


def _findings(report):
    """{(check, subject): status} of everything that is not a pass or a skip."""
    return {(r.check, r.subject): r.status.value for r in report.results
            if r.status not in (Status.PASS, Status.SKIP)}


def _one(report, check, subject):
    (r,) = [r for r in report.results if r.check == check and r.subject == subject]
    return r


def _preflight(vmq_fixtures, *phases):
    return execute(["preflight", "--replay", *[str(vmq_fixtures / p) for p in phases], "--target-version", "2.1.2"])


def test_06_three_nodes_steady_is_clean(vmq_fixtures):
    report = _clients(vmq_fixtures, "06_three_nodes_steady")
    assert _findings(report) == {}
    for node in (V1, V2, V3):
        ev = _one(report, "CLIENTS-002", node).evidence
        assert (ev["num_online"], ev["num_offline"], ev["sessions_online"], ev["sessions_offline"]) == (4, 3, 4, 3)
        assert _one(report, "CLIENTS-013", node).evidence["key_accepted"] is True
        assert _one(report, "CLIENTS-006", node).evidence["netsplit_detected"] == 0
    assert _preflight(vmq_fixtures, "06_three_nodes_steady").exit_code() == 0


def test_07_ghost_member_named_with_everything_it_breaks(vmq_fixtures):
    report = _clients(vmq_fixtures, "07_member_gone_no_leave")
    assert _findings(report) == {("CLIENTS-003", V3): "fail", ("CLIENTS-006", V1): "fail",
                                 ("CLIENTS-006", V2): "fail", ("CLIENTS-007", V1): "fail",
                                 ("CLIENTS-007", V2): "fail"}
    ghost = _one(report, "CLIENTS-003", V3)
    ev = ghost.evidence
    assert ev["member_not_running"] is True and ev["running_false_in"] == [V1, V2]
    assert ev["missing_from_status_of"] == [V1, V2] and ev["mystatus_false_in"] == [V1, V2]
    assert ev["health_ok_but_full_cluster_down_on"] == [V1, V2]
    assert ev["netsplit_detected"] == {V1: 1, V2: 1} and "HTTP 000" in ev["http"]
    assert f"{V3} is a cluster member that is not running" in ghost.message
    assert "Running=false" in ghost.message and "counted nowhere" in ghost.message
    assert "listeners_full_cluster is DOWN" in ghost.message and "netsplit_detected" in ghost.message
    # the remedy tells gone-for-good from should-come-back
    assert f"`vmq-admin cluster leave node={V3} -k`, run on a running node ({V1})" in ghost.remedy
    assert "Should come back" in ghost.remedy and "preflight blocks" in ghost.remedy
    split = _one(report, "CLIENTS-006", V1)
    assert (split.evidence["netsplit_detected"], split.evidence["netsplit_resolved"]) == (1, 0)
    assert split.evidence["sees_not_running"] == [V3] and f"{V3} does not answer" in split.message
    health = _one(report, "CLIENTS-007", V2)
    assert (health.evidence["health"], health.evidence["listeners_full_cluster_http"]) == ("OK", 503)
    assert health.evidence["sees_not_running"] == [V3]
    # the silent node is reported once, at CLIENTS-003; its other per-node checks point there
    for check in ("CLIENTS-006", "CLIENTS-007", "CLIENTS-013"):
        r = _one(report, check, V3)
        assert r.status is Status.SKIP and "see CLIENTS-003" in r.message, check


def test_07_after_06_counts_the_sessions_left_behind_and_the_new_netsplit(vmq_fixtures):
    report = _clients(vmq_fixtures, "06_three_nodes_steady", "07_member_gone_no_leave")
    ghost = _one(report, "CLIENTS-003", V3)
    assert ghost.evidence["sessions_on_node"] == {"06_three_nodes_steady": {"online": 4, "offline": 3}}
    assert "7 sessions (4 online) pointed at it in 06_three_nodes_steady" in ghost.message
    assert _one(report, "CLIENTS-006", V1).evidence["detected_rise_during_run"] == 1


@pytest.mark.parametrize("expected, says", [([V1, V2], "most likely gone for good"),
                                            ([V1, V2, V3], "so it should come back")])
def test_07_remedy_uses_the_nodes_the_operator_named(vmq_fixtures, expected, says):
    ghost = _one(_clients(vmq_fixtures, "07_member_gone_no_leave", expected=expected), "CLIENTS-003", V3)
    assert says in ghost.remedy and ghost.evidence["expected"] is (V3 in expected)


def test_07_preflight_blocks(vmq_fixtures):
    report = _preflight(vmq_fixtures, "07_member_gone_no_leave")
    blocked = {(r.check, r.subject) for r in report.findings_at_or_above("error")}
    assert blocked == {("PREFLIGHT-001", V1), ("PREFLIGHT-001", V2), ("PREFLIGHT-001", V3),
                       ("PREFLIGHT-002", V1), ("PREFLIGHT-002", V2)}
    assert f"not running: {V3}" in _one(report, "PREFLIGHT-001", V1).message
    assert "HTTP 000" in _one(report, "PREFLIGHT-001", V3).message


def test_08_leave_with_k_is_clean_and_the_moved_sessions_add_up(vmq_fixtures):
    report = _clients(vmq_fixtures, "08_member_left_with_k")
    assert _findings(report) == {}
    assert {r.subject for r in report.results if r.check == "CLIENTS-003"} == {V1, V2}, "node3 left: not a node"
    got = {n: (_one(report, "CLIENTS-002", n).evidence["num_offline"],
               _one(report, "CLIENTS-002", n).evidence["sessions_offline"]) for n in (V1, V2)}
    assert got == {V1: (5, 5), V2: (4, 4)}
    assert _preflight(vmq_fixtures, "08_member_left_with_k").findings_at_or_above("error") == []


def test_09_during_the_split_says_who_sees_whom(vmq_fixtures):
    report = _clients(vmq_fixtures, "09_netsplit_and_heal/during")
    assert _findings(report) == {("CLIENTS-006", V1): "fail", ("CLIENTS-006", V2): "fail",
                                 ("CLIENTS-007", V1): "fail", ("CLIENTS-007", V2): "fail"}
    for me, other in ((V1, V2), (V2, V1)):
        split = _one(report, "CLIENTS-006", me)
        assert split.evidence["sees_running"] == [me] and split.evidence["sees_not_running"] == [other]
        assert f"{other} answers and sees {me} as not running too" in split.message
        assert "a network partition" in split.message and "detected 1, resolved 0" in split.message
        # both answer: a partition, not a stopped node
        r = _one(report, "CLIENTS-003", me)
        assert r.status is Status.SKIP and "a netsplit, not a stopped node" in r.message
    # each side's session/show lists only its own side: one answer per side, each node counted from its side
    for node in (V1, V2):
        ev = _one(report, "CLIENTS-002", node).evidence
        assert (ev["sessions_from"], ev["sessions_offline"]) == (node, 3)


def _split_phase(vmq_fixtures, tmp_path, keep_node2_sessions=True):
    phase = tmp_path / "during"
    shutil.copytree(vmq_fixtures / "09_netsplit_and_heal/during", phase)
    if not keep_node2_sessions:
        for f in phase.glob("node2_api_v1_session_show*"):
            f.unlink()
    return phase


def test_09_a_client_registered_on_both_sides_of_the_split_is_found(vmq_fixtures, tmp_path):
    phase = _split_phase(vmq_fixtures, tmp_path)
    for n, node in ((1, V1), (2, V2)):
        f = phase / f"node{n}_api_v1_session_show_fields.json"
        doc = json.loads(f.read_text())
        doc["table"].append({**doc["table"][0], "client_id": "split-brain", "node": node, "is_online": True,
                             "is_offline": False, "statename": "online"})
        f.write_text(json.dumps(doc))
        st = phase / f"node{n}_status.json"
        sdoc = json.loads(st.read_text())
        sdoc[0][node]["num_online"] = 1
        st.write_text(json.dumps(sdoc))
    report = execute(["clients", "--replay", str(phase)])
    dup = _one(report, "CLIENTS-004", "split-brain")
    assert dup.status is Status.FAIL and dup.evidence["nodes"] == [V1, V2]


def test_09_without_an_answer_from_the_other_side_its_counts_are_unknown(vmq_fixtures, tmp_path):
    report = execute(["clients", "--replay", str(_split_phase(vmq_fixtures, tmp_path, keep_node2_sessions=False))])
    r = _one(report, "CLIENTS-002", V2)
    assert r.status is Status.UNKNOWN and f"which does not see {V2} running (netsplit)" in r.message
    assert _one(report, "CLIENTS-002", V1).status is Status.PASS


def test_09_healed_warns_that_a_split_happened(vmq_fixtures):
    report = _clients(vmq_fixtures, "09_netsplit_and_heal/healed")
    assert _findings(report) == {("CLIENTS-006", V1): "warn", ("CLIENTS-006", V2): "warn"}
    assert report.exit_code() == 0
    for node in (V1, V2):
        r = _one(report, "CLIENTS-006", node)
        assert r.severity is Severity.WARNING and "a netsplit happened and healed" in r.message
        assert (r.evidence["netsplit_detected"], r.evidence["netsplit_resolved"]) == (1, 1)


def test_09_preflight_blocks_during_and_passes_after(vmq_fixtures):
    during = _preflight(vmq_fixtures, "09_netsplit_and_heal/during")
    assert {(r.check, r.subject) for r in during.findings_at_or_above("error")} == {
        ("PREFLIGHT-001", V1), ("PREFLIGHT-001", V2), ("PREFLIGHT-002", V1), ("PREFLIGHT-002", V2)}
    healed = _preflight(vmq_fixtures, "09_netsplit_and_heal/during", "09_netsplit_and_heal/healed")
    assert healed.exit_code() == 0 and healed.findings_at_or_above("warning") == []
    assert "1 detected, 1 resolved" in _one(healed, "PREFLIGHT-002", V1).message
    assert _preflight(vmq_fixtures, "09_netsplit_and_heal/healed").exit_code() == 0
    # the split rose between before and during: blocked, with the numbers
    rose = _preflight(vmq_fixtures, "09_netsplit_and_heal/before", "09_netsplit_and_heal/during")
    assert "rose from 0 to 1" in _one(rose, "PREFLIGHT-002", V2).message


def test_10_graceful_restart_is_clean_and_explained_as_a_restart(vmq_fixtures):
    report = _clients(vmq_fixtures, "10_graceful_restart_sessions_restored")
    assert _findings(report) == {}
    n1, n2 = _one(report, "CLIENTS-006", V1), _one(report, "CLIENTS-006", V2)
    assert n1.status is Status.PASS and n1.evidence["restarted_peers"] == [V2]
    assert "explained by" in n1.message and "a restart or a late join" in n1.message
    assert n2.status is Status.PASS and n2.evidence["restarted"] is True and n2.evidence["uptime_s"] == 9.3
    assert "counters started again from 0" in n2.message
    for node in (V1, V2):
        ev = _one(report, "CLIENTS-002", node).evidence
        assert (ev["num_online"], ev["num_offline"], ev["sessions_offline"]) == (0, 3, 3)


def _kinds(r):
    return {c["kind"]: c["sockets"] for c in r.evidence["likely_causes"]}


def test_11_t02s_upgraded_and_plain_websocket_ghosts_told_apart(vmq_fixtures):
    report = _clients(vmq_fixtures, "11_ws_idle_and_upgraded/t02s")
    # health was not captured in phase 11
    assert _findings(report) == {("CLIENTS-001", V1): "fail", ("CLIENTS-007", V1): "unknown",
                                 ("CLIENTS-007", V2): "unknown"}
    r = _one(report, "CLIENTS-001", V1)
    ev = r.evidence
    assert (ev["num_online"], ev["num_offline"], ev["online_sessions"], ev["ghost_sockets"]) == (7, -4, 0, 7)
    assert (ev["tcp_sockets"], ev["ws_sockets"], ev["ws_not_upgraded"]) == (0, 7, 3)
    assert _kinds(r) == {"ws_upgraded": 4, "ws_plain": 3}
    assert "online 7 / offline -4" in r.message and "they are of different kinds" in r.message
    assert "come and go" in r.message and "they stay" in r.message
    # each kind its own remedy
    assert "[4 upgraded WebSocket connections that never sent CONNECT]" in r.remedy
    assert "[3 idle HTTP connections on the WebSocket port" in r.remedy and "/health (port 8888)" in r.remedy


def test_11_t65s_only_the_upgraded_ones_are_left(vmq_fixtures):
    r = _one(_clients(vmq_fixtures, "11_ws_idle_and_upgraded/t65s"), "CLIENTS-001", V1)
    assert (r.evidence["num_online"], r.evidence["num_offline"], r.evidence["ghost_sockets"]) == (4, -1, 4)
    assert _kinds(r) == {"ws_upgraded": 4}
    assert r.remedy.startswith("Find the peers") and "they stay" in r.message
    both = _one(_clients(vmq_fixtures, "11_ws_idle_and_upgraded/t02s", "11_ws_idle_and_upgraded/t65s"),
                "CLIENTS-001", V1)
    assert both.evidence["ws_not_upgraded_by_sample"] == {"t02s": 3, "t65s": 0}
    assert "seen in t02s are gone by t65s" in both.message


def test_12_before_the_key_every_node_refuses_and_the_run_is_not_clean(vmq_fixtures):
    report = _clients(vmq_fixtures, "12_api_key_window/before_key_added")
    assert report.exit_code() == 1
    for node in (V1, V2):
        r = _one(report, "CLIENTS-013", node)
        assert r.status is Status.FAIL and r.evidence["http_status"] == 401 and r.evidence["accepted_on"] == []
        assert "a 401 looks the same for a key not added (yet) and a wrong key" in r.message
        for check in ("CLIENTS-001", "CLIENTS-002"):
            u = _one(report, check, node)
            assert u.status is Status.UNKNOWN and "every node" in u.message and "401 Unauthorized" in u.message
    assert _one(report, "CLIENTS-004", "cluster").status is Status.UNKNOWN
    assert "60 s after the pod starts" in _one(report, "CLIENTS-013", V1).remedy


def test_12_after_the_add_the_key_works_on_node1_only(vmq_fixtures):
    report = _clients(vmq_fixtures, "12_api_key_window/after_key_added")
    ok, refused = _one(report, "CLIENTS-013", V1), _one(report, "CLIENTS-013", V2)
    assert ok.status is Status.PASS and ok.evidence["key_accepted"] is True
    assert refused.status is Status.FAIL and refused.evidence["accepted_on"] == [V1]
    assert "takes effect only on the node where it runs" in refused.message
    both = _clients(vmq_fixtures, "12_api_key_window/after_key_added_on_node2")
    assert {r.status for r in both.results if r.check == "CLIENTS-013"} == {Status.PASS}


def test_12_a_401_is_read_from_the_headers_without_the_log(vmq_fixtures, tmp_path):
    phase = tmp_path / "after"
    shutil.copytree(vmq_fixtures / "12_api_key_window/after_key_added", phase)
    (phase / "_capture_log.txt").unlink()
    r = _one(_clients(tmp_path, "after"), "CLIENTS-013", V2)
    assert r.status is Status.FAIL and r.evidence["http_status"] == 401


def test_a_phase_with_sub_folders_is_refused_with_their_names(vmq_fixtures, capsys):
    assert main(["clients", "--replay", str(vmq_fixtures / "09_netsplit_and_heal")]) == 2
    assert main(["preflight", "--replay", str(vmq_fixtures / "12_api_key_window")]) == 2
    err = capsys.readouterr().err
    assert "sub-folders: before, during, healed" in err and "after_key_added, after_key_added_on_node2" in err
