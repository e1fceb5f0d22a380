"""The molecule scenarios, and the roles failing the play on live faults (through the real playbooks).

* plan        site.yml on the offline `local` inventory: converge -> idempotence (0 changed) -> verify
* bad_inputs  real playbooks on the cluster inventories refuse bad values before any cluster call
* validate    the validators through the vmq_validate module, direct mode, against the live labs
              (tests/lab: real Erlang nodes in network namespaces; tests/standin: VerneMQ stand-ins)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import yaml

from tests.lab import Lab
from tests.lab.fixtures import require_lab

from .common import ROOT, ansible_env, run_playbook, tool

pytestmark = pytest.mark.slow


def molecule(scenario: str, **env: str) -> subprocess.CompletedProcess:
    e = ansible_env(**env)
    e.pop("ANSIBLE_CONFIG")  # molecule writes its own configuration for the scenario
    return subprocess.run([tool("molecule"), "test", "-s", scenario], cwd=ROOT, env=e, text=True,
                          capture_output=True, timeout=600)


def _tail(res: subprocess.CompletedProcess) -> str:
    return (res.stdout + res.stderr)[-6000:]


def test_plan_scenario():
    res = molecule("plan")
    assert res.returncode == 0, _tail(res)
    out = res.stdout + res.stderr
    assert "idempotence" in out and "Executed: Successful" in out


def test_bad_inputs_scenario():
    res = molecule("bad_inputs")
    assert res.returncode == 0, _tail(res)


@pytest.fixture(scope="module")
def labs(tmp_path_factory):
    require_lab()
    if not shutil.which("mosquitto") and not os.path.exists("/usr/sbin/mosquitto"):
        pytest.fail("mosquitto is not installed (scripts/bootstrap.sh installs it)") if os.environ.get("CI") else \
            pytest.skip("mosquitto is not installed")
    from tests.standin.lab import StandinLab

    d = tmp_path_factory.mktemp("labs")
    with Lab(n=3) as lab, StandinLab(nodes=2) as standin:
        lab.wait_converged()
        yield lab, lab.write_targets(d / "lab.yaml", transport="direct"), standin, standin.write_targets(d / "standin.yaml")


@pytest.mark.lab
def test_validate_scenario_against_the_live_labs(labs):
    _lab, lab_targets, _standin, standin_targets = labs
    res = molecule("validate", VMQ_LAB_TARGETS=str(lab_targets), VMQ_STANDIN_TARGETS=str(standin_targets))
    assert res.returncode == 0, _tail(res)


def _validate(targets, commands, env_name, tmp_path, extra=None):
    extra_vars = {"vernemq_env": env_name, "vernemq_validate_targets": str(targets),
                  "vernemq_validate_commands": commands, **(extra or {})}
    f = tmp_path / "extra.json"
    f.write_text(json.dumps(extra_vars))
    return f, run_playbook("playbooks/validate.yml", "-e", f"@{f}")


@pytest.mark.lab
def test_validate_playbook_fails_on_a_killed_erlang_node(labs, tmp_path):
    lab, lab_targets, _s, _t = labs
    victim = lab.nodes[2].name
    with lab.killed(2):
        _f, res = _validate(lab_targets, ["distribution"], "pytest-live-dist", tmp_path,
                            {"vernemq_validate_extra_args": {"distribution": ["--transport", "direct"]}})
    out = " ".join((res.stdout + res.stderr).split())
    assert res.returncode != 0, out[-3000:]
    assert "distribution: DIST-" in out and victim in out, out[-3000:]
    report = json.loads((ROOT / "artifacts" / "pytest-live-dist" / "distribution.json").read_text())
    assert report["summary"]["failed"] is True
    assert lab.cookie not in json.dumps(report) and lab.cookie not in out


@pytest.mark.lab
def test_preflight_playbook_blocks_on_a_killed_standin_node(labs, tmp_path):
    _lab, _lt, standin, standin_targets = labs
    f = tmp_path / "extra.json"
    f.write_text(json.dumps({"vernemq_env": "pytest-live-preflight", "vernemq_preflight_targets": str(standin_targets),
                             "vernemq_preflight_interval": 0, "vernemq_preflight_disabled_checks": ["PREFLIGHT-006"]}))
    rendered = run_playbook("playbooks/deploy.yml", "-e", f"@{f}")  # plan mode: renders build/<env>/ only
    assert rendered.returncode == 0, (rendered.stdout + rendered.stderr)[-3000:]
    ok = run_playbook("playbooks/preflight.yml", "-e", f"@{f}")
    assert ok.returncode == 0, (ok.stdout + ok.stderr)[-3000:]
    # no target version given: the pre-flight takes the image tag of the rendered chart
    tag = yaml.safe_load((ROOT / "charts" / "vernemq" / "values.yaml").read_text())["image"]["tag"]
    report = json.loads((ROOT / "artifacts" / "pytest-live-preflight" / "preflight.json").read_text())
    assert report["meta"]["target_version"] == tag
    assert [r["status"] for r in report["results"] if r["check"] == "PREFLIGHT-007"] == ["pass"]
    standin.kill(1)
    res = run_playbook("playbooks/preflight.yml", "-e", f"@{f}")
    out = " ".join((res.stdout + res.stderr).split())
    assert res.returncode != 0
    assert "Upgrade blocked by the pre-flight" in out and "PREFLIGHT-001" in out, out[-3000:]
    assert standin.nodes[1].name in out
