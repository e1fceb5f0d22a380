"""Targets from a (fake) Kubernetes API: pods, names, ports, range, cookie and API key from Secrets."""

from __future__ import annotations

import base64

import pytest

from tests.fakekube import FakeKube
from validators.cli import execute
from validators.collect.kube_targets import targets_from_kube
from validators.collect.kubeclient import connect
from validators.core import redact
from validators.core.errors import CollectionError, InputError

NS = "vmq"
SEL = "app.kubernetes.io/name=vernemq,app.kubernetes.io/instance=r1"
COOKIE = "kubecookie-6d1f0a9e"
API_KEY = "kubeapikey-77a1c3"


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def pod(name, ip, phase="Running", env=None, annotations=None, ports=None, subdomain=None):
    labels = {"app.kubernetes.io/name": "vernemq", "app.kubernetes.io/instance": "r1"}
    env = env if env is not None else [{"name": "DOCKER_VERNEMQ_DISTRIBUTED_COOKIE",
                                        "valueFrom": {"secretKeyRef": {"name": "r1-vernemq-cookie", "key": "cookie"}}}]
    spec = {"containers": [
        {"name": "sidecar", "image": "busybox"},
        {"name": "vernemq", "image": "vernemq/vernemq:2.1.2", "env": env,
         "ports": ports or [{"name": "epmd", "containerPort": 4369}, {"name": "cluster", "containerPort": 44053},
                            {"name": "http", "containerPort": 8888}, {"name": "mqtt", "containerPort": 1883}]}]}
    if subdomain:
        spec["subdomain"] = subdomain
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": labels, "annotations": annotations or {}},
            "spec": spec, "status": {"phase": phase, **({"podIP": ip} if ip else {})}}


def secret(name, labels, data):
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS, "labels": labels},
            "data": {k: b64(v) for k, v in data.items()}}


COOKIE_SECRET = secret("r1-vernemq-cookie", {"app.kubernetes.io/instance": "r1",
                                             "vernemq-toolkit/secret": "erlang-cookie"}, {"cookie": COOKIE})
API_SECRET = secret("r1-vernemq-api-key", {"app.kubernetes.io/instance": "r1",
                                           "vernemq-toolkit/secret": "api-key"}, {"api-key": API_KEY})
RANGE = {"vernemq-toolkit/dist-port-range": "9100-9104"}


@pytest.fixture
def fake(tmp_path):
    with FakeKube([pod("r1-vernemq-0", "10.1.0.10", annotations=RANGE), pod("r1-vernemq-1", "10.1.0.11"),
                   pod("r1-vernemq-2", None, phase="Pending"), COOKIE_SECRET, API_SECRET]) as kube:
        kube.cfg = kube.write_kubeconfig(tmp_path / "kubeconfig", context="fake")
        yield kube


def kube_of(fake):
    return connect(str(fake.cfg), "fake")


def test_pods_become_nodes_with_ports_range_and_secrets(fake):
    redact.clear()
    spec, meta = targets_from_kube(kube_of(fake), NS, SEL)
    assert [n.name for n in spec.nodes] == ["VerneMQ@10.1.0.10", "VerneMQ@10.1.0.11"]
    assert [(n.pod, n.namespace, n.container, n.http) for n in spec.nodes][0] == (
        "r1-vernemq-0", NS, "vernemq", "http://10.1.0.10:8888")
    assert spec.dist_port_range == (9100, 9104) and meta["dist_port_range_from"] == "annotation"
    assert spec.cookie.reveal() == COOKIE and "r1-vernemq-cookie" in meta["cookie_from"]
    assert spec.api_key.reveal() == API_KEY
    assert meta["pods_skipped"] == ["r1-vernemq-2 (Pending, no IP)"]
    assert redact.scrub(f"x {COOKIE} y {API_KEY}") == "x *** y ***"
    assert COOKIE not in repr(spec) and API_KEY not in repr(spec)


