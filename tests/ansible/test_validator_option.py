"""`vernemq_validator_enabled`: the deploy role turns it into the chart's validator.enabled, the rendered
release then holds the validator Deployment, and the site summary says where its metrics are."""

from __future__ import annotations

import secrets
import shutil

import yaml

from .common import ROOT, run_playbook


def test_site_with_the_validator_enabled():
    env = f"watch-{secrets.token_hex(3)}"
    try:
        res = run_playbook("-i", "inventories/local", "site.yml", "-e", "vernemq_validator_enabled=true",
                           "-e", f"vernemq_env={env}")
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
        values = yaml.safe_load((ROOT / "build" / env / "values.yaml").read_text())
        assert values["validator"]["enabled"] is True
        kinds = {(d["kind"], d["metadata"]["name"]) for d in
                 yaml.safe_load_all((ROOT / "build" / env / "manifests.yaml").read_text()) if d}
        assert ("Deployment", "vernemq-validator") in kinds and ("Role", "vernemq-validator") in kinds
        assert "metrics at http://vernemq-validator.vernemq.svc:9910/metrics" in " ".join(res.stdout.split())
        # a bad value is refused by the argument spec before anything is rendered
        bad = run_playbook("-i", "inventories/local", "playbooks/deploy.yml", "-e", "vernemq_validator_enabled=maybe",
                           "-e", f"vernemq_env={env}-bad")
        assert bad.returncode != 0 and "vernemq_validator_enabled" in bad.stdout
        assert not (ROOT / "build" / f"{env}-bad").exists()
    finally:
        for d in ("build", "artifacts"):
            for e in (env, f"{env}-bad"):
                shutil.rmtree(ROOT / d / e, ignore_errors=True)


def test_off_by_default_and_managed_by_the_role():
    defaults = yaml.safe_load((ROOT / "roles" / "vernemq" / "defaults" / "main.yml").read_text())
    assert defaults["vernemq_validator_enabled"] is False
    managed = yaml.safe_load((ROOT / "roles" / "vernemq_deploy" / "vars" / "main.yml").read_text())
    assert "vernemq_validator_enabled" in managed["_vernemq_deploy_managed_values"]["validator"]["enabled"]
