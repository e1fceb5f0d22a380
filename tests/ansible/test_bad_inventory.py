"""Bad inventory values are refused before any cluster call, naming the variable.

Every case runs a real playbook against a cluster inventory whose kubeconfig points at a local fake
API server that records every request: a refused value must leave it with zero requests. A good
inventory, as a control, does reach it (so the tripwire works).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.fakekube import FakeKube

from .common import run_playbook

CASES = {
    # name: (playbook, extra vars, text the failure must contain)
    "implicit context": ("site.yml", {"vernemq_kube_context": ""}, "vernemq_kube_context is empty"),
    "unknown context": ("site.yml", {"vernemq_kube_context": "prod-by-mistake"},
                        "vernemq_kube_context prod-by-mistake is not a context"),
    "mode not a choice": ("site.yml", {"vernemq_mode": "production"}, "vernemq_mode"),
    "namespace not DNS-1123": ("playbooks/deploy.yml", {"vernemq_namespace": "VerneMQ_Prod"}, "vernemq_namespace"),
    "values not a mapping": ("playbooks/deploy.yml", {"vernemq_values": "replicaCount=3"}, "vernemq_values"),
    "values name a managed Secret": ("playbooks/deploy.yml",
                                     {"vernemq_values": {"erlangCookie": {"existingSecret": "mine"}}},
                                     "vernemq_values sets erlangCookie.existingSecret"),
    "missing profile": ("playbooks/deploy.yml", {"vernemq_profile": "99-nope"}, "vernemq_profile"),
    "EULA not accepted": ("playbooks/deploy.yml", {"vernemq_values": {"vernemq": {"acceptEula": False}}},
                          "vernemq_values.vernemq.acceptEula is not true"),
    "helm timeout": ("playbooks/deploy.yml", {"vernemq_deploy_helm_timeout": "soon"}, "vernemq_deploy_helm_timeout"),
    "pod security level": ("playbooks/deploy.yml", {"vernemq_prereqs_pod_security_level": "strict"},
                           "vernemq_prereqs_pod_security_level"),
    "short secret": ("playbooks/deploy.yml", {"vernemq_prereqs_secret_length": 8}, "vernemq_prereqs_secret_length"),
    "threshold": ("site.yml", {"vernemq_validate_fail_on": "fatal"}, "vernemq_validate_fail_on"),
    "validate-role bad value stops site.yml before deploy": (
        "site.yml", {"vernemq_validate_commands": ["plan", "everything"]}, "vernemq_validate_commands"),
    "target version": ("playbooks/upgrade.yml", {"vernemq_preflight_target_version": "latest"},
                       "vernemq_preflight_target_version"),
    "backlog threshold type": ("playbooks/preflight.yml", {"vernemq_preflight_max_offline_messages": "lots"},
                               "vernemq_preflight_max_offline_messages"),
}


def _run(playbook, extra, kubeconfig, workdir, inventory="inventories/kind"):
    base = {"vernemq_kube_context": "tripwire", "vernemq_kubeconfig": kubeconfig, "vernemq_env": "pytest-bad"}
    base.update(extra)
    f = workdir / "extra.json"
    f.write_text(json.dumps(base))
    return run_playbook("-i", inventory, playbook, "-e", f"@{f}")


@pytest.fixture(scope="module")
def refused(tmp_path_factory):
    """Every case, run concurrently, each against its own recording fake API server."""
    workdirs = {name: tmp_path_factory.mktemp("bad") for name in CASES}  # made here: mktemp is not thread-safe

    def one(name):
        playbook, extra, _expected = CASES[name]
        try:
            with FakeKube([]) as kube:
                work = workdirs[name]
                cfg = kube.write_kubeconfig(work / "kubeconfig", context="tripwire")
                res = _run(playbook, extra, str(cfg), work)
                return res, list(kube.requests)
        except Exception as exc:  # noqa: BLE001 - reported by the case's own test
            return exc, []
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(sorted(CASES), pool.map(one, sorted(CASES))))


@pytest.fixture(scope="module")
def tripwire(tmp_path_factory):
    with FakeKube([]) as kube:
        cfg = kube.write_kubeconfig(tmp_path_factory.mktemp("kube") / "kubeconfig", context="tripwire")
        yield kube, str(cfg)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_value_is_refused_before_any_cluster_call(case, refused):
    _playbook, _extra, expected = CASES[case]
    res, requests = refused[case]
    if isinstance(res, Exception):
        raise res
    out = res.stdout + res.stderr
    assert res.returncode != 0, out[-3000:]
    assert expected in " ".join(out.split()), out[-3000:]
    assert requests == [], "a cluster call happened before the value was refused"
    for play in ("PLAY [Deploy VerneMQ]", "PLAY [Rolling upgrade]", "PLAY [Pre-flight]", "PLAY [Validate VerneMQ]"):
        assert play not in out, f"{play} started: the value was not refused up front"


def test_the_aks_inventory_refuses_to_run_without_its_context(tripwire):
    res = run_playbook("-i", "inventories/aks", "site.yml")
    out = " ".join((res.stdout + res.stderr).split())
    assert res.returncode != 0
    assert "vernemq_kube_context is empty but vernemq_mode is cluster" in out


def test_control_a_good_cluster_inventory_does_reach_the_cluster(tripwire, tmp_path):
    """Without this, 'zero requests' above would prove nothing."""
    kube, cfg = tripwire
    before = len(kube.requests)
    res = _run("playbooks/preflight.yml", {"vernemq_preflight_interval": 0}, cfg, tmp_path)
    assert res.returncode != 0  # the fake cluster holds no VerneMQ: the pre-flight blocks
    assert len(kube.requests) > before
    paths = [p for _m, p, _q in kube.requests[before:]]
    assert any(p.startswith("/api/v1/namespaces/vernemq/pods") for p in paths), paths


def test_control_an_accepted_eula_passes_the_deploy_checks(tripwire, tmp_path):
    """The kind inventory accepts the EULA: deploy.yml gets past its input checks and calls the cluster."""
    kube, cfg = tripwire
    before = len(kube.requests)
    res = _run("playbooks/deploy.yml", {}, cfg, tmp_path)
    out = " ".join((res.stdout + res.stderr).split())
    assert "acceptEula is not true" not in out, out[-2000:]
    assert "PLAY [Deploy VerneMQ]" in out, out[-2000:]
    assert len(kube.requests) > before


def test_control_a_source_built_image_needs_no_eula(tripwire, tmp_path):
    """image.flavor source (VerneMQ built from the public source, no EULA setting): the deploy checks let it through
    with acceptEula false, and reach the cluster."""
    kube, cfg = tripwire
    before = len(kube.requests)
    res = _run("playbooks/deploy.yml",
               {"vernemq_values": {"image": {"flavor": "source"}, "vernemq": {"acceptEula": False}}}, cfg, tmp_path)
    out = " ".join((res.stdout + res.stderr).split())
    assert "acceptEula is not true" not in out, out[-2000:]
    assert "PLAY [Deploy VerneMQ]" in out, out[-2000:]
    assert len(kube.requests) > before
