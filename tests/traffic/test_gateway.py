"""Gateway API: the CRD schema validator (real v1.6.1 CRDs from tests/fixtures/gateway-api), the
TRAFFIC-016..024 checks on chart renders (passing, and failing with their own ID on a mutated copy),
the live route/Gateway status against tests/fakekube.py, and `plan` finding the namespace and release
in the manifests on the first try."""

from __future__ import annotations

import copy
import io
import json
import subprocess

import pytest

from tests.fakekube import FakeKube, gateway_status, route_status, running_statefulset
from validators.cli import main
from validators.collect.crds import load_dir
from validators.core.errors import InputError
from validators.crd import validate_object

from .test_chart_profiles import CHART, HELM, NS, PROFILES, RELEASE, ROOT, gateway_crds, objects
from .util import bad, plan, statuses

CRD_DIR = ROOT / "tests" / "fixtures" / "gateway-api" / "v1.6.1"
GW_PROFILE = CHART / "ci" / "70-gateway-values.yaml"
XNS_PROFILE = CHART / "ci" / "72-gateway-attach-crossns-values.yaml"
AGC_PROFILE = CHART / "ci" / "71-aks-agc-values.yaml"

pytestmark = pytest.mark.skipif(HELM is None or not GW_PROFILE.exists(), reason="helm or the gateway profile missing")


def kind(objs, k, name=None):
    return next(o for o in objs if o["kind"] == k and (name is None or o["metadata"]["name"] == name))


def problems(obj):
    return [str(p) for p in validate_object(obj, gateway_crds())]


# ---------------------------------------------------------------------------------------------
# the CRD validator


def test_every_rendered_gateway_api_object_is_valid_under_the_v1_6_1_crds():
    seen = set()
    for profile in PROFILES:
        for o in objects(profile):
            if o["apiVersion"].startswith("gateway.networking.k8s.io/"):
                assert problems(o) == [], (profile.name, o["kind"])
                seen.add(o["kind"])
    assert seen == {"Gateway", "HTTPRoute", "TCPRoute", "TLSRoute", "ReferenceGrant"}


def test_tcproute_and_tlsroute_are_served_at_v1_and_no_longer_at_v1alpha2():
    crds = gateway_crds()
    for k in ("TCPRoute", "TLSRoute"):
        versions = crds.crds[("gateway.networking.k8s.io", k)]["versions"]
        assert versions["v1"]["served"] and not versions["v1alpha2"]["served"]
    route = copy.deepcopy(kind(objects(GW_PROFILE), "TCPRoute"))
    route["apiVersion"] = "gateway.networking.k8s.io/v1alpha2"
    assert "not served" in problems(route)[0]


def _gw():
    return copy.deepcopy(kind(objects(GW_PROFILE), "Gateway"))


def _http():
    return copy.deepcopy(kind(objects(GW_PROFILE), "HTTPRoute"))


def _set(obj, fn):
    fn(obj)
    return obj


STRUCTURAL = [
    ("unknown field (strict)", lambda: _set(_http(), lambda o: o["spec"].update(bogus=1)), "Additional properties"),
    ("wrong type", lambda: _set(_http(), lambda o: o["spec"]["rules"][0]["backendRefs"][0].update(port="ws")),
     "is not of type 'integer'"),
    ("port out of range", lambda: _set(_http(), lambda o: o["spec"]["rules"][0]["backendRefs"][0].update(port=70000)),
     "70000 is greater than the maximum"),
    ("enum", lambda: _set(_gw(), lambda o: o["spec"]["listeners"][2]["tls"].update(mode="Decrypt")),
     "'Decrypt' is not one of"),
    ("pattern", lambda: _set(_http(), lambda o: o["spec"]["rules"][0]["timeouts"].update(request="1 hour")),
     "does not match"),
    ("required", lambda: _set(_gw(), lambda o: o["spec"].pop("gatewayClassName")), "'gatewayClassName' is a required"),
    ("list-type map", lambda: _set(_gw(), lambda o: o["spec"]["listeners"].append(dict(o["spec"]["listeners"][1]))),
     "x-kubernetes-list-type"),
]

