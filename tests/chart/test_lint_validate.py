"""helm lint --strict (Helm 3 and 4), kubernetes-validate --strict for 1.28..1.37, checkov on default and aks."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import CHART, CI, PROFILES, helm_tool

K8S_VERSIONS = [f"1.{minor}.0" for minor in range(28, 38)]
#: kinds that are CRDs (prometheus-operator): no schema in kubernetes-validate; checked by promtool and below
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
#: Gateway API kinds: validated against the real v1.6.1 CRDs (tests/fixtures/gateway-api) instead
GATEWAY_KINDS = {"Gateway", "HTTPRoute", "TCPRoute", "TLSRoute", "ReferenceGrant"}
GATEWAY_CRDS = Path(__file__).resolve().parents[1] / "fixtures" / "gateway-api" / "v1.6.1"

#: checkov checks skipped for the whole chart, each with the reason
CHECKOV_SKIPS = {
    # The image is pinned by tag; a digest is optional (image.digest) because the chart cannot know the digest
    # of the registry/mirror the user pulls from. Set image.digest and tests.image.digest to pin by digest.
    "CKV_K8S_43": "image pinned by tag, digest optional",
    # With a pinned tag (and optional digest) IfNotPresent pulls the same bits as Always, without making every
    # restart depend on the registry.
    "CKV_K8S_15": "pinned tag: IfNotPresent",
    # The official image reads the cookie and the API key only from the environment (DOCKER_VERNEMQ_* /
    # API_KEY); the values come from Secrets via secretKeyRef and never appear in the manifest.
    "CKV_K8S_35": "image reads secrets from env (secretKeyRef)",
    # The token is needed: Kubernetes discovery lists the peers and the SIGTERM handler reads the StatefulSet.
    # It is mounted only when discovery.kubernetes.enabled (the ServiceAccount itself has automount off).
    "CKV_K8S_38": "token needed by Kubernetes discovery",
}


@pytest.mark.parametrize("helm", ["helm4", "helm3"])
@pytest.mark.parametrize("profile", [None, *PROFILES])
def test_helm_lint_strict(helm, profile):
    cmd = [helm_tool("helm" if helm == "helm4" else "helm3"), "lint", "--strict", str(CHART)]
    if profile:
        cmd += ["-f", str(CI / f"{profile}-values.yaml")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout
    assert "[WARNING]" not in proc.stdout and "[ERROR]" not in proc.stdout


def test_profiles_have_test_case_headers():
    assert {"00-default", "10-aks", "20-generic-nodeport-metallb", "30-ingress-nginx", "40-tls",
            "50-monitoring"} <= set(PROFILES)
    for p in PROFILES:
        first = (CI / f"{p}-values.yaml").read_text().splitlines()[0]
        assert first.startswith("# Test case: "), p


def test_helm3_and_helm4_render_the_same(renderer):
    """Apart from the random secrets, both Helm major versions produce the same objects for every profile."""
    def strip(docs):
        for d in docs:
            if d["kind"] == "Secret":
                d["data"] = {k: "<random>" for k in d["data"]}
        return docs
    for p in PROFILES:
        assert strip(renderer.docs(p, helm="helm3")) == strip(renderer.docs(p, helm="helm4")), p


@pytest.fixture(scope="session")
def manifests(renderer, tmp_path_factory) -> dict[str, Path]:
    """One multi-document file per profile; objects already written for an earlier profile are left out
    (the Role, PDB, ServiceAccount... are the same in most profiles), so each version validates each distinct
    object once."""
    out = tmp_path_factory.mktemp("manifests")
    files, seen = {}, set()
    for p in PROFILES:
        docs = []
        for d in renderer.docs(p):
            if d["kind"] in CRD_KINDS | GATEWAY_KINDS:
                continue
            key = json.dumps(d, sort_keys=True) if d["kind"] != "Secret" else f"Secret/{d['metadata']['name']}"
            if key not in seen:
                seen.add(key)
                docs.append(d)
        f = out / f"{p}.yaml"
        f.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        files[p] = f
    return files


@pytest.fixture(scope="session")
def kubernetes_validate_runs(manifests) -> dict[str, subprocess.CompletedProcess]:
    """kubernetes-validate --strict once per Kubernetes version over all profile files, versions in parallel."""
    tool = helm_tool("kubernetes-validate")
    files = [str(f) for f in manifests.values()]
    procs = {}
    results = {}
    pending = list(K8S_VERSIONS)
    while pending or procs:
        while pending and len(procs) < 4:
            v = pending.pop(0)
            procs[v] = subprocess.Popen([tool, "--strict", "--quiet", "-k", v, *files], stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        v, proc = next(iter(procs.items()))
        out, _ = proc.communicate(timeout=170)
        results[v] = subprocess.CompletedProcess(proc.args, proc.returncode, out, "")
        del procs[v]
    return results


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kubernetes_validate_strict(kubernetes_validate_runs, version):
    proc = kubernetes_validate_runs[version]
    assert proc.returncode == 0, proc.stdout
    assert not re.search(r"(?m)^(ERROR|WARN)", proc.stdout), proc.stdout


def test_kubernetes_validate_sees_every_object(manifests, renderer):
    """Guard against an empty render passing validation: the files hold every kind the profiles render."""
    kinds = {d["kind"] for f in manifests.values() for d in yaml.safe_load_all(f.read_text()) if d}
    assert kinds == {d["kind"] for p in PROFILES for d in renderer.docs(p)} - CRD_KINDS - GATEWAY_KINDS
    assert {"StatefulSet", "Service", "NetworkPolicy", "PodDisruptionBudget", "Ingress", "Secret", "Role",
            "RoleBinding", "ServiceAccount", "Pod", "ConfigMap"} <= kinds


@pytest.mark.parametrize("profile", PROFILES)
def test_gateway_api_objects_validate_against_the_crds(renderer, profile):
    """Gateway API objects against the openAPIV3Schema and CEL rules of the Gateway API v1.6.1 standard CRDs
    (validators/crd; the same check as `vmq-validate plan --crd-dir`, TRAFFIC-016)."""
    from validators.collect.crds import load_dir
    from validators.crd import validate_object

    crds = load_dir(str(GATEWAY_CRDS))
    for d in renderer.docs(profile):
        if d["kind"] in GATEWAY_KINDS:
            assert d["apiVersion"] == "gateway.networking.k8s.io/v1"
            assert [str(p) for p in validate_object(d, crds)] == [], (profile, d["kind"])


def test_gateway_profiles_render_every_gateway_api_kind(renderer):
    assert {d["kind"] for p in PROFILES for d in renderer.docs(p)} >= GATEWAY_KINDS


def test_kubernetes_validate_catches_a_broken_object(tmp_path):
    """The validator itself must reject an unknown field under --strict (otherwise the tests above prove nothing)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 1}], bogus: 1}\n")
    proc = subprocess.run([helm_tool("kubernetes-validate"), "--strict", "-k", "1.30.0", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0


@pytest.fixture(scope="session")
def checkov_report(renderer, tmp_path_factory):
    """One checkov run over the default and aks renders, plus a deliberately weakened render in its own folder
    that proves the scan catches a regression."""
    out = tmp_path_factory.mktemp("checkov")
    (out / "profiles").mkdir()
    (out / "mutant").mkdir()
    for p in ("00-default", "10-aks"):
        (out / "profiles" / f"{p}.yaml").write_text(renderer.text(p))
    (out / "mutant" / "mutant.yaml").write_text(
        renderer.text("00-default", sets=["containerSecurityContext.readOnlyRootFilesystem=false"]))
    proc = subprocess.run([helm_tool("checkov"), "--skip-download", "--framework", "kubernetes", "-d", str(out),
                           "--skip-check", ",".join(CHECKOV_SKIPS), "-o", "json"],
                          capture_output=True, text=True, timeout=170, cwd=out)
    assert proc.stdout, proc.stderr
    return json.loads(proc.stdout)


def test_checkov_no_failed_checks(checkov_report):
    results = checkov_report["results"]
    failed = [(c["check_id"], c["resource"], c["file_path"]) for c in results["failed_checks"]
              if "/profiles/" in c["file_path"]]
    assert failed == []
    passed_files = {c["file_path"] for c in results["passed_checks"]}
    assert {"/profiles/00-default.yaml", "/profiles/10-aks.yaml"} <= passed_files  # both renders were scanned
    assert len([c for c in results["passed_checks"] if "/profiles/" in c["file_path"]]) > 100


def test_checkov_catches_a_weakened_render(checkov_report):
    failed = {c["check_id"] for c in checkov_report["results"]["failed_checks"] if "/mutant/" in c["file_path"]}
    assert failed == {"CKV_K8S_22"}  # "Use read-only filesystem for containers where possible"


def test_checkov_skips_are_the_documented_ones(checkov_report):
    skipped = {c["check_id"] for c in checkov_report["results"]["skipped_checks"] if "/profiles/" in c["file_path"]}
    assert skipped
    # chart-wide skips plus the per-resource probe skips of the one-shot helm test pod
    assert skipped <= set(CHECKOV_SKIPS) | {"CKV_K8S_8", "CKV_K8S_9"}
    for c in checkov_report["results"]["skipped_checks"]:
        if c["check_id"] in {"CKV_K8S_8", "CKV_K8S_9"}:
            assert c["resource"].startswith("Pod."), c["resource"]


def test_packaged_chart_is_complete(tmp_path):
    """`helm package` keeps what the templates read (schema, dashboard JSON) and leaves out the dev files."""
    import tarfile
    helm = helm_tool("helm")
    proc = subprocess.run([helm, "package", str(CHART), "-d", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (tgz,) = tmp_path.glob("vernemq-*.tgz")
    names = set(tarfile.open(tgz).getnames())
    assert {"vernemq/values.schema.json", "vernemq/files/grafana-dashboard.json", "vernemq/README.md",
            "vernemq/templates/NOTES.txt"} <= names
    assert not [n for n in names if n.startswith(("vernemq/scripts/", "vernemq/ci/"))]
    out = subprocess.run([helm, "template", "mqtt", str(tgz), "--set", "monitoring.grafanaDashboard.enabled=true"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    dash = [d for d in yaml.safe_load_all(out.stdout) if d and d["kind"] == "ConfigMap"]
    assert json.loads(dash[0]["data"]["vernemq.json"])["panels"]
