"""`ansible-playbook site.yml --check` on a fresh environment: the plan still runs (on the render held in
memory), nothing is written, and the run reports what would change."""

from __future__ import annotations

import re
import shutil

from .common import ROOT, run_playbook


def test_check_mode_runs_the_plan_and_writes_nothing():
    env = "pytest-check"
    for d in ("build", "artifacts"):
        shutil.rmtree(ROOT / d / env, ignore_errors=True)
    res = run_playbook("site.yml", "--check", "-e", f"vernemq_env={env}")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    assert re.search(r"plan: \{'+pass'+: [1-9]", out), out[-4000:]
    changed = int(re.search(r"localhost\s*:\s*ok=\d+\s+changed=(\d+)", out).group(1))
    assert changed > 0
    assert not (ROOT / "build" / env).exists() and not (ROOT / "artifacts" / env).exists()