CEL = [
    ("TLS listener without mode", lambda: _set(_gw(), lambda o: o["spec"]["listeners"][2].pop("tls")),
     "tls mode must be set for protocol TLS"),
    ("TCP listener with hostname", lambda: _set(_gw(), lambda o: o["spec"]["listeners"][1].update(hostname="a.b")),
     "hostname must not be specified for protocols ['TCP', 'UDP']"),
    ("HTTPS without certificate", lambda: _set(_gw(), lambda o: o["spec"]["listeners"][0]["tls"].pop("certificateRefs")),
     "certificateRefs or options must be specified when mode is Terminate"),
    ("Service backend without port", lambda: _set(_http(), lambda o: o["spec"]["rules"][0]["backendRefs"][0].pop("port")),
     "Must have port for Service reference"),
    ("backendRequest > request", lambda: _set(_http(), lambda o: o["spec"]["rules"][0].update(
        timeouts={"request": "10m", "backendRequest": "1h"})), "backendRequest timeout cannot be longer"),
    ("same parent twice, one without sectionName", lambda: _set(_http(), lambda o: o["spec"]["parentRefs"].append(
        {k: v for k, v in o["spec"]["parentRefs"][0].items() if k != "sectionName"})), "sectionName must be specified"),
    ("path with //", lambda: _set(_http(), lambda o: o["spec"]["rules"][0]["matches"][0]["path"].update(value="/a//b")),
     "must not contain '//'"),
    ("TLSRoute hostname is an IP", lambda: _set(copy.deepcopy(kind(objects(GW_PROFILE), "TLSRoute")),
                                                lambda o: o["spec"].update(hostnames=["10.1.2.3"])),
     "Hostnames cannot contain an IP"),
]


@pytest.mark.parametrize("name,make,needle", STRUCTURAL + CEL, ids=[c[0] for c in STRUCTURAL + CEL])
def test_a_broken_object_is_rejected_with_the_crd_message(name, make, needle):
    found = problems(make())
    assert any(needle in p for p in found), found


def test_defaults_are_applied_before_the_cel_rules():
    # the chart writes group/kind on backendRefs; without them the CRD defaults (group "", kind Service) make the
    # "Must have port for Service reference" rule apply all the same
    route = _http()
    b = route["spec"]["rules"][0]["backendRefs"][0]
    del b["group"], b["kind"], b["port"]
    assert any("Must have port" in p for p in problems(route))


def test_every_cel_rule_of_the_five_crds_is_implemented(capsys):
    """validators/crd/cel.py covers every `x-kubernetes-validations` rule of the served versions of the five
    CRDs; a CRD update that adds a rule shows up here (and in the TRAFFIC-016 evidence) as not checked."""
    crds = gateway_crds()
    unchecked = crds.unchecked_rules()
    total = sum(1 for c in crds.crds.values() for v in c["versions"].values() if v["served"]
                for _ in _rules_of(v["schema"]))
    with capsys.disabled():
        print(f"\nCEL rules: {total} in the served versions, {len(unchecked)} not checked"
              + "".join(f"\n  {u}" for u in unchecked))
    assert total > 100 and unchecked == []


def _rules_of(schema):
    from validators.crd.schema import _rules
    return list(_rules(schema, ""))


@pytest.mark.parametrize("setup,needle", [
    (lambda d: d / "missing", "is not a folder"),
    (lambda d: (d / "x.yaml").write_text("kind: ConfigMap\n") and d, "holds no CustomResourceDefinition"),
    (lambda d: (d / "x.yaml").write_text("a: [\n") and d, "cannot be read as YAML"),
    (lambda d: (d / "x.yaml").write_text("kind: CustomResourceDefinition\nspec: {group: g}\n") and d,
     "not a complete CustomResourceDefinition"),
])
def test_bad_crd_dir_is_an_input_error(tmp_path, setup, needle):
    with pytest.raises(InputError) as exc:
        load_dir(str(setup(tmp_path)))
    assert needle in str(exc.value)


# ---------------------------------------------------------------------------------------------
# TRAFFIC-016..024 on chart renders: pass, and fail with the ID on a mutated copy


def _route(objs, k):
    return kind(objs, k)


def tcproute_v1alpha2(objs):
    _route(objs, "TCPRoute")["apiVersion"] = "gateway.networking.k8s.io/v1alpha2"


