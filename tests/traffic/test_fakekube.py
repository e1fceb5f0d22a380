"""The fake API server speaks what the real `kubernetes` client expects (paths, shapes, errors)."""

from __future__ import annotations

import re

import pytest

from tests.fakekube import FakeKube, labels_match, parse_label_selector
from validators.collect.kube_traffic import get_json
from validators.collect.kubeclient import connect, fetch
from validators.core.errors import InputError
from validators.core.model import Unavailable


def _pod(name, ns="vmq", **labels):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "x"}]}}


OBJECTS = [
    _pod("vmq-0", app="vernemq", tier="broker"),
    _pod("vmq-1", app="vernemq", tier="broker"),
    _pod("other", app="nginx"),
    _pod("elsewhere", ns="ops", app="vernemq"),
    {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}},
    {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
     "metadata": {"name": "deny", "namespace": "vmq"}, "spec": {"podSelector": {}}},
    {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
     "metadata": {"name": "vmq-abc", "namespace": "vmq", "labels": {"kubernetes.io/service-name": "vmq"}},
     "addressType": "IPv4", "endpoints": []},
]


@pytest.fixture()
def kube(tmp_path):
    with FakeKube(OBJECTS, token="good") as k:
        k.cfg = k.write_kubeconfig(tmp_path / "kubeconfig", context="fake")
        yield k


def test_typed_client_lists_with_label_selector_and_namespaces(kube):
    k = connect(str(kube.cfg), "fake")
    names = [p.metadata.name for p in k.core().list_namespaced_pod("vmq", label_selector="app=vernemq").items]
    assert names == ["vmq-0", "vmq-1"]
    allns = k.core().list_pod_for_all_namespaces(label_selector="app in (vernemq),tier!=broker").items
    assert [(p.metadata.namespace, p.metadata.name) for p in allns] == [("ops", "elsewhere")]
    assert [n.metadata.name for n in k.core().list_node().items] == ["n1"]
    assert k.networking().list_namespaced_network_policy("vmq").items[0].metadata.name == "deny"
    assert k.discovery().list_namespaced_endpoint_slice(
        "vmq", label_selector="kubernetes.io/service-name=vmq").items[0].address_type == "IPv4"


def test_raw_json_list_has_the_api_server_shape(kube):
    k = connect(str(kube.cfg), "fake")
    doc = get_json(k, "/api/v1/namespaces/vmq/pods", {"labelSelector": "app=vernemq"})
    assert doc["kind"] == "PodList" and doc["apiVersion"] == "v1" and "resourceVersion" in doc["metadata"]
    assert all("kind" not in i for i in doc["items"]), "list items carry no kind, like the real server"
    one = get_json(k, "/api/v1/namespaces/vmq/pods/vmq-1")
    assert one["kind"] == "Pod" and one["metadata"]["name"] == "vmq-1"
    assert kube.requests[-2] == ("GET", "/api/v1/namespaces/vmq/pods", {"labelSelector": "app=vernemq"})


def test_missing_object_is_404_status_and_unavailable(kube):
    k = connect(str(kube.cfg), "fake")
    got = fetch("pod vmq/nope", lambda: get_json(k, "/api/v1/namespaces/vmq/pods/nope"))
    assert isinstance(got, Unavailable) and "404" in got.reason


def test_wrong_token_is_401(kube, tmp_path):
    bad = kube.write_kubeconfig(tmp_path / "bad", context="fake", token="wrong")
    k = connect(str(bad), "fake")
    got = fetch("pods", lambda: k.core().list_namespaced_pod("vmq"))
    assert isinstance(got, Unavailable) and "401" in got.reason


def test_injected_faults_403_500_malformed_and_timeout(kube):
    kube.fault("/api/v1/namespaces/vmq/pods", status=403)
    kube.fault("/api/v1/nodes", status=500, times=1)
    kube.fault(re.compile(r"/apis/networking\.k8s\.io/v1/.*"), malformed=True)
    kube.fault("/apis/discovery.k8s.io/v1/namespaces/vmq/endpointslices", delay=1.5)
    k = connect(str(kube.cfg), "fake", timeout=(1, 0.5))
    got = fetch("pods", lambda: k.core().list_namespaced_pod("vmq"))
    assert isinstance(got, Unavailable) and "403" in got.reason and "RBAC" in got.reason
    got = fetch("nodes", lambda: get_json(k, "/api/v1/nodes"))
    assert isinstance(got, Unavailable) and "500" in got.reason
    assert get_json(k, "/api/v1/nodes")["items"][0]["metadata"]["name"] == "n1", "times=1: second call is fine"
    got = fetch("netpols", lambda: get_json(k, "/apis/networking.k8s.io/v1/namespaces/vmq/networkpolicies"))
    assert isinstance(got, Unavailable) and "shape" in got.reason
    got = fetch("slices", lambda: get_json(k, "/apis/discovery.k8s.io/v1/namespaces/vmq/endpointslices"))
    assert isinstance(got, Unavailable) and "in time" in got.reason


def test_unknown_context_is_input_error(kube):
    with pytest.raises(InputError, match="--context"):
        connect(str(kube.cfg), "prod")


@pytest.mark.parametrize("sel,labels,want", [
    ("a=b", {"a": "b"}, True), ("a==b", {"a": "c"}, False), ("a!=b", {}, True),
    ("a in (x, y)", {"a": "y"}, True), ("a notin (x)", {"a": "x"}, False), ("a", {"a": ""}, True),
    ("!a", {"a": "1"}, False), ("a=1,b", {"a": "1"}, False), ("", {"z": "1"}, True),
])
def test_label_selector_grammar(sel, labels, want):
    assert labels_match(labels, parse_label_selector(sel)) is want
