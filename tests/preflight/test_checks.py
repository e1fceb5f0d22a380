"""Pre-flight rules on facts: every blocking rule blocks, and a healthy cluster passes."""

from __future__ import annotations

import copy

import pytest

from validators.core.model import Facts, NotApplicable, Status
from validators.core.policy import Policy
from validators.core.registry import by_category, get
from validators.core.runner import run_checks

N1, N2, N3 = "VerneMQ@vmq-0", "VerneMQ@vmq-1", "VerneMQ@vmq-2"
MEMBERS = {N1: True, N2: True, N3: True}


def sample(detected=1, resolved=1, qin=13, qout=7):
    return {"netsplit_detected": detected, "netsplit_resolved": resolved, "queue_message_in": qin,
            "queue_message_out": qout, "queue_message_drop": 0, "queue_message_expired": 0,
            "queue_message_unhandled": 0}


def healthy() -> dict:
    view = {"members": dict(MEMBERS), "version": "2.1.1", "num_online": 3, "num_offline": 2}
    return {
        "preflight_views": {"nodes": {n: copy.deepcopy(view) for n in MEMBERS}, "unreachable": {}},
        "preflight_expected": {"count": 3, "names": None, "source": "StatefulSet replicas"},
        "preflight_metrics": {n: {"samples": [sample(), sample()], "interval": 10} for n in MEMBERS},
        "preflight_pods": [{"name": f"vmq-{i}", "ready": True, "phase": "Running", "version": "2.1.1"}
                           for i in range(3)],
        "preflight_workload": {"name": "vmq", "replicas": 3, "ready_replicas": 3, "current_revision": "vmq-1",
                               "update_revision": "vmq-1"},
        "preflight_pdbs": [{"name": "vmq", "disruptions_allowed": 1, "expected_pods": 3, "current_healthy": 3}],
        "preflight_versions": {"current": {n: "2.1.1" for n in MEMBERS}, "target": "2.1.2"},
    }


def run(facts: dict, policy: Policy | None = None):
    return run_checks("preflight", by_category("preflight"), Facts(facts), policy)


def blocking(report, check_id):
    return [r for r in report.findings_at_or_above("error") if r.check == check_id]


def test_every_rule_has_id_severity_remedy_and_docstring():
    specs = by_category("preflight")
    assert [s.id for s in specs] == [f"PREFLIGHT-00{i}" for i in range(1, 8)]
    for s in specs:
        assert s.remedy and s.doc and s.severity.value == "error", s.id


def test_healthy_cluster_passes_every_rule():
    report = run(healthy())
    assert report.findings_at_or_above("info") == []
    assert {r.check for r in report.results if r.status is Status.PASS} == {s.id for s in by_category("preflight")}


def _mutate(path, value):
    def apply(f):
        node = f
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return apply


BLOCKERS = {
    "node sees a member down": ("PREFLIGHT-001", _mutate(["preflight_views", "nodes", N1, "members", N3], False)),
    "views differ": ("PREFLIGHT-001", _mutate(["preflight_views", "nodes", N2, "members"], {N1: True, N2: True})),
    "node unreachable": ("PREFLIGHT-001", _mutate(["preflight_views", "unreachable"], {"vmq-2": "timeout"})),
    "fewer nodes than replicas": ("PREFLIGHT-001", _mutate(["preflight_expected", "count"], 4)),
    "netsplit rising": ("PREFLIGHT-002", _mutate(["preflight_metrics", N2, "samples"],
                                                 [sample(1, 1), sample(2, 1)])),
    "netsplit unresolved": ("PREFLIGHT-002", _mutate(["preflight_metrics", N2, "samples"],
                                                     [sample(3, 2), sample(3, 2)])),
    "metrics unreadable": ("PREFLIGHT-002", _mutate(["preflight_metrics", N3], {"error": "HTTP 500"})),
    "pod not ready": ("PREFLIGHT-003", _mutate(["preflight_pods", 1, "ready"], False)),
    "rollout in progress": ("PREFLIGHT-003", _mutate(["preflight_workload", "update_revision"], "vmq-2")),
    "pod missing": ("PREFLIGHT-003", _mutate(["preflight_workload", "replicas"], 4)),
    "no PDB": ("PREFLIGHT-004", _mutate(["preflight_pdbs"], [])),
    "PDB allows 0": ("PREFLIGHT-004", _mutate(["preflight_pdbs", 0, "disruptions_allowed"], 0)),
    "negative offline count": ("PREFLIGHT-005", _mutate(["preflight_views", "nodes", N1, "num_offline"], -5)),
    "backlog too large": ("PREFLIGHT-006", _mutate(["preflight_metrics", N1, "samples"],
                                                   [sample(), sample(qin=20000, qout=100)])),
    "2.0 -> 2.1 metadata format": ("PREFLIGHT-007", _mutate(["preflight_versions", "current"], {N1: "2.0.1"})),
    "downgrade": ("PREFLIGHT-007", _mutate(["preflight_versions", "target"], "2.0.1")),
    "mixed running versions": ("PREFLIGHT-007", _mutate(["preflight_versions", "current"],
                                                        {N1: "2.1.1", N2: "2.1.2"})),
    "1.x -> 2.x": ("PREFLIGHT-007", _mutate(["preflight_versions", "current"], {N1: "1.13.0"})),
    "major skipped": ("PREFLIGHT-007", _mutate(["preflight_versions", "target"], "4.0.0")),
    "target not a version": ("PREFLIGHT-007", _mutate(["preflight_versions", "target"], "latest")),
}