def tcp_listener_with_hostname(objs):
    kind(objs, "Gateway")["spec"]["listeners"][1]["hostname"] = "mqtt.example.com"


def tls_listener_terminates(objs):
    lis = kind(objs, "Gateway")["spec"]["listeners"][2]
    lis["tls"] = {"mode": "Terminate", "certificateRefs": [{"name": "x"}]}


def tcproute_on_http_listener(objs):
    _route(objs, "TCPRoute")["spec"]["parentRefs"][0]["sectionName"] = "ws"


def sni_not_on_listener(objs):
    _route(objs, "TLSRoute")["spec"]["hostnames"] = ["mqtts.other.example"]


def missing_listener(objs):
    _route(objs, "HTTPRoute")["spec"]["parentRefs"][0]["sectionName"] = "websocket"


def listener_admits_other_namespace_only(objs):
    kind(objs, "Gateway")["spec"]["listeners"][0]["allowedRoutes"]["namespaces"] = {
        "from": "Selector", "selector": {"matchLabels": {"kubernetes.io/metadata.name": "elsewhere"}}}


def ws_route_to_mqtt_port(objs):
    _route(objs, "HTTPRoute")["spec"]["rules"][0]["backendRefs"][0]["port"] = 1883


def backend_wrong_service(objs):
    _route(objs, "TCPRoute")["spec"]["rules"][0]["backendRefs"][0]["name"] = f"{RELEASE}-vernemq-headless"


def backend_port_not_on_service(objs):
    _route(objs, "TLSRoute")["spec"]["rules"][0]["backendRefs"][0]["port"] = 9999


def ws_path_elsewhere(objs):
    _route(objs, "HTTPRoute")["spec"]["rules"][0]["matches"][0]["path"]["value"] = "/ws"


def ws_timeout_below_keepalive(objs):
    _route(objs, "HTTPRoute")["spec"]["rules"][0]["timeouts"] = {"request": "60s"}


def no_reference_grant(objs):
    objs.remove(kind(objs, "ReferenceGrant"))


def grant_for_other_kind(objs):
    kind(objs, "ReferenceGrant")["spec"]["from"] = [f for f in kind(objs, "ReferenceGrant")["spec"]["from"]
                                                     if f["kind"] != "TCPRoute"]


def no_gateway_rule_in_netpol(objs):
    np_ = next(o for o in objs if o["kind"] == "NetworkPolicy")
    np_["spec"]["ingress"] = [r for r in np_["spec"]["ingress"]
                              if not any("namespaceSelector" in f and "podSelector" in f for f in r.get("from", []))]


GATEWAY_MUTATIONS = [
    (GW_PROFILE, tcproute_v1alpha2, "TRAFFIC-016"),
    (GW_PROFILE, tcp_listener_with_hostname, "TRAFFIC-016"),
    (GW_PROFILE, tls_listener_terminates, "TRAFFIC-017"),
    (GW_PROFILE, tcproute_on_http_listener, "TRAFFIC-017"),
    (GW_PROFILE, missing_listener, "TRAFFIC-017"),
    (GW_PROFILE, sni_not_on_listener, "TRAFFIC-017"),
    (GW_PROFILE, listener_admits_other_namespace_only, "TRAFFIC-017"),
    (GW_PROFILE, ws_route_to_mqtt_port, "TRAFFIC-018"),
    (GW_PROFILE, backend_wrong_service, "TRAFFIC-018"),
    (GW_PROFILE, backend_port_not_on_service, "TRAFFIC-018"),
    (GW_PROFILE, ws_path_elsewhere, "TRAFFIC-019"),
    (GW_PROFILE, ws_timeout_below_keepalive, "TRAFFIC-019"),
    (XNS_PROFILE, no_reference_grant, "TRAFFIC-020"),
    (XNS_PROFILE, grant_for_other_kind, "TRAFFIC-020"),
    (GW_PROFILE, no_gateway_rule_in_netpol, "TRAFFIC-023"),
    (XNS_PROFILE, no_gateway_rule_in_netpol, "TRAFFIC-023"),
]


