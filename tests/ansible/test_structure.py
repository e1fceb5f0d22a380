"""Static guarantees of the Ansible content: syntax of every playbook, argument specs in step with the
defaults, FQCN modules only, and every entry point documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from .common import INVENTORIES, PLAYBOOKS, ROOT, run_playbook

ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks").is_dir())


def test_the_roles_the_issue_names_exist():
    assert {"vernemq_prereqs", "vernemq_deploy", "vernemq_validate", "vernemq_preflight"} <= set(ROLES)


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_syntax_check(playbook):
    for inventory in ("inventories/local", "inventories/aks"):
        res = run_playbook("--syntax-check", "-i", inventory, playbook, timeout=120)
        assert res.returncode == 0, res.stdout + res.stderr


def _specs(role: str) -> dict:
    return yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_match_defaults(role):
    """Every default is specified with the same default value, and every option with a default is in defaults."""
    defaults = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text()) or {}
    options = _specs(role)["main"]["options"]
    assert set(defaults) == {k for k, v in options.items() if "default" in v}, role
    for key, value in defaults.items():
        assert options[key]["default"] == value, f"{role}: {key} default differs between defaults and spec"
        assert options[key].get("description"), f"{role}: {key} has no description"
        assert options[key].get("type"), f"{role}: {key} has no type"


@pytest.mark.parametrize("role", ROLES)
def test_every_tasks_entry_point_has_a_spec(role):
    specs = _specs(role)
    entry_points = {p.stem for p in (ROOT / "roles" / role / "tasks").glob("*.yml")}
    internal = {"secret", "check_plan", "helm", "upgrade_step"}  # included by other tasks files only
    assert entry_points - internal <= set(specs), f"{role}: entry points without a spec: {entry_points - set(specs)}"
    for name, spec in specs.items():
        assert spec.get("short_description") and "options" in spec, f"{role}:{name}"


def _tasks(node):
    if isinstance(node, list):
        for item in node:
            yield from _tasks(item)
    elif isinstance(node, dict):
        if any(k in node for k in ("block", "rescue", "always")):
            for k in ("block", "rescue", "always"):
                yield from _tasks(node.get(k) or [])
        elif "name" in node or "ansible.builtin.import_playbook" in node:
            yield node
        for k in ("tasks", "pre_tasks", "post_tasks", "handlers"):
            if k in node:
                yield from _tasks(node[k])


PLAY_KEYS = {"hosts", "gather_facts", "roles", "tasks", "pre_tasks", "post_tasks", "handlers", "vars_files",
             "module_defaults", "collections", "serial", "strategy"}
TASK_KEYS = {"name", "when", "loop", "loop_control", "register", "vars", "tags", "no_log", "changed_when",
             "failed_when", "check_mode", "until", "retries", "delay", "notify", "become", "delegate_to",
             "run_once", "ignore_errors", "environment", "args", "async", "poll"}


def test_every_module_is_called_by_fqcn():
    files = [*ROOT.glob("roles/*/tasks/*.yml"), *ROOT.glob("playbooks/*.yml"), ROOT / "site.yml",
             *ROOT.glob("molecule/*/*.yml")]
    local_modules = {"vmq_validate"}  # the role library module
    checked = 0
    for f in files:
        if f.name == "molecule.yml":
            continue
        for task in _tasks(yaml.safe_load(f.read_text())):
            for key in set(task) - TASK_KEYS - PLAY_KEYS:
                assert "." in key or key in local_modules, f"{f.relative_to(ROOT)}: {key} is not an FQCN"
                checked += 1
    assert checked > 40, "the task walker found too few tasks"


@pytest.mark.parametrize("inventory", INVENTORIES)
def test_cluster_inventories_name_their_context_variable(inventory):
    doc = yaml.safe_load((ROOT / inventory / "group_vars" / "vernemq.yml").read_text())
    if doc["vernemq_mode"] == "cluster":
        assert "vernemq_kube_context" in doc, inventory
    else:
        assert doc["vernemq_mode"] == "plan"


def test_no_task_touching_a_secret_logs():
    text = (ROOT / "roles/vernemq_prereqs/tasks/secret.yml").read_text()
    tasks = yaml.safe_load(text)
    for t in tasks:
        if "kubernetes.core.k8s" in t or "kubernetes.core.k8s_info" in t:
            assert t.get("no_log") is True, t["name"]
    assert re.search(r"password', '/dev/null'", text), "the value is generated, never stored on the controller"
