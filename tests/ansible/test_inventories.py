"""The cluster inventories' values are valid for the chart and pass the static validators: each is run
as an offline plan (-e vernemq_mode=plan), so no cluster is needed."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from .common import ROOT, run_playbook

INVENTORIES = ["aks", "generic", "kind"]


@pytest.fixture(scope="module")
def plans():
    def one(inv):
        return run_playbook("-i", f"inventories/{inv}", "site.yml", "-e", "vernemq_mode=plan",
                            "-e", f"vernemq_env=pytest-plan-{inv}")
    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(INVENTORIES, pool.map(one, INVENTORIES)))


@pytest.mark.parametrize("inventory", INVENTORIES)
def test_cluster_inventory_renders_and_passes_the_plan(inventory, plans):
    res = plans[inventory]
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    report = json.loads((ROOT / "artifacts" / f"pytest-plan-{inventory}" / "plan.json").read_text())
    assert report["summary"]["failed"] is False and report["results"]
    manifests = (ROOT / "build" / f"pytest-plan-{inventory}" / "manifests.yaml").read_text()
    assert "kind: StatefulSet" in manifests and "kind: Secret\n" not in manifests
    if inventory == "aks":
        assert "externalTrafficPolicy: Local" in manifests and "azure-load-balancer" in manifests
    if inventory == "generic":
        assert "metallb.universe.tf/address-pool" in manifests and "kind: Ingress" in manifests
