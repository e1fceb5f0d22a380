"""The vmq_validate module itself: structured results, check mode, reports written atomically and only
on change, secrets masked, errors as clear failures. Runs the module file the way Ansible does (a JSON
args file), on the static `plan` command over a rendered chart and on `preflight` over a targets file."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from .common import ROOT

MODULE = ROOT / "roles" / "vernemq_validate" / "library" / "vmq_validate.py"


def run_module(tmp_path, check_mode=False, **args):
    f = tmp_path / "args.json"
    f.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check_mode}}))
    res = subprocess.run([sys.executable, str(MODULE), str(f)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    return json.loads(res.stdout)


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
