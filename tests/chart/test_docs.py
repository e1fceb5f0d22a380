"""README values table, values.schema.json and the `## @param` comments stay in sync with values.yaml."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest
import yaml

from .conftest import CHART


def _load(name):
    spec = importlib.util.spec_from_file_location(name.replace("-", "_"), CHART / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


table = _load("values-table")
VALUES_TEXT = (CHART / "values.yaml").read_text()
VALUES = yaml.safe_load(VALUES_TEXT)


def test_readme_values_table_in_sync():
    proc = subprocess.run([sys.executable, str(CHART / "scripts" / "values-table.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_readme_check_detects_drift(tmp_path):
    """The sync check fails when a default changes without regenerating README.md."""
    (tmp_path / "values.yaml").write_text(VALUES_TEXT.replace("replicaCount: 3", "replicaCount: 5"))
    (tmp_path / "README.md").write_text((CHART / "README.md").read_text())
    assert table.main(["--check", "--chart", str(tmp_path)]) == 1
    assert table.main(["--chart", str(tmp_path)]) == 0
    assert "| `replicaCount` |" in (tmp_path / "README.md").read_text()
    assert "`5`" in (tmp_path / "README.md").read_text().split("| `replicaCount` |")[1].splitlines()[0]


def test_every_value_is_documented():
    documented = {p for _, p, _ in table.parse_params(VALUES_TEXT)}
    leaves = set(table.leaf_paths(VALUES))
    # a documented map (e.g. resources) covers its children
    undocumented = {p for p in leaves if not any(p == d or p.startswith(d + ".") for d in documented)}
    assert not undocumented, f"values without a `## @param` line: {sorted(undocumented)}"
    unknown = [p for p in documented if _missing(p)]
    assert not unknown, f"`## @param` lines for values that do not exist: {unknown}"


def _missing(path):
    try:
        table.lookup(VALUES, path)
        return False
    except KeyError:
        return True


def test_schema_in_sync_and_covers_every_value():
    proc = subprocess.run([sys.executable, str(CHART / "scripts" / "values-schema.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    schema = json.loads((CHART / "values.schema.json").read_text())

    def walk(values, node, path=""):
        for k, v in values.items():
            p = f"{path}{k}"
            assert k in node.get("properties", {}), f"{p} is not in values.schema.json"
            sub = node["properties"][k]
            if sub.get("description"):
                continue  # documented as a whole (a leaf, or a map such as resources)
            assert isinstance(v, dict) and sub.get("properties"), f"{p} has no description in the schema"
            walk(v, sub, p + ".")
    walk(VALUES, schema)
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("path,enum", [
    ("service.type", ["ClusterIP", "LoadBalancer", "NodePort"]),
    ("service.externalTrafficPolicy", ["Local", "Cluster"]),
    ("readinessProbe.mode", ["joined", "listeners", "fullCluster"]),
    ("statefulset.podManagementPolicy", ["Parallel", "OrderedReady"]),
    ("image.pullPolicy", ["IfNotPresent", "Always", "Never"]),
])
def test_schema_enums(path, enum):
    node = json.loads((CHART / "values.schema.json").read_text())
    for part in path.split("."):
        node = node["properties"][part]
    assert node["enum"] == enum


def test_notes_explain_validators(renderer):
    from .conftest import NAMESPACE, RELEASE
    proc = subprocess.run([renderer.bins["helm4"], "install", RELEASE, str(CHART), "--dry-run=client",
                           "--namespace", NAMESPACE], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    notes = proc.stdout.split("NOTES:", 1)[1]
    assert "vmq-validate" in notes
    assert f"--release {RELEASE}" in notes
    assert "vernemq.acceptEula=true" in notes
    assert f"helm test {RELEASE}" in notes
    # every vmq-validate command NOTES mentions exists in the CLI
    import re
    from validators.cli import build_parser
    _parser, commands = build_parser()
    mentioned = set(re.findall(r"vmq-validate ([a-z-]+)", notes))
    assert {"plan", "cluster", "distribution"} <= mentioned
    assert mentioned <= set(commands), mentioned - set(commands)
