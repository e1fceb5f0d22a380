"""Secrets survive upgrades: with a cluster to `lookup`, the chart reuses the cookie and API key it finds.

`helm template --dry-run=server` renders against tests.fakekube (a local API server) holding the Secrets of an
earlier install, so the templates' `lookup` really runs, with Helm 3 and Helm 4.
"""

from __future__ import annotations

import base64
import subprocess

import pytest
import yaml

from tests.fakekube import RESOURCES, FakeKube

from .conftest import CHART, FULLNAME, NAMESPACE, RELEASE

#: API groups the chart renders that the fake server does not serve objects for (discovery only)
EXTRA = {("rbac.authorization.k8s.io", "v1", "roles"): ("Role", True),
         ("rbac.authorization.k8s.io", "v1", "rolebindings"): ("RoleBinding", True)}


class DiscoveryKube(FakeKube):
    """FakeKube plus the per-group resource lists Helm needs to map kinds (and so to run `lookup`)."""

    def _route(self, path, query):
        resources = {**RESOURCES, **EXTRA}
        parts = [p for p in path.split("/") if p]
        if parts == ["apis"]:
            groups = sorted({(g, v) for (g, v, _p) in resources if g})
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                 "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}} for g, v in groups]}
        gv = ("", "v1") if parts == ["api", "v1"] else (parts[1], parts[2]) if len(parts) == 3 and parts[0] == "apis" else None
        if gv:
            return 200, {"kind": "APIResourceList", "apiVersion": "v1",
                         "groupVersion": f"{gv[0]}/{gv[1]}" if gv[0] else gv[1],
                         "resources": [{"name": p, "singularName": "", "namespaced": ns, "kind": k,
                                        "verbs": ["get", "list"]}
                                       for (g, v, p), (k, ns) in resources.items() if (g, v) == gv]}
        return super()._route(path, query)


def _secret(name, key, value, label):
    return {"apiVersion": "v1", "kind": "Secret",
            # as an earlier `helm install` of this release left it
            "metadata": {"name": name, "namespace": NAMESPACE,
                         "labels": {"app.kubernetes.io/instance": RELEASE, "app.kubernetes.io/managed-by": "Helm",
                                    "vernemq-toolkit/secret": label},
                         "annotations": {"meta.helm.sh/release-name": RELEASE,
                                         "meta.helm.sh/release-namespace": NAMESPACE}},
            "type": "Opaque", "data": {key: base64.b64encode(value.encode()).decode()}}


def _render_against(renderer, helm, objects, tmp_path):
    with DiscoveryKube(objects, token=None) as kube:
        cfg = kube.write_kubeconfig(tmp_path / "kubeconfig", context="fake", namespace=NAMESPACE)
        proc = subprocess.run([renderer.bins[helm], "template", RELEASE, str(CHART), "--namespace", NAMESPACE,
                               "--dry-run=server", "--disable-openapi-validation", "--kubeconfig", str(cfg),
                               "--kube-context", "fake"], capture_output=True, text=True, timeout=90)
        lookups = [path for _m, path, _q in kube.requests if "/secrets/" in path]
    assert proc.returncode == 0, proc.stderr
    secrets = {d["metadata"]["labels"]["vernemq-toolkit/secret"]: d for d in yaml.safe_load_all(proc.stdout)
               if d and d["kind"] == "Secret"}
    return {k: {kk: base64.b64decode(v).decode() for kk, v in s["data"].items()} for k, s in secrets.items()}, lookups


@pytest.mark.parametrize("helm", ["helm4", "helm3"])
def test_upgrade_reuses_existing_cookie_and_api_key(renderer, helm, tmp_path):
    old_cookie, old_key = "C00kieFromTheFirstInstall0123456789abcdefXYZ", "ApiKeyFromTheFirstInstall0123456789abcdef"
    objects = [_secret(f"{FULLNAME}-erlang-cookie", "cookie", old_cookie, "erlang-cookie"),
               _secret(f"{FULLNAME}-api-key", "api-key", old_key, "api-key")]
    data, lookups = _render_against(renderer, helm, objects, tmp_path)
    assert f"/api/v1/namespaces/{NAMESPACE}/secrets/{FULLNAME}-erlang-cookie" in lookups
    assert data["erlang-cookie"]["cookie"] == old_cookie
    assert data["api-key"]["api-key"] == old_key


def test_first_install_against_a_cluster_generates(renderer, tmp_path):
    data, lookups = _render_against(renderer, "helm4", [], tmp_path)
    assert lookups  # it looked, found nothing ...
    cookie = data["erlang-cookie"]["cookie"]
    assert len(cookie) == 48 and cookie.isalnum()  # ... and generated a fresh one
    assert data["api-key"]["api-key"] != cookie