@pytest.mark.parametrize("profile,mutation,check_id", GATEWAY_MUTATIONS,
                         ids=[f"{p.name[:2]}-{m.__name__}-{c}" for p, m, c in GATEWAY_MUTATIONS])
def test_gateway_checks_pass_on_the_profile_and_fail_on_the_mutation(profile, mutation, check_id):
    objs = objects(profile)
    clean = plan(objs, RELEASE, NS, crds=gateway_crds())
    assert "pass" in [s.value for s in statuses(clean, check_id)] and check_id not in bad(clean)
    mutation(objs)
    assert check_id in bad(plan(objs, RELEASE, NS, crds=gateway_crds()))


def test_without_crd_dir_the_schema_check_skips_with_the_reason():
    report = plan(objects(GW_PROFILE), RELEASE, NS)
    (r,) = [r for r in report.results if r.check == "TRAFFIC-016"]
    assert r.status.value == "skip" and "--crd-dir" in r.message


def test_attached_gateway_outside_the_manifests_is_skipped_offline():
    report = plan(objects(AGC_PROFILE), RELEASE, NS, crds=gateway_crds())
    (r,) = [r for r in report.results if r.check == "TRAFFIC-017"]
    assert r.status.value == "skip" and "alb-infra/agc-gateway is not in the manifests" in r.message


def test_the_retired_ingress_nginx_warns_and_other_classes_do_not():
    objs = objects(CHART / "ci" / "30-ingress-nginx-values.yaml")
    report = plan(objs, RELEASE, NS)
    assert [s.value for s in statuses(report, "TRAFFIC-024")] == ["warn"]
    assert "2026-03-24" in next(r.message for r in report.results if r.check == "TRAFFIC-024")
    ing = kind(objs, "Ingress")
    ing["spec"]["ingressClassName"] = "traefik"
    assert [s.value for s in statuses(plan(objs, RELEASE, NS), "TRAFFIC-024")] == ["warn"]  # nginx annotations
    ing["metadata"]["annotations"] = {}
    assert [s.value for s in statuses(plan(objs, RELEASE, NS), "TRAFFIC-024")] == ["pass"]


# ---------------------------------------------------------------------------------------------
# live: route and Gateway status from the fake API server


def _served(profile, gw_ns_objects=()):
    objs = [o for o in objects(profile) if "helm.sh/hook" not in (o["metadata"].get("annotations") or {})]
    out = []
    for o in objs:
        if o["kind"] == "StatefulSet":
            out += running_statefulset(o, NS, f"{RELEASE}-vernemq")
        if o["kind"] in ("Service", "NetworkPolicy", "StatefulSet", "Gateway", "HTTPRoute", "TCPRoute", "TLSRoute",
                         "ReferenceGrant"):
            out.append(copy.deepcopy(o))
    out += [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": {
        "kubernetes.io/metadata.name": n}}} for n in (NS, "kube-system", "default", "envoy-gateway-system")]
    return out + list(gw_ns_objects)


def _with_status(objs, accepted=True, resolved=True, programmed=True, message="", listener_problems=None):
    for o in objs:
        if o["kind"] in ("HTTPRoute", "TCPRoute", "TLSRoute"):
            o["status"] = route_status([{k: v for k, v in r.items() if k not in ("group", "kind")}
                                        for r in o["spec"]["parentRefs"]],
                                       accepted=accepted, resolved=resolved, message=message)
        if o["kind"] == "Gateway":
            o["status"] = gateway_status(o["spec"]["listeners"], programmed=programmed,
                                         listener_problems=listener_problems)
    return objs


def live(capsys, tmp_path, objs, *faults):
    with FakeKube(objs) as kube:
        for path, code in faults:
            kube.fault(path, status=code)
        cfg = kube.write_kubeconfig(tmp_path / "kubeconfig", context="c")
        code = main(["cluster", "--kubeconfig", str(cfg), "--context", "c", "-n", NS, "--release", RELEASE,
                     "--format", "json"])
        paths = {p for _m, p, _q in kube.requests}
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, json.loads(out.out), paths


def _status(doc, cid):
    return sorted({r["status"] for r in doc["results"] if r["check"] == cid})


