"""Running the toolkit's playbooks the way `make site` does (venv python, the repo's ansible.cfg)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """A tool from the running venv, else from the toolkit's .tools/bin, else PATH."""
    for candidate in (BIN / name, ROOT / ".tools" / "bin" / name):
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (run scripts/bootstrap.sh)")
    return found


def ansible_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(BIN), str(ROOT / ".tools" / "bin"), env.get("PATH", "")])
    env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["PY_COLORS"] = "0"
    env.pop("ANSIBLE_STDOUT_CALLBACK", None)
    env.update(extra)
    return env


def run_playbook(*args: str, timeout: int = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([tool("ansible-playbook"), *args], cwd=ROOT, env=ansible_env(**env), text=True,
                          capture_output=True, timeout=timeout)


PLAYBOOKS = ["site.yml", "playbooks/deploy.yml", "playbooks/validate.yml", "playbooks/preflight.yml",
             "playbooks/upgrade.yml"]
INVENTORIES = ["inventories/local", "inventories/aks", "inventories/generic", "inventories/kind"]
