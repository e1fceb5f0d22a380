"""vernemq_prereqs against a fake API server: existing Secrets are kept (only read, never written), an
unchanged namespace is not touched (changed=0), and a missing Secret is created with a value that never
shows in the output."""

from __future__ import annotations

import json

import pytest

from tests.fakekube import RESOURCES, FakeKube

from .common import run_playbook

LABELS = {"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/audit": "restricted",
          "pod-security.kubernetes.io/warn": "restricted", "app.kubernetes.io/part-of": "vernemq",
          "vernemq-toolkit/role": "mqtt-broker", "vernemq-toolkit/release": "vernemq",
          "kubernetes.io/metadata.name": "vernemq"}


def secret(name, kind, key, value):
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": "vernemq", "labels": {
                "app.kubernetes.io/name": "vernemq", "app.kubernetes.io/instance": "vernemq",
                "app.kubernetes.io/managed-by": "ansible", "vernemq-toolkit/secret": kind}},
            "data": {key: value}}


class DiscoveryKube(FakeKube):
    """The fake API server plus the discovery documents the kubernetes.core modules read first."""

    def _route(self, path, query):
        groups = {}
        for (g, v, plural), (kind, namespaced) in RESOURCES.items():
            groups.setdefault((g, v), []).append({"name": plural, "singularName": kind.lower(), "namespaced": namespaced,
                                                  "kind": kind, "verbs": ["get", "list", "create", "patch"]})
        if path == "/api/v1":
            return 200, {"kind": "APIResourceList", "groupVersion": "v1", "resources": groups[("", "v1")]}
        parts = [p for p in path.split("/") if p]
        if len(parts) == 3 and parts[0] == "apis" and (parts[1], parts[2]) in groups:
            return 200, {"kind": "APIResourceList", "groupVersion": f"{parts[1]}/{parts[2]}",
                         "resources": groups[(parts[1], parts[2])]}
        return super()._route(path, query)


PLAYBOOK = """
- name: Prerequisites only
  hosts: vernemq
  gather_facts: false
  roles:
    - role: vernemq_prereqs
"""

COOKIE_B64 = "Y29va2llLXZhbHVlLXRoYXQtbXVzdC1zdGF5LWFzLWl0LWlz"


def _run(kube, tmp_path):
    cfg = kube.write_kubeconfig(tmp_path / "kubeconfig", context="fake")
    pb = tmp_path / "prereqs.yml"
    pb.write_text(PLAYBOOK)
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"vernemq_kube_context": "fake", "vernemq_kubeconfig": str(cfg),
                                 "vernemq_env": "pytest-prereqs"}))
    return run_playbook("-i", "inventories/kind", str(pb), "-e", f"@{extra}", timeout=300)


def test_existing_secrets_are_kept_and_nothing_is_written(tmp_path):
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "vernemq", "labels": LABELS}}
    objects = [ns, secret("vernemq-erlang-cookie", "erlang-cookie", "cookie", COOKIE_B64),
               secret("vernemq-api-key", "api-key", "api-key", "a2V5LWtleS1rZXkta2V5")]
    with DiscoveryKube(objects) as kube:
        res = _run(kube, tmp_path)
        out = res.stdout + res.stderr
        assert res.returncode == 0, out[-5000:]
        assert [m for m, _p, _q in kube.requests if m != "GET"] == [], "an existing Secret or namespace was written"
        assert any(p == "/api/v1/namespaces/vernemq/secrets/vernemq-erlang-cookie" for _m, p, _q in kube.requests)
        assert "changed=0" in out
        assert COOKIE_B64 not in out


def test_a_missing_secret_is_created_and_its_value_never_shown(tmp_path):
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "vernemq", "labels": LABELS}}
    objects = [ns, secret("vernemq-erlang-cookie", "erlang-cookie", "cookie", COOKIE_B64)]
    with DiscoveryKube(objects) as kube:
        res = _run(kube, tmp_path)
        out = res.stdout + res.stderr
        writes = [(m, p) for m, p, _q in kube.requests if m != "GET"]
        # the fake server refuses writes (405): the run fails exactly at the creation of the missing Secret
        assert writes and all(p == "/api/v1/namespaces/vernemq/secrets" and m == "POST" for m, p in writes), writes
        assert res.returncode != 0
        assert "the output has been hidden" in out or "censored" in out
        assert "stringData" not in out


def test_an_existing_secret_without_its_key_is_refused_not_overwritten(tmp_path):
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "vernemq", "labels": LABELS}}
    objects = [ns, secret("vernemq-erlang-cookie", "erlang-cookie", "wrong-key", COOKIE_B64),
               secret("vernemq-api-key", "api-key", "api-key", "a2V5LWtleS1rZXkta2V5")]
    with DiscoveryKube(objects) as kube:
        res = _run(kube, tmp_path)
        out = " ".join((res.stdout + res.stderr).split())
        assert res.returncode != 0
        assert "exists but has no key cookie" in out
        assert [m for m, _p, _q in kube.requests if m != "GET"] == []
        assert COOKIE_B64 not in out