def test_live_accepted_routes_and_programmed_gateway_pass(capsys, tmp_path):
    code, doc, paths = live(capsys, tmp_path, _with_status(_served(GW_PROFILE)))
    assert code == 0, [r for r in doc["results"] if r["status"] not in ("pass", "skip")]
    for cid in ("TRAFFIC-017", "TRAFFIC-018", "TRAFFIC-019", "TRAFFIC-020", "TRAFFIC-021", "TRAFFIC-022",
                "TRAFFIC-023"):
        assert _status(doc, cid) == ["pass"], cid
    assert "/apis/gateway.networking.k8s.io/v1/httproutes" in paths
    assert _status(doc, "TRAFFIC-016") == ["skip"]


def test_live_route_not_accepted_fails_with_the_controllers_message(capsys, tmp_path):
    msg = "No listeners included by this parent ref allowed this attachment."
    objs = _with_status(_served(GW_PROFILE), accepted=False, message=msg)
    code, doc, _ = live(capsys, tmp_path, objs)
    assert code == 1
    fails = [r for r in doc["results"] if r["check"] == "TRAFFIC-021" and r["status"] == "fail"]
    assert len(fails) == 3 and all(msg in r["message"] and "NotAllowedByListeners" in r["message"] for r in fails)
    assert any(msg in c for c in fails[0]["evidence"]["conditions"])


def test_live_unresolved_backend_and_unreconciled_route_fail(capsys, tmp_path):
    objs = _with_status(_served(GW_PROFILE), resolved=False, message='Service "mqtt/t-vernemq" not found')
    kind(objs, "TCPRoute").pop("status")
    code, doc, _ = live(capsys, tmp_path, objs)
    msgs = {r["subject"].split()[1]: r["message"] for r in doc["results"]
            if r["check"] == "TRAFFIC-021" and r["status"] == "fail"}
    assert "BackendNotFound" in msgs[f"{NS}/{RELEASE}-vernemq-ws"]
    assert "no controller reported status" in msgs[f"{NS}/{RELEASE}-vernemq-mqtt"]


def test_live_gateway_not_programmed_or_bad_listener_fails(capsys, tmp_path):
    code, doc, _ = live(capsys, tmp_path, _with_status(_served(GW_PROFILE), programmed=False))
    assert code == 1 and _status(doc, "TRAFFIC-022") == ["fail"]
    assert "AddressNotAssigned" in next(r["message"] for r in doc["results"] if r["check"] == "TRAFFIC-022")
    objs = _with_status(_served(GW_PROFILE), listener_problems={"ws": 'Secret "mqtt-example-com-tls" not found'})
    code, doc, _ = live(capsys, tmp_path, objs)
    r = next(r for r in doc["results"] if r["check"] == "TRAFFIC-022")
    assert r["status"] == "fail" and "listener ws" in r["message"] and "InvalidCertificateRef" in r["message"]


def test_live_gateway_in_another_namespace_is_resolved_cluster_wide(capsys, tmp_path):
    """Profile 72 attaches to gateway-system/shared-gateway (the platform team's), routes live there too."""
    shared = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
              "metadata": {"name": "shared-gateway", "namespace": "gateway-system"},
              "spec": {"gatewayClassName": "istio", "listeners": [
                  {"name": "http", "protocol": "HTTP", "port": 80, "allowedRoutes": {"namespaces": {"from": "Same"}}},
                  {"name": "mqtt", "protocol": "TCP", "port": 1883, "allowedRoutes": {"namespaces": {"from": "Same"}}}]}}
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gateway-system"}}
    objs = _with_status(_served(XNS_PROFILE, [shared, ns]))
    code, doc, _ = live(capsys, tmp_path, objs)
    assert code == 0, [r for r in doc["results"] if r["status"] not in ("pass", "skip")]
    assert _status(doc, "TRAFFIC-017") == ["pass"] and _status(doc, "TRAFFIC-020") == ["pass"]
    shared["spec"]["listeners"][1]["protocol"] = "UDP"
    code, doc, _ = live(capsys, tmp_path, objs)
    assert code == 1 and "fail" in _status(doc, "TRAFFIC-017")