def test_kubernetes_discovery_names_follow_the_official_image(fake):
    env = [{"name": "DOCKER_VERNEMQ_DISCOVERY_KUBERNETES", "value": "1"},
           {"name": "DOCKER_VERNEMQ_ERLANG__DISTRIBUTION__PORT_RANGE__MINIMUM", "value": "9200"},
           {"name": "DOCKER_VERNEMQ_ERLANG__DISTRIBUTION__PORT_RANGE__MAXIMUM", "value": "9209"}]
    fake.remove("Pod", "r1-vernemq-0", NS)
    fake.remove("Pod", "r1-vernemq-1", NS)
    fake.add(pod("r1-vernemq-0", "10.1.0.10", env=env, subdomain="r1-vernemq-headless"))
    spec, meta = targets_from_kube(kube_of(fake), NS, SEL)
    assert [n.name for n in spec.nodes] == ["VerneMQ@r1-vernemq-0.r1-vernemq-headless.vmq.svc.cluster.local"]
    assert spec.dist_port_range == (9200, 9209) and meta["dist_port_range_from"] == "env"
    # no secretKeyRef in env: the labelled Secret is found instead
    assert spec.cookie.reveal() == COOKIE and "labelled" not in meta["cookie_from"]


def test_forbidden_secrets_are_not_fatal_and_say_why(fake):
    fake.fault(f"/api/v1/namespaces/{NS}/secrets/r1-vernemq-cookie", status=403)
    fake.fault(f"/api/v1/namespaces/{NS}/secrets", status=403)
    spec, meta = targets_from_kube(kube_of(fake), NS, SEL)
    assert spec.cookie is None and spec.api_key is None
    assert "403" in meta["cookie_from"] and "403" in meta["api_key_from"]
    with pytest.raises(CollectionError, match="403"):
        targets_from_kube(kube_of(fake), NS, SEL, need_cookie=True)


def test_no_pods_and_forbidden_pods_are_collection_errors(fake):
    with pytest.raises(CollectionError, match="no pods match"):
        targets_from_kube(kube_of(fake), NS, "app.kubernetes.io/instance=other")
    fake.fault(f"/api/v1/namespaces/{NS}/pods", status=403)
    with pytest.raises(CollectionError, match="403"):
        targets_from_kube(kube_of(fake), NS, SEL)


def test_bad_range_annotation_names_the_field(fake):
    fake.remove("Pod", "r1-vernemq-0", NS)
    fake.add(pod("r1-vernemq-0", "10.1.0.10", annotations={"vernemq-toolkit/dist-port-range": "9109-9100"}))
    with pytest.raises(InputError) as e:
        targets_from_kube(kube_of(fake), NS, SEL)
    assert "vernemq-toolkit/dist-port-range" in e.value.field


def test_command_with_a_cluster_where_exec_fails_reports_unknown_not_a_traceback(fake):
    """The fake API server has no exec endpoint: every source's probes fail -> unknown with the reason."""
    report = execute(["distribution", "--kubeconfig", str(fake.cfg), "--context", "fake", "--namespace", NS,
                      "--release", "r1", "--timeout", "1", "--no-views"])
    pairwise = [r for r in report.results if r.check in ("DIST-001", "DIST-004", "DIST-005", "DIST-006")]
    assert pairwise and {r.status.value for r in pairwise} == {"unknown"}
    assert {r.subject for r in pairwise} == {"VerneMQ@10.1.0.10 -> VerneMQ@10.1.0.11",
                                             "VerneMQ@10.1.0.11 -> VerneMQ@10.1.0.10"}
    assert "exec into pod vmq/r1-vernemq-0" in [r for r in pairwise if r.subject.startswith("VerneMQ@10.1.0.10")][0].message
    assert report.meta["transport"] == "kube-exec" and report.meta["pods"] == ["r1-vernemq-0", "r1-vernemq-1"]
    blob = str(report.to_dict())
    assert COOKIE not in blob and API_KEY not in blob
