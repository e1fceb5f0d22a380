"""The distribution validator against a lab of real Erlang nodes: healthy, then each fault knob.

One 3-node lab for the module; each test applies one fault, runs `vmq-validate distribution`, asserts
exactly the expected findings (check, status, subject) and reverts the fault.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest

from tests.lab import Lab
from tests.lab.fixtures import require_lab
from validators.cli import execute

pytestmark = pytest.mark.lab
TIMEOUT = "1.5"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require_lab()
    with Lab(n=3) as lab:
        yield lab


@pytest.fixture(scope="module")
def targets(lab, tmp_path_factory):
    d = tmp_path_factory.mktemp("targets")
    return {t: lab.write_targets(d / f"{t}.yaml", transport=t) for t in ("netns", "netns-shell", "direct")}


REJECTED = re.compile(r"\*\* Connection attempt from node '(vmq_validate_[^']+)' rejected\. Invalid challenge reply")


def beam_log(lab, i) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(lab.dir.glob(f"beam-n{i}.log")))


def validate(path, *extra):
    return execute(["distribution", "--targets", str(path), "--timeout", TIMEOUT, *extra])


def findings(report) -> set[tuple[str, str, str]]:
    return {(r.check, r.status.value, r.subject) for r in report.results if r.is_finding()}


def by(report, check, subject):
    (r,) = [r for r in report.results if r.check == check and r.subject == subject]
    return r


def pairs(lab, ps):
    return {f"{lab.nodes[a].name} -> {lab.nodes[b].name}" for a, b in ps}


@pytest.mark.parametrize("transport", ["netns", "netns-shell"])
def test_healthy_lab_every_check_passes_pod_to_pod(lab, targets, transport):
    report = validate(targets[transport])
    assert findings(report) == set()
    statuses = {r.status.value for r in report.results}
    assert statuses == {"pass"}
    # 6 ordered pairs x 4 pairwise checks (001, 004, 005, 006) + 3 nodes x 4 per-node checks (002, 003, 007, 008)
    assert len(report.results) == 6 * 4 + 3 * 4
    assert {r.check for r in report.results} == {f"DIST-00{i}" for i in range(1, 9)}
    # the lab's nodes run on the lab's cookie: each refused `vmq`, tried once per node, by the next node
    for i in range(3):
        assert by(report, "DIST-008", lab.nodes[i].name).evidence["refused_by"] == [lab.nodes[(i + 1) % 3].name]
    seen = [len(REJECTED.findall(beam_log(lab, i))) for i in range(3)]
    validate(targets[transport])
    # one more run: each node logged exactly one more refused attempt (not one per peer)
    more = lambda: [len(REJECTED.findall(beam_log(lab, i))) - seen[i] for i in range(3)]  # noqa: E731
    deadline = time.monotonic() + 5
    while min(more()) < 1 and time.monotonic() < deadline:  # the node's logger writes asynchronously
        time.sleep(0.1)
    time.sleep(0.3)
    assert more() == [1, 1, 1]
    assert by(report, "DIST-006", f"{lab.nodes[0].name} -> {lab.nodes[2].name}").evidence["peer_name"] == \
        lab.nodes[2].name


def test_healthy_lab_direct_transport_from_the_validator(lab, targets):
    report = validate(targets["direct"])
    assert findings(report) == set()
    subjects = {r.subject for r in report.results if r.check == "DIST-006"}
    assert subjects == {f"validator -> {n.name}" for n in lab.nodes}


@pytest.mark.parametrize("transport", ["netns", "netns-shell"])
@pytest.mark.parametrize("mode", ["drop", "reject"])
@pytest.mark.parametrize("port,check", [(4369, "DIST-001"), (9100, "DIST-004"), (44053, "DIST-005")])
def test_one_blocked_port_gives_exactly_one_finding_for_that_pair(lab, targets, transport, mode, port, check):
    with lab.block(0, 1, port, mode=mode):
        report = validate(targets[transport])
    subject = f"{lab.nodes[0].name} -> {lab.nodes[1].name}"
    assert findings(report) == {(check, "fail", subject)}
    ev = by(report, check, subject).evidence
    assert ev["error"] == ("timeout" if mode == "drop" else "refused")
    assert ev["port"] == port
    # the reverse direction is untouched
    assert by(report, check, f"{lab.nodes[1].name} -> {lab.nodes[0].name}").status.value == "pass"


@pytest.mark.parametrize("transport", ["netns", "netns-shell"])
def test_wrong_cookie_is_reported_as_cookie_not_as_unreachable(lab, targets, transport):
    with lab.wrong_cookie(1):
        report = validate(targets[transport])
    assert findings(report) == (
        {("DIST-006", "fail", s) for s in pairs(lab, [(0, 1), (2, 1)])}
        | {("DIST-007", "fail", s) for s in pairs(lab, [(0, 1), (2, 1), (1, 0), (1, 2)])})
    r = by(report, "DIST-006", f"{lab.nodes[0].name} -> {lab.nodes[1].name}")
    assert r.evidence["outcome"] == "cookie_rejected" and r.evidence["connected"] is True
    assert "cookie" in r.message and "unreachable" not in r.message
    assert by(report, "DIST-004", f"{lab.nodes[0].name} -> {lab.nodes[1].name}").status.value == "pass"


def test_dist_port_outside_range(lab, targets):
    with lab.dist_port(1, 9200):
        report = validate(targets["netns"])
    assert findings(report) == {("DIST-003", "fail", lab.nodes[1].name)}
    ev = by(report, "DIST-003", lab.nodes[1].name).evidence
    assert ev["ports"] == [9200] and ev["range"] == [9100, 9109]


@pytest.mark.parametrize("transport", ["netns", "netns-shell"])
def test_killed_node(lab, targets, transport):
    with lab.killed(2):
        report = validate(targets[transport])
    dead = lab.nodes[2].name
    assert findings(report) == (
        {("DIST-002", "fail", dead)}
        | {("DIST-005", "fail", s) for s in pairs(lab, [(0, 2), (1, 2)])}
        | {("DIST-007", "fail", s) for s in pairs(lab, [(0, 2), (1, 2)])}
        | {("DIST-007", "unknown", dead)})
    assert by(report, "DIST-002", dead).evidence["names"] == []


def test_epmd_down(lab, targets):
    with lab.epmd_down(1):
        report = validate(targets["netns"])
    assert findings(report) == {("DIST-001", "fail", s) for s in pairs(lab, [(0, 1), (2, 1)])}
    assert by(report, "DIST-002", lab.nodes[1].name).status.value == "skip"


def test_partition_names_who_sees_whom(lab, targets):
    with lab.partition([0], [1, 2]):
        report = validate(targets["netns"])
    cut = pairs(lab, [(0, 1), (0, 2), (1, 0), (2, 0)])
    assert findings(report) == ({("DIST-001", "fail", s) for s in cut} | {("DIST-005", "fail", s) for s in cut}
                                | {("DIST-007", "fail", s) for s in cut})
    r = by(report, "DIST-007", f"{lab.nodes[1].name} -> {lab.nodes[0].name}")
    assert r.evidence["not_running"] == [lab.nodes[0].name]
    assert r.evidence["running"] == sorted([lab.nodes[1].name, lab.nodes[2].name])


def test_cli_output_and_reports_never_contain_the_secrets(lab, targets, tmp_path):
    with lab.wrong_cookie(1):
        cp = subprocess.run([sys.executable, "-m", "validators", "distribution", "--targets", str(targets["netns"]),
                             "--timeout", TIMEOUT, "--report-json", str(tmp_path / "r.json"),
                             "--report-junit", str(tmp_path / "r.xml"), "--format", "json"],
                            capture_output=True, text=True, timeout=120)
    assert cp.returncode == 1, cp.stderr
    doc = json.loads(cp.stdout)
    assert doc["summary"]["by_status"]["fail"] == 6
    blob = cp.stdout + cp.stderr + (tmp_path / "r.json").read_text() + (tmp_path / "r.xml").read_text()
    assert lab.cookie not in blob and lab.api_key not in blob


def test_missing_api_key_makes_views_unknown_not_a_netsplit(lab, tmp_path):
    t = lab.targets("netns")
    del t["cluster"]["api_key_file"]
    import yaml
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump(t))
    report = validate(p)
    assert findings(report) == {("DIST-007", "unknown", n.name) for n in lab.nodes}
    assert "401" in by(report, "DIST-007", lab.nodes[0].name).message