def test_live_cluster_without_gateway_api_skips_and_403_is_unknown(capsys, tmp_path):
    objs = _with_status(_served(GW_PROFILE))
    faults = [(f"/apis/gateway.networking.k8s.io/v1/{p}", 404) for p in ("gateways", "httproutes", "tcproutes",
                                                                        "tlsroutes")]
    code, doc, _ = live(capsys, tmp_path, objs, *faults)
    assert code == 0 and _status(doc, "TRAFFIC-017") == ["skip"]
    assert "Gateway API CRDs not installed" in next(r["message"] for r in doc["results"] if r["check"] == "TRAFFIC-021")
    code, doc, _ = live(capsys, tmp_path, objs, ("/apis/gateway.networking.k8s.io/v1/httproutes", 403))
    assert code == 1 and _status(doc, "TRAFFIC-019") == ["unknown"]


def live_args(capsys, tmp_path, objs, *args):
    with FakeKube(objs) as kube:
        cfg = kube.write_kubeconfig(tmp_path / "kubeconfig", context="c")
        code = main(["cluster", "--kubeconfig", str(cfg), "--context", "c", "-n", NS, "--release", RELEASE,
                     "--format", "json", *args])
        paths = [p for _m, p, _q in kube.requests]
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, json.loads(out.out), paths


def test_no_gateway_api_reads_none_of_it_and_skips(capsys, tmp_path):
    code, doc, paths = live_args(capsys, tmp_path, _with_status(_served(GW_PROFILE)), "--no-gateway-api")
    assert not [p for p in paths if "gateway.networking.k8s.io" in p]
    for cid in ("TRAFFIC-017", "TRAFFIC-020", "TRAFFIC-021", "TRAFFIC-022", "TRAFFIC-023"):
        (r,) = [r for r in doc["results"] if r["check"] == cid]
        assert r["status"] == "skip" and "--no-gateway-api" in r["message"], r


def _selector_gateway(match_labels):
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "shared-gateway", "namespace": "gateway-system"},
            "spec": {"gatewayClassName": "istio", "listeners": [
                {"name": n, "protocol": proto, "port": port, "allowedRoutes": {"namespaces": {
                    "from": "Selector", "selector": {"matchLabels": match_labels}}}}
                for n, proto, port in (("http", "HTTP", 80), ("mqtt", "TCP", 1883))]}}


def test_namespace_selector_without_namespace_labels_is_unknown_unless_it_names_the_namespace(capsys, tmp_path):
    """--read-scope namespace reads no Namespaces: a listener admitting routes by a namespace label other than
    kubernetes.io/metadata.name cannot be judged (unknown, saying why); by that label it can."""
    scope = ("--read-scope", "namespace", "--route-namespace", "gateway-system")
    objs = _with_status(_served(XNS_PROFILE, [_selector_gateway({"shared-gateway-access": "true"})]))
    _, doc, _ = live_args(capsys, tmp_path, objs, *scope)
    rs = [r for r in doc["results"] if r["check"] == "TRAFFIC-017"]
    assert rs and {r["status"] for r in rs} == {"unknown"}, rs
    assert all("were not read" in r["message"] and "clusterRead" in r["message"] for r in rs)
    _, doc, _ = live_args(capsys, tmp_path, objs)  # cluster-wide: the namespace has no such label
    assert {r["status"] for r in doc["results"] if r["check"] == "TRAFFIC-017"} == {"fail"}
    objs = _with_status(_served(XNS_PROFILE, [_selector_gateway({"kubernetes.io/metadata.name": "gateway-system"})]))
    _, doc, _ = live_args(capsys, tmp_path, objs, *scope)
    assert {r["status"] for r in doc["results"] if r["check"] == "TRAFFIC-017"} == {"pass"}


# ---------------------------------------------------------------------------------------------
# plan on the first try: namespace and release from the manifests


def _helm(*args):
    out = subprocess.run([HELM, "template", "vmq", str(CHART), "-n", "vmq", *args], capture_output=True, text=True,
                         timeout=120, check=True)
    return out.stdout


