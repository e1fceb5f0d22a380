"""`vmq-validate cluster` against the local fake Kubernetes API (real paths and JSON shapes):
live-only checks, and 401 / 403 / timeouts / malformed answers -> unknown with the reason."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from tests.fakekube import FakeKube
from validators.cli import main
from validators.netpol.workloads import expand

from .util import load

NODES = ["aks-nodepool1-0", "aks-nodepool1-1"]


def live_objects(ready=(0, 1, 2), endpoints=(0, 1, 2), nodes=(0, 1, 1), hc=True, apiserver="10.0.0.1"):
    base = load()
    out = []
    for o in base:
        o = copy.deepcopy(o)
        if o["kind"] == "Service":
            o["spec"]["clusterIP"] = o["spec"].get("clusterIP", "10.0.12.7")
            if o["spec"].get("type") == "LoadBalancer" and hc:
                o["spec"]["healthCheckNodePort"] = 31999
        if o["kind"] in ("StatefulSet", "Deployment"):
            for i, p in enumerate(expand(o)):
                p["metadata"]["name"] = p["metadata"]["name"] if o["kind"] == "StatefulSet" else "sensor-gateway-7d9f-x2"
                vmq = o["kind"] == "StatefulSet"
                p["spec"]["nodeName"] = NODES[nodes[i]] if vmq else NODES[0]
                p["status"] = {"phase": "Running", "podIP": f"10.244.{i}.{10 + i}" if vmq else "10.244.9.9",
                               "conditions": [{"type": "Ready", "status": "True" if (not vmq or i in ready) else "False"}]}
                out.append(p)
        if o["kind"] in ("Service", "Ingress", "NetworkPolicy", "Namespace", "StatefulSet"):
            out.append(o)
    out.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "r-vernemq-abcde", "namespace": "mqtt",
                             "labels": {"kubernetes.io/service-name": "r-vernemq"}},
                "addressType": "IPv4", "ports": [{"name": "mqtt", "port": 1883, "protocol": "TCP"}],
                "endpoints": [{"addresses": [f"10.244.{i}.{10 + i}"], "conditions": {"ready": i in ready},
                               "targetRef": {"kind": "Pod", "name": f"r-vernemq-{i}", "namespace": "mqtt"}}
                              for i in endpoints]})
    out.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "kubernetes", "namespace": "default",
                             "labels": {"kubernetes.io/service-name": "kubernetes"}},
                "addressType": "IPv4", "ports": [{"name": "https", "port": 443, "protocol": "TCP"}],
                "endpoints": [{"addresses": [apiserver], "conditions": {"ready": True}}]})
    for n in NODES:
        out.append({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n},
                    "spec": {"providerID": f"azure:///subscriptions/x/resourceGroups/mc/providers/vm/{n}"}})
    for ns in ("default", "kube-system"):
        out.append({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}})
    out.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "r-vernemq-cookie", "namespace": "mqtt"},
                "data": {"cookie": "Q29va2llU2VjcmV0VmFsdWUxMjM="}, "stringData": {"x": "CookieSecretValue123"}})
    return out


def run(capsys, kube, tmp_path, *extra, token=None):
    cfg = kube.write_kubeconfig(tmp_path / "kubeconfig", context="aks-test", token=token)
    code = main(["cluster", "--kubeconfig", str(cfg), "--context", "aks-test", "-n", "mqtt", "--release", "r",
                 "--format", "json", *extra])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    doc = json.loads(out.out) if out.out else None
    return code, doc, out.err


def results(doc, check_id):
    return [r for r in doc["results"] if r["check"] == check_id]


def status(doc, check_id):
    return sorted({r["status"] for r in results(doc, check_id)})


def test_healthy_live_release_is_clean_and_live_checks_run(capsys, tmp_path):
    with FakeKube(live_objects()) as kube:
        code, doc, err = run(capsys, kube, tmp_path)
        paths = {p for _m, p, _q in kube.requests}
    assert code == 0, [r for r in doc["results"] if r["status"] not in ("pass", "skip")]
    for cid in ("TRAFFIC-002", "TRAFFIC-006", "TRAFFIC-007", "TRAFFIC-014"):
        assert status(doc, cid) == ["pass"], cid
    assert results(doc, "TRAFFIC-002")[0]["evidence"]["healthCheckNodePort"] == 31999
    api = next(r for r in results(doc, "TRAFFIC-014") if r["subject"] == "API server")
    assert api["evidence"]["source"] == "live endpoints of default/kubernetes"
    assert doc["meta"]["context"] == "aks-test" and doc["meta"]["source"] == "kubernetes"
    assert not any("secrets" in p for p in paths), "the traffic collector never reads Secrets"


def test_ready_pod_missing_from_endpoints_fails(capsys, tmp_path):
    with FakeKube(live_objects(endpoints=(0, 1))) as kube:
        code, doc, _ = run(capsys, kube, tmp_path)
    (r,) = results(doc, "TRAFFIC-006")
    assert code == 1 and r["status"] == "fail" and r["evidence"]["missing"] == ["r-vernemq-2"]


def test_not_ready_pod_is_not_required_as_endpoint(capsys, tmp_path):
    with FakeKube(live_objects(ready=(0, 1), endpoints=(0, 1, 2))) as kube:
        _code, doc, _ = run(capsys, kube, tmp_path)
    assert status(doc, "TRAFFIC-006") == ["pass"]


def test_pods_on_one_node_warn_with_local_policy(capsys, tmp_path):
    with FakeKube(live_objects(nodes=(1, 1, 1))) as kube:
        code, doc, _ = run(capsys, kube, tmp_path)
    (r,) = results(doc, "TRAFFIC-007")
    assert r["status"] == "warn" and r["evidence"]["nodes"] == [NODES[1]]
    assert code == 0, "a warning does not fail the default --fail-on error"


def test_missing_health_check_node_port_fails(capsys, tmp_path):
    with FakeKube(live_objects(hc=False)) as kube:
        code, doc, _ = run(capsys, kube, tmp_path)
    assert code == 1 and status(doc, "TRAFFIC-002") == ["fail"]


def test_azure_is_detected_from_node_provider_ids_when_the_service_has_no_azure_annotation(capsys, tmp_path):
    objs = live_objects()
    svc = next(o for o in objs if o["kind"] == "Service" and o["metadata"]["name"] == "r-vernemq")
    for k in [k for k in svc["metadata"]["annotations"] if k.startswith("service.beta.kubernetes.io/")]:
        del svc["metadata"]["annotations"][k]
    with FakeKube(objs) as kube:
        code, doc, _ = run(capsys, kube, tmp_path)
    (r,) = results(doc, "TRAFFIC-003")
    assert code == 1 and r["status"] == "fail" and "providerID" in r["evidence"]["azure"]


def test_api_server_address_from_the_cluster_is_used(capsys, tmp_path):
    with FakeKube(live_objects(apiserver="10.9.9.9")) as kube:
        code, doc, _ = run(capsys, kube, tmp_path)
    api = next(r for r in results(doc, "TRAFFIC-014") if r["subject"] == "API server")
    assert code == 1 and api["status"] == "fail" and api["evidence"]["candidates"] == ["10.9.9.9:443"]


def test_wrong_token_401_makes_every_check_unknown(capsys, tmp_path):
    with FakeKube(live_objects(), token="right") as kube:
        code, doc, _ = run(capsys, kube, tmp_path, token="wrong")
    assert code == 1
    by_check = {r["check"]: r for r in doc["results"]}
    assert all(r["status"] == "unknown" and "401" in r["message"] for r in by_check.values()), by_check


def test_403_on_networkpolicies_is_unknown_for_the_policy_checks_only(capsys, tmp_path):
    with FakeKube(live_objects()) as kube:
        kube.fault("/apis/networking.k8s.io/v1/namespaces/mqtt/networkpolicies", status=403)
        code, doc, _ = run(capsys, kube, tmp_path)
    for cid in ("TRAFFIC-011", "TRAFFIC-012", "TRAFFIC-013", "TRAFFIC-014"):
        (r,) = results(doc, cid)
        assert r["status"] == "unknown" and "403" in r["message"] and "RBAC" in r["message"], r
    assert status(doc, "TRAFFIC-001") == ["pass"] and status(doc, "TRAFFIC-006") == ["pass"]
    assert code == 1


def test_timeout_on_endpointslices_is_unknown(capsys, tmp_path):
    with FakeKube(live_objects()) as kube:
        kube.fault("/apis/discovery.k8s.io/v1/namespaces/mqtt/endpointslices", delay=1.5)
        code, doc, _ = run(capsys, kube, tmp_path, "--timeout", "0.3")
    (r,) = results(doc, "TRAFFIC-006")
    assert r["status"] == "unknown" and "in time" in r["message"]
    assert status(doc, "TRAFFIC-002") == ["pass"]


@pytest.mark.parametrize("fault", [{"malformed": True}, {"status": 500}])
def test_malformed_or_failing_pod_list_is_unknown(capsys, tmp_path, fault):
    with FakeKube(live_objects()) as kube:
        kube.fault("/api/v1/namespaces/mqtt/pods", **fault)
        code, doc, _ = run(capsys, kube, tmp_path)
    assert code == 1
    # TRAFFIC-016 (CRD schemas) is offline only; TRAFFIC-024 (ingress-nginx retired) reads Ingresses, not pods
    assert all(r["status"] == "unknown" and "pods in mqtt" in r["message"] for r in doc["results"]
               if (r["check"] != "TRAFFIC-010" or r["status"] != "pass") and r["check"] not in ("TRAFFIC-016",
                                                                                                 "TRAFFIC-024"))


def test_unreachable_api_server_is_unknown_not_a_traceback(capsys, tmp_path):
    kube = FakeKube(live_objects()).start()
    cfg = kube.write_kubeconfig(tmp_path / "kubeconfig", context="gone")
    kube.stop()
    code = main(["cluster", "--kubeconfig", str(cfg), "--context", "gone", "-n", "mqtt", "--release", "r",
                 "--format", "json"])
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert code == 1 and all(r["status"] == "unknown" for r in doc["results"])
    assert doc["results"][0]["message"].startswith("cannot read services in mqtt: ")


@pytest.mark.parametrize("argv,needle", [
    (["cluster", "-n", "mqtt"], "--context"),
    (["cluster", "--context", "x"], "--namespace"),
])
def test_cluster_usage_errors_exit_2(capsys, argv, needle):
    assert main(argv) == 2
    assert needle in capsys.readouterr().err


def test_the_documented_rbac_covers_every_read_of_the_collector(root):
    from validators.collect.kube_traffic import LISTS

    text = (root / "docs" / "rbac.md").read_text()
    block = text.split("```yaml", 1)[1].split("```", 1)[0]
    granted = set()
    for doc in yaml.safe_load_all(block):
        if doc["kind"] in ("Role", "ClusterRole"):
            for rule in doc["rules"]:
                assert set(rule["verbs"]) <= {"get", "list", "watch"}, "read-only"
                for g in rule["apiGroups"]:
                    granted |= {(g, r) for r in rule["resources"]}
    assert not any(r == "secrets" for _g, r in granted)
    for _fact, path, api_version, _kind, _what in LISTS:
        group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
        assert (group, path.rsplit("/", 1)[1]) in granted, path
    from validators.collect.kube_traffic import GATEWAY_ROUTES
    for plural in ("gateways", "referencegrants", *(p for _f, p, _k in GATEWAY_ROUTES)):
        assert ("gateway.networking.k8s.io", plural) in granted, plural


def test_finished_pods_with_the_release_labels_are_not_brokers(capsys, tmp_path):
    objs = live_objects()
    objs.append({"apiVersion": "v1", "kind": "Pod",
                 "metadata": {"name": "r-vernemq-test-roundtrip", "namespace": "mqtt",
                              "labels": {"app.kubernetes.io/name": "vernemq", "app.kubernetes.io/instance": "r"}},
                 "spec": {"containers": [{"name": "c", "image": "eclipse-mosquitto"}]},
                 "status": {"phase": "Failed"}})
    with FakeKube(objs) as kube:
        code, doc, _ = run(capsys, kube, tmp_path)
    assert code == 0 and status(doc, "TRAFFIC-005") == ["pass"]
    objs[-1]["status"]["phase"] = "Running"
    with FakeKube(objs) as kube:
        code, doc, _ = run(capsys, kube, tmp_path)
    assert code == 1 and "fail" in status(doc, "TRAFFIC-005"), "a running pod with the labels is judged"


def test_plan_and_cluster_agree_on_a_chart_render(capsys, tmp_path):
    """The same chart render, read offline and served by the fake API, gives the same verdicts on
    every check that does not need live-only facts."""
    from .test_chart_profiles import CHART, HELM, objects, plan
    profile = CHART / "ci" / "10-aks-values.yaml"
    if HELM is None or not profile.exists():
        pytest.skip("helm or the AKS profile not available")
    objs = [o for o in objects(profile) if "helm.sh/hook" not in (o["metadata"].get("annotations") or {})]
    offline = plan(objs, "t", "mqtt")
    served = [o for o in objs if o["kind"] in ("Service", "NetworkPolicy", "Ingress", "StatefulSet", "Secret")]
    sts = next(o for o in objs if o["kind"] == "StatefulSet")
    for i, p in enumerate(expand(sts)):
        p["spec"]["nodeName"] = NODES[i % 2]
        p["status"] = {"phase": "Running", "podIP": f"10.244.{i}.5",
                       "conditions": [{"type": "Ready", "status": "True"}]}
        served.append(p)
    served += [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": {
        "kubernetes.io/metadata.name": n}}} for n in ("mqtt", "kube-system", "default")]
    with FakeKube(served) as kube:
        cfg = kube.write_kubeconfig(tmp_path / "kubeconfig", context="c")
        main(["cluster", "--kubeconfig", str(cfg), "--context", "c", "-n", "mqtt", "--release", "t", "--format", "json"])
    live = json.loads(capsys.readouterr().out)
    live_only = {"TRAFFIC-002", "TRAFFIC-006", "TRAFFIC-007"}

    def verdicts(results):
        return sorted((r["check"], r["subject"], r["status"]) for r in results if r["check"] not in live_only)
    assert verdicts(live["results"]) == verdicts(r.to_dict() for r in offline.results)
