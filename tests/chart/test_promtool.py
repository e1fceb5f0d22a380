"""The PrometheusRule of the 50-monitoring profile passes `promtool check rules` and its unit tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import FULLNAME, find

HERE = Path(__file__).resolve().parent / "promtool"
ALERTS = {"VerneMQNetsplit", "VerneMQClusterSmallerThanReplicas", "VerneMQListenerDown",
          "VerneMQNegativeOfflineSessions", "VerneMQSocketsFarAboveSessions"}


@pytest.fixture(scope="module")
def rules_dir(renderer, tmp_path_factory):
    rule = find(renderer.docs("50-monitoring"), "PrometheusRule", FULLNAME)
    out = tmp_path_factory.mktemp("promtool")
    (out / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False))
    shutil.copy(HERE / "vernemq-rules.test.yaml", out / "vernemq-rules.test.yaml")
    return out


def test_rules_cover_the_required_alerts(rules_dir):
    groups = yaml.safe_load((rules_dir / "rules.yaml").read_text())["groups"]
    assert {r["alert"] for g in groups for r in g["rules"]} == ALERTS


def test_promtool_check_rules(promtool, rules_dir):
    proc = subprocess.run([promtool, "check", "rules", str(rules_dir / "rules.yaml")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 5 rules found" in proc.stdout + proc.stderr


def test_promtool_unit_tests(promtool, rules_dir):
    proc = subprocess.run([promtool, "test", "rules", "vernemq-rules.test.yaml"], cwd=rules_dir,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr


def test_unit_tests_can_fail(promtool, rules_dir, tmp_path):
    """Break one rule threshold: the unit tests must notice."""
    groups = yaml.safe_load((rules_dir / "rules.yaml").read_text())["groups"]
    (rule,) = [r for r in groups[0]["rules"] if r["alert"] == "VerneMQNegativeOfflineSessions"]
    assert rule["expr"].rstrip().endswith("< 0")
    rule["expr"] = rule["expr"].rstrip()[:-1] + "-100"
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    shutil.copy(rules_dir / "vernemq-rules.test.yaml", tmp_path)
    proc = subprocess.run([promtool, "test", "rules", "vernemq-rules.test.yaml"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode != 0


def test_monitoring_objects(renderer, default_docs):
    docs = renderer.docs("50-monitoring")
    sm = find(docs, "ServiceMonitor", FULLNAME)
    assert sm["spec"]["endpoints"][0]["port"] == "http" and sm["spec"]["endpoints"][0]["path"] == "/metrics"
    assert sm["spec"]["selector"]["matchLabels"]["vernemq-toolkit/service"] == "headless"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    headless = find(docs, "Service", f"{FULLNAME}-headless")
    assert sm["spec"]["selector"]["matchLabels"].items() <= headless["metadata"]["labels"].items()
    cm = find(docs, "ConfigMap", f"{FULLNAME}-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    import json
    dash = json.loads(cm["data"]["vernemq.json"])
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p.get("targets", []))
    assert "vernemq_netsplit_detected" in exprs and "vernemq_queue_processes" in exprs
    # all off by default
    assert not [d for d in default_docs if d["kind"] in {"ServiceMonitor", "PrometheusRule", "ConfigMap"}]