def _plan_stdin(monkeypatch, capsys, text, *argv):
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    code = main(["plan", "-f", "-", "--format", "json", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("profile", [None, *PROFILES], ids=["defaults", *[p.name for p in PROFILES]])
def test_helm_template_piped_into_plan_passes_with_no_other_flag(monkeypatch, capsys, profile):
    text = _helm(*(["-f", str(profile)] if profile else []))
    code, out, err = _plan_stdin(monkeypatch, capsys, text)
    doc = json.loads(out)
    assert code == 0, [r for r in doc["results"] if r["status"] in ("fail", "unknown")]
    assert doc["meta"]["namespace"] == "vmq" and doc["meta"]["release"] == "vmq"
    assert "from the manifests" in doc["meta"]["inferred"]["namespace"]


def test_plan_with_crd_dir_validates_the_gateway_objects(monkeypatch, capsys):
    code, out, _ = _plan_stdin(monkeypatch, capsys, _helm("-f", str(GW_PROFILE)), "--crd-dir", str(CRD_DIR))
    doc = json.loads(out)
    assert code == 0 and {r["status"] for r in doc["results"] if r["check"] == "TRAFFIC-016"} == {"pass"}
    broken = _helm("-f", str(GW_PROFILE)).replace("gateway.networking.k8s.io/v1\nkind: TCPRoute",
                                                  "gateway.networking.k8s.io/v1alpha2\nkind: TCPRoute")
    code, out, _ = _plan_stdin(monkeypatch, capsys, broken, "--crd-dir", str(CRD_DIR))
    assert code == 1 and "not served" in json.dumps(json.loads(out)["results"])
    code, _out, err = _plan_stdin(monkeypatch, capsys, broken, "--crd-dir", str(CRD_DIR / "nope"))
    assert code == 2 and "--crd-dir" in err and "not a folder" in err


def test_plan_stops_when_the_manifests_disagree(monkeypatch, capsys):
    other_release = subprocess.run([HELM, "template", "other", str(CHART), "-n", "vmq"], capture_output=True,
                                   text=True, timeout=120, check=True).stdout
    code, _out, err = _plan_stdin(monkeypatch, capsys, _helm() + "\n---\n" + other_release)
    assert code == 2 and "--release" in err and "other, vmq" in err
    other_ns = subprocess.run([HELM, "template", "vmq", str(CHART), "-n", "mqtt2"], capture_output=True,
                              text=True, timeout=120, check=True).stdout
    code, _out, err = _plan_stdin(monkeypatch, capsys, _helm() + "\n---\n" + other_ns)
    assert code == 2 and "--namespace" in err and "mqtt2, vmq" in err
    code, out, _ = _plan_stdin(monkeypatch, capsys, _helm() + "\n---\n" + other_ns, "-n", "mqtt2")
    assert code == 0 and json.loads(out)["meta"]["namespace"] == "mqtt2"


@pytest.mark.parametrize("value,needle", [
    (["{gateway}/app=x"], "unknown placeholder"),
    (["not a source"], "neither an IP/CIDR"),
    ("gw-ns/app=x", "must be a list"),
])
def test_bad_gateway_sources_option_is_an_input_error(capsys, tmp_path, value, needle):
    pol = tmp_path / "policy.json"
    pol.write_text(json.dumps({"checks": {"TRAFFIC-023": {"options": {"gateway_sources": value}}}}))
    code = main(["plan", "-f", str(ROOT / "tests" / "traffic" / "manifests" / "release.yaml"), "--policy", str(pol)])
    assert code == 2 and needle in capsys.readouterr().err


@pytest.mark.parametrize("route,field", [
    ("spec: {parentRefs: gw, rules: []}", "spec.parentRefs"),
    ("spec: {parentRefs: [{name: gw}], rules: [{backendRefs: [{name: s, port: ws}]}]}", "spec.rules[0].backendRefs[0].port"),
    ("spec: {parentRefs: [{}], rules: []}", "spec.parentRefs[0].name"),
    ("spec: {rules: [{timeouts: {request: 3600}}]}", "spec.rules[0].timeouts.request"),
])
def test_malformed_gateway_api_objects_are_exit_2_naming_the_field(monkeypatch, capsys, route, field):
    text = f"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r}}\n{route}\n"
    code, _out, err = _plan_stdin(monkeypatch, capsys, text)
    assert code == 2 and f"(HTTPRoute default/r): {field}" in err and "Traceback" not in err
