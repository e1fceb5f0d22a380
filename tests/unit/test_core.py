"""The validator core: runner semantics, policy, renderers, redaction, exit codes, CLI errors."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from validators.cli import main
from validators.core import redact
from validators.core.errors import InputError
from validators.core.model import (FAIL_ON, CheckSpec, Facts, NotApplicable, Severity, Status, Unavailable,
                                   failed, passed, warned)
from validators.core.policy import Policy
from validators.core.registry import catalog
from validators.core.runner import run_checks
from validators.report import render


def spec(fn, id="TEST-001", severity="error", needs=("things",), defaults=None):
    return CheckSpec(id=id, title="a test check", severity=Severity(severity), category="test",
                     remedy="do the fix", needs=tuple(needs), fn=fn, defaults=defaults or {})


def _pass_fail(facts, conf):
    for name, good in facts["things"].items():
        yield passed(name, "fine") if good else failed(name, "broken", value=good)


def test_runner_turns_findings_into_results_with_catalog_metadata():
    report = run_checks("t", [spec(_pass_fail)], Facts({"things": {"a": True, "b": False}}))
    by_subject = {r.subject: r for r in report.results}
    assert by_subject["a"].status is Status.PASS
    b = by_subject["b"]
    assert (b.status, b.check, b.severity, b.remedy, dict(b.evidence)) == (
        Status.FAIL, "TEST-001", Severity.ERROR, "do the fix", {"value": False})
    assert report.exit_code("error") == 1


def test_unavailable_fact_gives_unknown_with_reason_and_check_is_not_called():
    called = []
    report = run_checks("t", [spec(lambda f, c: called.append(1) or [])],
                        Facts({"things": Unavailable("403 Forbidden to list services")}))
    (r,) = report.results
    assert r.status is Status.UNKNOWN and "403" in r.message and not called
    assert report.exit_code("error") == 1, "an unknown error-level check must not pass silently"


def test_missing_fact_is_unknown_and_not_applicable_is_skip():
    r1 = run_checks("t", [spec(_pass_fail)], Facts({})).results[0]
    r2 = run_checks("t", [spec(_pass_fail)], Facts({"things": NotApplicable("offline plan")})).results[0]
    assert r1.status is Status.UNKNOWN and "things" in r1.message
    assert r2.status is Status.SKIP and r2.message == "offline plan"


def test_a_crashing_check_reports_unknown_and_others_still_run():
    def boom(facts, conf):
        raise KeyError("spec")
    report = run_checks("t", [spec(boom), spec(_pass_fail, id="TEST-002")], Facts({"things": {"a": True}}))
    assert [r.status for r in report.results] == [Status.UNKNOWN, Status.PASS]
    assert "KeyError" in report.results[0].message


def test_check_with_nothing_to_check_is_skip_not_pass():
    (r,) = run_checks("t", [spec(lambda f, c: [])], Facts({"things": {}})).results
    assert r.status is Status.SKIP


def test_warn_of_error_check_is_warning_and_fail_on_threshold():
    report = run_checks("t", [spec(lambda f, c: [warned("x", "soft")])], Facts({"things": 1}))
    assert report.results[0].severity is Severity.WARNING
    assert report.exit_code("error") == 0
    assert report.exit_code("warning") == 1
    assert report.exit_code("never") == 0


def test_fail_on_critical_counts_only_critical_findings():
    checks = [spec(_pass_fail), spec(_pass_fail, id="TEST-002", severity="critical")]
    errors_only = run_checks("t", checks[:1], Facts({"things": {"bad": False}}))
    assert errors_only.exit_code("error") == 1 and errors_only.exit_code("critical") == 0
    assert errors_only.to_dict("critical")["summary"]["failed"] is False
    both = run_checks("t", checks, Facts({"things": {"bad": False}}))
    assert [r.check for r in both.findings_at_or_above("critical")] == ["TEST-002"]
    assert both.exit_code("critical") == 1 and both.to_dict("critical")["summary"]["failed"] is True


def test_fail_on_thresholds_are_one_list_for_every_report_command():
    """--fail-on of every report command offers FAIL_ON itself (not a copy): every severity, worst first,
    then never; the Ansible module checks its fail_on against the same object."""
    from validators.cli import build_parser
    from validators.commands.base import ReportCommand

    assert FAIL_ON == tuple(s.value for s in sorted(Severity, key=lambda s: s.rank, reverse=True)) + ("never",)
    parser, commands = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    reports = [name for name, cmd in commands.items() if isinstance(cmd, ReportCommand)]
    assert {"plan", "cluster", "distribution", "clients", "preflight"} <= set(reports)
    for name in reports:
        (action,) = [a for a in subparsers[name]._actions if "--fail-on" in a.option_strings]
        assert action.choices is FAIL_ON and action.default == "error", name


def test_json_report_shape():
    report = run_checks("t", [spec(_pass_fail)], Facts({"things": {"b": False}}))
    doc = json.loads(render(report, "json"))
    assert set(doc["results"][0]) >= {"check", "status", "severity", "subject", "message", "remedy", "evidence"}
    assert doc["summary"]["by_status"]["fail"] == 1 and doc["summary"]["failed"] is True


def test_junit_marks_failures_errors_and_skips():
    specs = [spec(_pass_fail), spec(_pass_fail, id="TEST-002"), spec(_pass_fail, id="TEST-003", needs=("other",))]
    facts = Facts({"things": {"ok": True, "bad": False}, "other": Unavailable("timeout")})
    root = ET.fromstring(render(run_checks("t", specs, facts), "junit"))
    suite = root.find("testsuite")
    assert suite.get("failures") == "2" and suite.get("errors") == "1" and suite.get("tests") == "5"


def test_secrets_never_reach_any_renderer():
    redact.register("s3cr3t-cookie-value")
    try:
        report = run_checks("t", [spec(lambda f, c: [failed("n", "cookie s3cr3t-cookie-value rejected",
                                                            leaked="s3cr3t-cookie-value")])],
                            Facts({"things": 1}))
        for fmt in ("text", "json", "junit"):
            out = render(report, fmt)
            assert "s3cr3t-cookie-value" not in out and redact.MASK in out
    finally:
        redact.clear()


def test_policy_rejects_unknown_ids_keys_and_bad_severity(tmp_path):
    some_id = next(iter(catalog()), None)
    cases = [
        ({"checks": {"NOPE-999": {}}}, "NOPE-999"),
        ({"rules": {}}, "one key"),
    ]
    if some_id:
        cases += [({"checks": {some_id: {"level": "x"}}}, "level"),
                  ({"checks": {some_id: {"severity": "fatal"}}}, "severity")]
    for raw, needle in cases:
        with pytest.raises(InputError) as exc:
            Policy.parse(raw, "p.yaml")
        assert needle in str(exc.value)


def test_policy_overrides_severity_and_disables(tmp_path):
    f = tmp_path / "p.yaml"
    s = spec(_pass_fail)
    pol = Policy({"TEST-001": {"severity": "info"}, "TEST-002": {"enabled": False}})
    assert pol.severity(s) is Severity.INFO and not pol.enabled("TEST-002") and pol.enabled("TEST-001")
    f.write_text("checks: [")
    with pytest.raises(InputError, match="--policy"):
        Policy.load(str(f))


def test_catalog_entries_are_complete():
    for cid, c in catalog().items():
        assert c.title and c.remedy and c.category, cid
        assert c.doc, f"{cid} needs a docstring: it is what `vmq-validate explain {cid}` prints"


def test_cli_usage_error_exits_2(capsys):
    assert main(["no-such-command"]) == 2  # returned (not raised), like every other exit code
    assert "invalid choice" in capsys.readouterr().err


def test_cli_explain_unknown_id_is_a_clear_error(capsys):
    assert main(["explain", "NOPE-001"]) == 2
    assert "no check with ID" in capsys.readouterr().err


def test_critical_is_above_error_and_its_soft_verdict_is_a_warning():
    def fail_and_warn(facts, conf):
        yield failed("a", "taken over")
        yield warned("b", "maybe")
    report = run_checks("t", [spec(fail_and_warn, severity="critical")], Facts({"things": {}}))
    sev = {r.subject: r.severity for r in report.results}
    assert sev == {"a": Severity.CRITICAL, "b": Severity.WARNING}
    assert Severity.CRITICAL.rank > Severity.ERROR.rank
    assert [r.subject for r in report.findings_at_or_above("critical")] == ["a"]
    assert report.exit_code("error") == 1 and report.summary()["findings_by_severity"]["critical"] == 1
    assert Policy({"TEST-001": {"severity": "critical"}}).severity(spec(fail_and_warn)) is Severity.CRITICAL
