"""DIST-008 on real Erlang nodes started the way the official image starts VerneMQ.

Each lab node runs `erl -args_file etc/vm.args` with the image's own vm.args (`-setcookie vmq`, the -name line
rewritten as the image's start script does), while the Secret's cookie sits in `distributed_cookie` of its
vernemq.conf and in ~/.erlang.cookie. Which cookie the node runs on is decided by Erlang itself, not by the lab.
The validator is given the Secret's cookie, as it would read it from the release's Secret. Both the in-process
probe (`netns`) and the pod script (`netns-shell`, the kube-exec bash script) are run.
"""

from __future__ import annotations

import re

import pytest

from tests.lab import Lab
from tests.lab.fixtures import require_lab
from validators.cli import execute
from validators.report import json_report, text

pytestmark = pytest.mark.lab
TRANSPORTS = ("netns", "netns-shell")
REJECTED = re.compile(r"\*\* Connection attempt from node '(vmq_validate_[^']+)' rejected\. Invalid challenge reply\. \*\*")


@pytest.fixture(scope="module")
def lab():
    require_lab()
    with Lab(n=2, image_cookie=True) as lab:
        yield lab


@pytest.fixture(scope="module")
def targets(lab, tmp_path_factory):
    d = tmp_path_factory.mktemp("targets")
    return {t: lab.write_targets(d / f"{t}.yaml", transport=t) for t in TRANSPORTS}


def validate(path):
    return execute(["distribution", "--targets", str(path), "--timeout", "1.5"])


def findings(report):
    return {(r.check, r.status.value, r.subject) for r in report.results if r.is_finding()}


def by(report, check, subject):
    (r,) = [r for r in report.results if r.check == check and r.subject == subject]
    return r


def beam_log(lab, i) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(lab.dir.glob(f"beam-n{i}.log")))


def test_image_started_nodes_run_on_vmq_and_dist_008_fails_naming_each_node(lab, targets):
    a, b = (n.name for n in lab.nodes)
    vm_args = (lab.nodes[0].home / "etc" / "vm.args").read_text()
    assert "-setcookie vmq" in vm_args and f"-name {a}" in vm_args
    assert f"distributed_cookie = {lab.cookie}" in (lab.nodes[0].home / "etc" / "vernemq.conf").read_text()
    for transport in TRANSPORTS:
        report = validate(targets[transport])
        assert findings(report) == {("DIST-006", "fail", f"{a} -> {b}"), ("DIST-006", "fail", f"{b} -> {a}"),
                                    ("DIST-008", "fail", a), ("DIST-008", "fail", b)}, transport
        r = by(report, "DIST-008", b)
        assert r.severity.value == "critical" and r.evidence["accepted_by"] == [a]
        assert r.evidence["peer_name"] == b and r.evidence["ping"] == "pong"
        assert "-setcookie" in r.remedy and "erlangCookie.existingSecret" in r.remedy
        d6 = by(report, "DIST-006", f"{a} -> {b}")
        assert d6.evidence["outcome"] == "cookie_rejected" and "well-known cookie 'vmq'" in d6.message
        assert by(report, "DIST-007", a).status.value == "pass"  # the nodes themselves form a cluster, on vmq
        out = text.render(report) + json_report.render(report)
        assert "'vmq'" in out and lab.cookie not in out and lab.api_key not in out
    # the probes with the Secret's cookie were refused the way the captured node refused a wrong cookie
    assert REJECTED.search(beam_log(lab, 1))


def test_with_the_secrets_cookie_in_vm_args_every_check_passes(lab, targets):
    a, b = (n.name for n in lab.nodes)
    with lab.vm_args_cookie_from_secret():
        assert f"-setcookie {lab.cookie}" in (lab.nodes[1].home / "etc" / "vm.args").read_text()
        seen = len(beam_log(lab, 1))
        reports = {t: validate(targets[t]) for t in TRANSPORTS}
        log = beam_log(lab, 1)[seen:]
    for transport, report in reports.items():
        assert findings(report) == set(), transport
        r = by(report, "DIST-008", b)
        assert r.status.value == "pass" and r.evidence["refused_by"] == [a] and r.evidence["ping"] == "pang"
        assert by(report, "DIST-006", f"{a} -> {b}").status.value == "pass"
    # node b logged our refused `vmq` attempts (one per transport), as the captured node logged its `pang`
    assert len(set(REJECTED.findall(log))) == 2, log
