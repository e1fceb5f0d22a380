"""The vmq_validate module itself: structured results, check mode, reports written atomically and only
on change, secrets masked, errors as clear failures. Runs the module file the way Ansible does (a JSON
args file), on the static `plan` command over a rendered chart and on `preflight` over a targets file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from .common import ROOT

MODULE = ROOT / "roles" / "vernemq_validate" / "library" / "vmq_validate.py"


def run_module(tmp_path, check_mode=False, **args):
    f = tmp_path / "args.json"
    f.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check_mode}}))
    # PYTHONPATH: the module imports this checkout's validators, whichever copy the interpreter has installed
    res = subprocess.run([sys.executable, str(MODULE), str(f)], capture_output=True, text=True, timeout=120, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(res.stdout)


def test_project_dir_validators_come_before_an_importable_copy(tmp_path):
    """The roles pass their checkout as project_dir: its validators run even when the interpreter can import
    another copy (here this checkout, through PYTHONPATH), so roles and validators never come from two versions."""
    other = tmp_path / "other-checkout"
    shutil.copytree(ROOT / "validators", other / "validators", ignore=shutil.ignore_patterns("__pycache__"))
    model = other / "validators" / "core" / "model.py"
    text = model.read_text()
    assert "\nFAIL_ON = " in text
    model.write_text(text.replace("\nFAIL_ON = ", '\nFAIL_ON = ("error", "never")  # this copy\n_UNUSED = ', 1))
    args = ["--targets", str(_targets(tmp_path)), "--interval", "0"]
    res = run_module(tmp_path, command="preflight", args=args, fail_on="critical", project_dir=str(other))
    assert res["failed"] and res["msg"] == "fail_on: 'critical' is not a threshold. Fix: use one of error, never."
    res = run_module(tmp_path, command="preflight", args=args, fail_on="critical", fail_on_findings=False)
    assert not res.get("failed") and res["summary"]["fail_on"] == "critical"


@pytest.fixture(scope="module")
def manifests(tmp_path_factory):
    helm = ROOT / ".tools" / "bin" / "helm"
    if not helm.exists():
        pytest.skip("helm is not installed (scripts/bootstrap.sh)")
    out = subprocess.run([str(helm), "template", "vmq", str(ROOT / "charts" / "vernemq"), "-n", "mq",
                          "--set", "erlangCookie.existingSecret=c", "--set", "apiKey.existingSecret=k"],
                         capture_output=True, text=True, check=True).stdout
    p = tmp_path_factory.mktemp("render") / "manifests.yaml"
    p.write_text(out)
    return p


def test_plan_report_written_once_then_unchanged_and_check_mode_writes_nothing(tmp_path, manifests):
    args = dict(command="plan", args=["-f", str(manifests), "--namespace", "mq", "--release", "vmq"],
                report_json=str(tmp_path / "r" / "plan.json"), report_junit=str(tmp_path / "r" / "plan.xml"))
    dry = run_module(tmp_path, check_mode=True, **args)
    assert dry["changed"] is True and not (tmp_path / "r" / "plan.json").exists()
    first = run_module(tmp_path, **args)
    assert first["changed"] is True and not first.get("failed")
    assert first["report"]["command"] == "plan" and first["report"]["results"]
    assert json.loads((tmp_path / "r" / "plan.json").read_text()) == first["report"]
    assert (tmp_path / "r" / "plan.xml").read_text().startswith("<?xml")
    second = run_module(tmp_path, **args)
    assert second["changed"] is False and second["reports_written"] == []
    assert not list((tmp_path / "r").glob(".vmq-report-*")), "a temporary file was left behind"


def _targets(tmp_path, **cluster):
    t = tmp_path / "targets.yaml"
    t.write_text(yaml.safe_dump({"cluster": cluster, "nodes": [{"name": "VerneMQ@127.0.0.1", "host": "127.0.0.1",
                                                                 "http": "http://127.0.0.1:9"}]}))
    return t


def test_findings_fail_the_task_with_each_finding_listed(tmp_path):
    res = run_module(tmp_path, command="preflight", args=["--targets", str(_targets(tmp_path)), "--interval", "0"])
    assert res["failed"] is True
    assert "PREFLIGHT-001" in res["msg"] and "Remedy:" in res["msg"]
    assert res["findings"] and all(f["severity"] == "error" for f in res["findings"])
    relaxed = run_module(tmp_path, command="preflight", fail_on_findings=False,
                         args=["--targets", str(_targets(tmp_path)), "--interval", "0"])
    assert not relaxed.get("failed") and relaxed["summary"]["failed"] is True and relaxed["finding_lines"]


def test_secret_env_is_set_for_the_run_and_masked_everywhere(tmp_path):
    secret = "s3cr3t-api-key-value-0123"
    t = _targets(tmp_path, api_key_env="VMQ_TEST_KEY")
    res = run_module(tmp_path, command="preflight", args=["--targets", str(t), "--interval", "0"],
                     secret_env={"VMQ_TEST_KEY": secret}, report_json=str(tmp_path / "p.json"))
    assert res["failed"] is True  # nothing listens: the pre-flight blocks, but the key was accepted
    text = json.dumps(res) + (tmp_path / "p.json").read_text()
    assert secret not in text
    missing = run_module(tmp_path, command="preflight", args=["--targets", str(t), "--interval", "0"])
    assert missing["failed"] and "VMQ_TEST_KEY" in missing["msg"]


def test_bad_arguments_are_clear_failures(tmp_path):
    res = run_module(tmp_path, command="preflight", args=["--namespace", "mq", "--release", "r"])
    assert res["failed"] and "--context" in res["msg"]
    res = run_module(tmp_path, command="preflight", args=["--no-such-option"])
    assert res["failed"] and "usage error" in res["msg"] and "--no-such-option" in res["msg"]
    res = run_module(tmp_path, command="checks")
    assert res["failed"] and "not a report command" in res["msg"] and "plan" in res["msg"]


def test_fail_on_critical_passes_error_findings_and_fails_on_a_critical_one(tmp_path):
    """The same unreachable targets give PREFLIGHT error findings: fail_on critical lets them pass (the reports
    still hold them); a policy that makes PREFLIGHT-001 critical makes exactly that finding fail the task."""
    args = ["--targets", str(_targets(tmp_path)), "--interval", "0"]
    errors_only = run_module(tmp_path, command="preflight", args=args, fail_on="critical",
                             report_json=str(tmp_path / "e.json"), report_junit=str(tmp_path / "e.xml"))
    assert not errors_only.get("failed"), errors_only.get("msg")
    assert errors_only["findings"] == [] and errors_only["finding_lines"] == []
    summary = errors_only["summary"]
    assert summary["fail_on"] == "critical" and summary["failed"] is False
    assert summary["findings_by_severity"]["error"] > 0 and summary["findings_by_severity"]["critical"] == 0
    assert json.loads((tmp_path / "e.json").read_text())["summary"]["failed"] is False
    assert 'failures="0"' in (tmp_path / "e.xml").read_text()

    policy = tmp_path / "policy.yaml"
    policy.write_text("checks: {PREFLIGHT-001: {severity: critical}}\n")
    critical = run_module(tmp_path, command="preflight", args=args, fail_on="critical", policy=str(policy))
    assert critical["failed"] is True and critical["summary"]["failed"] is True
    assert {(f["check"], f["severity"]) for f in critical["findings"]} == {("PREFLIGHT-001", "critical")}
    assert "at or above critical" in critical["msg"] and "PREFLIGHT-001" in critical["msg"]
    assert "PREFLIGHT-002" not in critical["msg"], "an error finding was counted with fail_on critical"
    # the default threshold still fails on the error findings, and counts the critical one too
    default = run_module(tmp_path, command="preflight", args=args, policy=str(policy))
    assert default["failed"] is True
    assert {"critical", "error"} == {f["severity"] for f in default["findings"]}


def test_fail_on_is_the_clis_list_of_thresholds(tmp_path):
    """The module takes every --fail-on threshold of the CLI and refuses anything else with the list, and its
    documentation and the vernemq_validate role's argument spec list the same thresholds in the same order."""
    from validators.core.model import FAIL_ON, Severity

    assert set(FAIL_ON) == {s.value for s in Severity} | {"never"}
    doc = yaml.safe_load(MODULE.read_text().split('DOCUMENTATION = r"""', 1)[1].split('"""', 1)[0])
    assert doc["options"]["fail_on"]["choices"] == list(FAIL_ON)
    spec = yaml.safe_load((ROOT / "roles" / "vernemq_validate" / "meta" / "argument_specs.yml").read_text())
    assert spec["argument_specs"]["main"]["options"]["vernemq_validate_fail_on"]["choices"] == list(FAIL_ON)
    # vernemq_preflight offers the severities that can block an upgrade: none above the worst pre-flight check
    # (its own policy changes no severity, so `critical` would block nothing, like the `never` it leaves out)
    from validators.core.registry import catalog

    worst = max((c.severity for c in catalog().values() if c.id.startswith("PREFLIGHT-")), key=lambda s: s.rank)
    preflight = yaml.safe_load((ROOT / "roles" / "vernemq_preflight" / "meta" / "argument_specs.yml").read_text())
    assert preflight["argument_specs"]["main"]["options"]["vernemq_preflight_fail_on"]["choices"] == [
        s.value for s in Severity if s.rank <= worst.rank]
    args = ["--targets", str(_targets(tmp_path)), "--interval", "0"]
    for threshold in FAIL_ON:
        res = run_module(tmp_path, command="preflight", args=args, fail_on=threshold, fail_on_findings=False)
        assert not res.get("failed"), f"{threshold}: {res.get('msg')}"
        assert res["summary"]["fail_on"] == threshold
        assert res["summary"]["failed"] is (threshold in ("error", "warning", "info"))
    bad = run_module(tmp_path, command="preflight", args=args, fail_on="fatal")
    assert bad["failed"] and bad["msg"].startswith("fail_on: 'fatal' is not a threshold")
    assert ", ".join(FAIL_ON) in bad["msg"] and "report" not in bad
