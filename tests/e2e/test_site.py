"""Opt-in end to end on a real cluster: site.yml deploys and validates, a second run changes nothing,
the Secrets are generated once and kept, the pre-flight passes on the healthy release, `helm test`
passes. Skipped unless a kube context is given:

    python -m pytest tests/e2e --kube-context kind-vernemq [--kubeconfig PATH]

It uses the `kind` inventory (inventories/kind) with the given context; the namespace and release are
the inventory's (vernemq/vernemq). CI runs it in .github/workflows/e2e-kind.yml on a fresh kind cluster.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.ansible.common import ROOT, ansible_env, run_playbook, tool

pytestmark = pytest.mark.e2e

NAMESPACE = RELEASE = "vernemq"


@pytest.fixture(scope="module")
def kube(request):
    context = request.config.getoption("--kube-context")
    if not context:
        pytest.skip("no --kube-context given: the e2e suite needs a real cluster")
    return context, request.config.getoption("--kubeconfig")


def _extra(kube, tmp_path, **more) -> list[str]:
    context, kubeconfig = kube
    doc = {"vernemq_kube_context": context, **({"vernemq_kubeconfig": kubeconfig} if kubeconfig else {}), **more}
    f = tmp_path / "extra.json"
    f.write_text(json.dumps(doc))
    return ["-i", "inventories/kind", "-e", f"@{f}"]


def _kubectl(kube, *args) -> dict:
    context, kubeconfig = kube
    cmd = [tool("kubectl"), "--context", context, *(["--kubeconfig", kubeconfig] if kubeconfig else []), *args,
           "-o", "json"]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60).stdout)


def _changed(out: str) -> int:
    m = re.search(r"localhost\s*:\s*ok=\d+\s+changed=(\d+)", out)
    assert m, out[-2000:]
    return int(m.group(1))


@pytest.fixture(scope="module")
def deployed(kube, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    first = run_playbook("site.yml", *_extra(kube, tmp), timeout=1800)
    assert first.returncode == 0, (first.stdout + first.stderr)[-6000:]
    return tmp


def test_site_deploys_and_validates(kube, deployed):
    for cmd in ("plan", "cluster", "distribution", "clients"):
        report = json.loads((ROOT / "artifacts" / "kind" / f"{cmd}.json").read_text())
        assert report["summary"]["failed"] is False, cmd
        assert report["meta"].get("context", kube[0]) == kube[0]
    sts = _kubectl(kube, "-n", NAMESPACE, "get", "statefulset", "-l", f"app.kubernetes.io/instance={RELEASE}")
    (s,) = sts["items"]
    assert s["status"].get("readyReplicas") == s["spec"]["replicas"]


def test_second_run_changes_nothing_and_keeps_the_secrets(kube, deployed):
    before = {s["metadata"]["name"]: s["metadata"]["resourceVersion"] for s in _kubectl(
        kube, "-n", NAMESPACE, "get", "secret", "-l", "vernemq-toolkit/secret")["items"]}
    assert {f"{RELEASE}-erlang-cookie", f"{RELEASE}-api-key"} <= set(before)
    again = run_playbook("site.yml", *_extra(kube, deployed), timeout=1800)
    assert again.returncode == 0, (again.stdout + again.stderr)[-6000:]
    assert _changed(again.stdout) == 0, again.stdout[-6000:]
    after = {s["metadata"]["name"]: s["metadata"]["resourceVersion"] for s in _kubectl(
        kube, "-n", NAMESPACE, "get", "secret", "-l", "vernemq-toolkit/secret")["items"]}
    assert after == before


def test_namespace_carries_pod_security_and_selector_labels(kube, deployed):
    labels = _kubectl(kube, "get", "namespace", NAMESPACE)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["vernemq-toolkit/release"] == RELEASE


def test_preflight_passes_on_the_healthy_release(kube, deployed):
    res = run_playbook("playbooks/preflight.yml", *_extra(kube, deployed, vernemq_preflight_interval=5), timeout=600)
    assert res.returncode == 0, (res.stdout + res.stderr)[-6000:]


def test_helm_test_passes(kube, deployed):
    context, kubeconfig = kube
    cmd = [tool("helm"), "test", RELEASE, "-n", NAMESPACE, "--kube-context", context, "--timeout", "5m",
           *(["--kubeconfig", kubeconfig] if kubeconfig else [])]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=ansible_env())
    assert res.returncode == 0, res.stdout + res.stderr