@pytest.mark.parametrize("case", sorted(BLOCKERS))
def test_each_blocking_rule_blocks_with_its_own_id(case):
    check_id, mutate = BLOCKERS[case]
    facts = healthy()
    mutate(facts)
    report = run(facts)
    found = blocking(report, check_id)
    assert found, f"{case}: {check_id} did not block"
    others = {r.check for r in report.findings_at_or_above("error")} - {check_id}
    # unreadable metrics block both metric rules; otherwise a fault must not spill into other rules
    assert others == ({"PREFLIGHT-006"} if case == "metrics unreadable" else set()), others
    assert all(r.message and r.remedy for r in found)


def test_the_metadata_format_block_names_the_reason_and_can_be_acknowledged():
    facts = healthy()
    facts["preflight_versions"] = {"current": {N1: "2.0.1"}, "target": "2.1.2"}
    (r,) = blocking(run(facts), "PREFLIGHT-007")
    assert "on-disk format" in r.message and "2.0.1 -> 2.1.2" in r.message
    policy = Policy.parse({"checks": {"PREFLIGHT-007": {"options": {"allow_metadata_migration": True}}}}, "t")
    report = run(facts, policy)
    assert blocking(report, "PREFLIGHT-007") == []
    (w,) = [r for r in report.results if r.check == "PREFLIGHT-007"]
    assert w.status is Status.WARN and "on-disk format" in w.message


def test_pdb_allowing_two_disruptions_is_a_warning_not_a_block():
    facts = healthy()
    facts["preflight_pdbs"][0]["disruptions_allowed"] = 2
    report = run(facts)
    assert blocking(report, "PREFLIGHT-004") == []
    assert [r.status for r in report.results if r.check == "PREFLIGHT-004"] == [Status.WARN]


def test_backlog_threshold_is_a_policy_option():
    facts = healthy()  # 6 queued messages per node
    policy = Policy.parse({"checks": {"PREFLIGHT-006": {"options": {"max_offline_messages": 5}}}}, "t")
    assert len(blocking(run(facts, policy), "PREFLIGHT-006")) == 3
    assert blocking(run(facts), "PREFLIGHT-006") == []


def test_no_target_version_skips_the_version_rule_and_single_sample_warns():
    facts = healthy()
    facts["preflight_versions"]["target"] = None
    facts["preflight_metrics"][N1]["samples"] = [sample()]
    report = run(facts)
    assert [r.status for r in report.results if r.check == "PREFLIGHT-007"] == [Status.SKIP]
    assert Status.WARN in [r.status for r in report.results if r.check == "PREFLIGHT-002"]


def test_kubernetes_facts_not_applicable_in_a_targets_run_are_skipped():
    facts = healthy()
    for k in ("preflight_pods", "preflight_workload", "preflight_pdbs"):
        facts[k] = NotApplicable("targets run")
    report = run(facts)
    assert {r.check for r in report.results if r.status is Status.SKIP} == {"PREFLIGHT-003", "PREFLIGHT-004"}
    assert report.findings_at_or_above("error") == []


def test_same_version_and_patch_upgrades_pass():
    for target in ("2.1.1", "2.1.9", "2.2.0"):
        facts = healthy()
        facts["preflight_versions"]["target"] = target
        assert blocking(run(facts), "PREFLIGHT-007") == [], target


def test_explain_is_available_for_every_rule():
    assert "netsplit" in get("PREFLIGHT-002").doc
