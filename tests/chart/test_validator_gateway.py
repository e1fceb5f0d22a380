"""The chart's validator reads what it checks with the RBAC the chart gives it: the Gateway API objects of the
release namespaced (routes where the chart puts them, the parent Gateway by name, a Role in gateway.namespace /
gateway.routeNamespace), cluster-wide only with validator.rbac.clusterRead; and the checks it cannot run
without cluster-wide reads (TRAFFIC-011..014, -023) report `skip`, so the default install raises no standing
alert.

The cluster is tests/fakekube.py serving the rendered objects, the rendered Roles and RoleBindings included,
and the validator runs with a ServiceAccount token of its own ServiceAccount, which the fake API server
authorizes against those Roles like the API server's RBAC; the arguments are the rendered Deployment's."""

from __future__ import annotations

import copy
import json
import shlex
import shutil
import subprocess

import pytest
import yaml

from tests.fakekube import FakeKube, gateway_status, route_status, running_statefulset
from validators.cli import main

from .conftest import FULLNAME, NAMESPACE, find, find_all

VALIDATOR = f"{FULLNAME}-validator"
GROUP = "gateway.networking.k8s.io"
XNS = "72-gateway-attach-crossns"
CREATE = "70-gateway"
NEEDS_NAMESPACE_LABELS = ("TRAFFIC-011", "TRAFFIC-012", "TRAFFIC-013", "TRAFFIC-014", "TRAFFIC-023")
GATEWAY_CHECKS = ("TRAFFIC-017", "TRAFFIC-018", "TRAFFIC-019", "TRAFFIC-020", "TRAFFIC-021", "TRAFFIC-022")
SHARED = {"apiVersion": f"{GROUP}/v1", "kind": "Gateway", "metadata": {"name": "shared-gateway",
                                                                       "namespace": "gateway-system"},
          "spec": {"gatewayClassName": "istio", "listeners": [
              {"name": "http", "protocol": "HTTP", "port": 80, "allowedRoutes": {"namespaces": {"from": "Same"}}},
              {"name": "mqtt", "protocol": "TCP", "port": 1883, "allowedRoutes": {"namespaces": {"from": "Same"}}}]}}


def validator_docs(renderer, profile, *sets):
    return renderer.docs(profile, sets=["validator.enabled=true", *sets])


def cluster_args(docs) -> list[str]:
    """The options the rendered Deployment gives `cluster` (``--cluster-args``, every occurrence)."""
    (c,) = find(docs, "Deployment", VALIDATOR)["spec"]["template"]["spec"]["containers"]
    args = c["args"]
    return [a for i, flag in enumerate(args) if flag == "--cluster-args" for a in shlex.split(args[i + 1])]


def rules_in(docs, namespace):
    """Every rule of the validator's Roles in ``namespace`` (as (group, resource) -> rule)."""
    out = {}
    for role in find_all(docs, "Role"):
        md = role["metadata"]
        if md["namespace"] == namespace and md["labels"].get("app.kubernetes.io/component") == "validator":
            for r in role["rules"]:
                for g in r["apiGroups"]:
                    for res in r["resources"]:
                        out[(g, res)] = r
    return out


def served(docs, extra=()):
    """The rendered objects as a cluster would hold them: pods of the StatefulSet Running and Ready,
    EndpointSlices of the client Service, Gateway API status as a controller writes it, the namespaces."""
    out = []
    for o in docs:
        if "helm.sh/hook" in (o["metadata"].get("annotations") or {}):
            continue
        o = copy.deepcopy(o)
        if o["kind"] == "StatefulSet":
            out += running_statefulset(o, NAMESPACE, FULLNAME)
        if o["kind"] in ("HTTPRoute", "TCPRoute", "TLSRoute"):
            o["status"] = route_status([{k: v for k, v in r.items() if k not in ("group", "kind")}
                                        for r in o["spec"]["parentRefs"]])
        if o["kind"] == "Gateway":
            o["status"] = gateway_status(o["spec"]["listeners"])
        if o["kind"] in ("Service", "NetworkPolicy", "StatefulSet", "Gateway", "HTTPRoute", "TCPRoute", "TLSRoute",
                         "ReferenceGrant", "Role", "RoleBinding", "ServiceAccount"):
            out.append(o)
    for o in extra:
        o = copy.deepcopy(o)
        if o["kind"] == "Gateway":
            o["status"] = gateway_status(o["spec"]["listeners"])
        out.append(o)
    out += [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": {
        "kubernetes.io/metadata.name": n}}} for n in (NAMESPACE, "kube-system", "default", "gateway-system",
                                                     "envoy-gateway-system")]
    return out


def run_cluster(capsys, tmp_path, objects, args, mutate=None):
    """`vmq-validate cluster` as the validator's ServiceAccount with ``args``; (exit code, report, requests)."""
    with FakeKube(objects) as kube:
        if mutate:
            mutate(kube)
        cfg = kube.write_kubeconfig(tmp_path / "kubeconfig", context="c", token=kube.sa_token(NAMESPACE, VALIDATOR))
        code = main(["cluster", "--kubeconfig", str(cfg), "--context", "c", "-n", NAMESPACE, "--release", "mqtt",
                     "--format", "json", *args])
        requests = list(kube.requests)
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, json.loads(out.out), requests


def by_check(doc, cid):
    return [r for r in doc["results"] if r["check"] == cid]


def statuses(doc, cid):
    return sorted({r["status"] for r in by_check(doc, cid)})


# ------------------------------------------------------------------------------------------- rendering


def test_without_gateway_api_nothing_of_it_is_granted_or_read(renderer):
    docs = validator_docs(renderer, "80-validator")
    assert not [r for rules in (rules_in(docs, NAMESPACE),) for (g, _res) in rules if g == GROUP]
    assert cluster_args(docs) == ["--read-scope", "namespace", "--no-gateway-api"]
    assert {d["metadata"]["namespace"] for d in find_all(docs, "Role")} == {NAMESPACE}


def test_attached_gateway_elsewhere_gets_a_role_there_with_only_its_reads(renderer):
    docs = validator_docs(renderer, XNS)
    assert cluster_args(docs) == ["--read-scope", "namespace", "--route-namespace", "gateway-system"]
    home = rules_in(docs, NAMESPACE)
    assert home[(GROUP, "referencegrants")]["verbs"] == ["get", "list"]
    assert {res for g, res in home if g == GROUP} == {"referencegrants", "httproutes", "tcproutes", "tlsroutes"}, \
        "routes of the release namespace, not the Gateway, which lives elsewhere"
    there = rules_in(docs, "gateway-system")
    assert set(there) == {(GROUP, "httproutes"), (GROUP, "tcproutes"), (GROUP, "tlsroutes"), (GROUP, "gateways")}
    assert there[(GROUP, "httproutes")]["verbs"] == ["get", "list"]
    gw = there[(GROUP, "gateways")]
    assert gw["verbs"] == ["get"] and gw["resourceNames"] == ["shared-gateway"]
    rb = next(d for d in find_all(docs, "RoleBinding") if d["metadata"]["namespace"] == "gateway-system"
              and "validator" in d["metadata"]["name"])
    assert rb["subjects"] == [{"kind": "ServiceAccount", "name": VALIDATOR, "namespace": NAMESPACE}]
    assert rb["roleRef"]["name"] == f"{NAMESPACE}-{VALIDATOR}"
    assert not find_all(docs, "ClusterRole")


def test_created_gateway_is_read_by_name_in_the_release_namespace(renderer):
    docs = validator_docs(renderer, CREATE)
    assert cluster_args(docs) == ["--read-scope", "namespace"]
    home = rules_in(docs, NAMESPACE)
    assert {res for g, res in home if g == GROUP} == {"httproutes", "tcproutes", "tlsroutes", "referencegrants",
                                                      "gateways"}
    assert home[(GROUP, "gateways")]["resourceNames"] == [FULLNAME]
    assert {d["metadata"]["namespace"] for d in find_all(docs, "Role")} == {NAMESPACE}


def test_cluster_read_reads_the_gateway_api_cluster_wide_and_renders_no_foreign_role(renderer):
    docs = validator_docs(renderer, XNS, "validator.rbac.clusterRead=true")
    assert cluster_args(docs) == []
    cr = find(docs, "ClusterRole")
    assert {"apiGroups": [GROUP], "resources": ["gateways", "httproutes", "tcproutes", "tlsroutes"],
            "verbs": ["get", "list"]} in cr["rules"]
    assert {d["metadata"]["namespace"] for d in find_all(docs, "Role")} == {NAMESPACE}
    assert {res for g, res in rules_in(docs, NAMESPACE) if g == GROUP} == {"referencegrants"}


def test_routes_made_outside_the_chart(renderer):
    docs = validator_docs(renderer, "80-validator", "validator.rbac.gatewayAPI=true")
    assert cluster_args(docs) == ["--read-scope", "namespace"]
    home = rules_in(docs, NAMESPACE)
    assert home[(GROUP, "gateways")]["verbs"] == ["get"] and "resourceNames" not in home[(GROUP, "gateways")]
    assert home[(GROUP, "httproutes")]["verbs"] == ["get", "list"]


# ------------------------------------------------------------------------- reading with the rendered RBAC


@pytest.mark.parametrize("profile,extra", [(XNS, [SHARED]), (CREATE, [])], ids=["attach-crossns", "create"])
def test_namespaced_reads_pass_with_the_rendered_roles(renderer, capsys, tmp_path, profile, extra):
    docs = validator_docs(renderer, profile)
    code, doc, requests = run_cluster(capsys, tmp_path, served(docs, extra), cluster_args(docs))
    bad = [(r["check"], r["status"], r["message"]) for r in doc["results"] if r["status"] not in ("pass", "skip")]
    assert code == 0 and not bad, bad
    for cid in GATEWAY_CHECKS:
        assert statuses(doc, cid) == ["pass"], (cid, by_check(doc, cid))
    for cid in NEEDS_NAMESPACE_LABELS:
        (r,) = by_check(doc, cid)
        assert r["status"] == "skip" and "validator.rbac.clusterRead" in r["message"], r
    paths = [p for _m, p, _q in requests]
    assert not [p for p in paths if p.startswith(f"/apis/{GROUP}/v1/") and "/namespaces/" not in p], \
        "nothing of the Gateway API is read cluster-wide"
    assert "/api/v1/namespaces" not in paths and "/api/v1/nodes" not in paths
    outside = {"gateway-system"} if extra else set()
    assert {p.split("/namespaces/", 1)[1].split("/", 1)[0] for p in paths if "/namespaces/" in p} <= \
        {NAMESPACE, *outside}, "nothing is read outside the namespaces the Roles cover (no 403 in the audit log)"
    gw_ns, gw_name = ("gateway-system", "shared-gateway") if extra else (NAMESPACE, FULLNAME)
    assert paths.count(f"/apis/{GROUP}/v1/namespaces/{gw_ns}/gateways/{gw_name}") == 1, "one GET per Gateway"


def _drop_rule(kube, namespace, resource):
    """Remove ``resource`` from the validator's Role in ``namespace`` (a Role without that rule)."""
    for (g, kind, ns, _name), obj in list(kube._objects.items()):  # noqa: SLF001 - the test's own fake
        if g == "rbac.authorization.k8s.io" and kind == "Role" and ns == namespace and "validator" in _name:
            obj["rules"] = [r for r in obj["rules"] if resource not in r["resources"]]


def test_a_missing_gateway_rule_is_unknown_naming_verb_resource_and_namespace(renderer, capsys, tmp_path):
    docs = validator_docs(renderer, XNS)
    code, doc, _ = run_cluster(capsys, tmp_path, served(docs, [SHARED]), cluster_args(docs),
                               mutate=lambda k: _drop_rule(k, "gateway-system", "gateways"))
    for cid in ("TRAFFIC-017", "TRAFFIC-022"):
        rs = by_check(doc, cid)
        assert rs and {r["status"] for r in rs} == {"unknown"}, (cid, rs)
        for r in rs:
            assert "403 Forbidden" in r["message"] and "verb get" in r["message"], r["message"]
            assert "resource gateways" in r["message"] and "namespace gateway-system" in r["message"], r["message"]
    # the rest of the Gateway API checks still judge the routes they could read
    for cid in ("TRAFFIC-018", "TRAFFIC-019", "TRAFFIC-020", "TRAFFIC-021"):
        assert statuses(doc, cid) == ["pass"], cid
    assert code == 1, "an unknown error-severity check is a finding"


def test_a_missing_route_rule_is_unknown_naming_verb_resource_and_namespace(renderer, capsys, tmp_path):
    docs = validator_docs(renderer, XNS)
    _, doc, _ = run_cluster(capsys, tmp_path, served(docs, [SHARED]), cluster_args(docs),
                            mutate=lambda k: _drop_rule(k, "gateway-system", "httproutes"))
    for cid in GATEWAY_CHECKS:
        (r,) = by_check(doc, cid)
        assert r["status"] == "unknown", (cid, r)
        assert "verb list, resource httproutes, API group gateway.networking.k8s.io, namespace gateway-system" \
            in r["message"], r["message"]


def test_a_gateway_that_is_gone_still_fails(renderer, capsys, tmp_path):
    """A 404 on the Gateway's GET is not a permission problem: the routes point at nothing."""
    docs = validator_docs(renderer, XNS)
    code, doc, _ = run_cluster(capsys, tmp_path, served(docs), cluster_args(docs))
    assert code == 1 and statuses(doc, "TRAFFIC-022") == ["fail"]
    assert "does not exist" in by_check(doc, "TRAFFIC-022")[0]["message"]


def test_without_read_scope_the_same_roles_make_the_checks_unknown(renderer, capsys, tmp_path):
    """What the chart's arguments avoid: cluster-wide reads under these Roles are all 403."""
    docs = validator_docs(renderer, XNS)
    _, doc, _ = run_cluster(capsys, tmp_path, served(docs, [SHARED]), [])
    for cid in (*GATEWAY_CHECKS, *NEEDS_NAMESPACE_LABELS):
        assert "unknown" in statuses(doc, cid), cid
    assert "cluster-wide" in by_check(doc, "TRAFFIC-021")[0]["message"]


def test_route_namespace_is_checked(capsys):
    assert main(["cluster", "--context", "c", "-n", NAMESPACE, "--release", "r", "--read-scope", "namespace",
                 "--route-namespace", "Not_A_Namespace"]) == 2
    assert "--route-namespace" in capsys.readouterr().err
    assert main(["cluster", "--context", "c", "-n", NAMESPACE, "--release", "r", "--route-namespace", "gw"]) == 2
    assert "--read-scope namespace" in capsys.readouterr().err


# ----------------------------------------------------------------------------- alerts of the default install

LABELS = {"job": VALIDATOR, "namespace": NAMESPACE, "instance": "10.244.3.7:9910", "pod": f"{VALIDATOR}-x"}


def _watch_series(tmp_path, objects, args) -> list[tuple[str, dict, float]]:
    """One `watch` cycle (cluster only) with the chart's arguments, as the validator's ServiceAccount."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from validators.cli import build_parser
    from validators.commands.watch import State, WatchCollector, build_plan, run_cycle

    with FakeKube(objects) as kube:
        cfg = kube.write_kubeconfig(tmp_path / "kubeconfig", context="c", token=kube.sa_token(NAMESPACE, VALIDATOR))
        i = args.index("--in-cluster")
        argv = [*args[:i], "--kubeconfig", str(cfg), "--context", "c", *args[i + 1:], "--commands", "cluster"]
        parser, _ = build_parser()
        plan = build_plan(parser.parse_args(argv))
        cycle = run_cycle(plan)
    assert [r.outcome for r in cycle.runs] in (["ok"], ["findings"]), [r.error for r in cycle.runs]
    state = State(plan)
    state.update(cycle)
    reg = CollectorRegistry(auto_describe=False)
    reg.register(WatchCollector(state))
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(generate_latest(reg).decode())
            for s in f.samples]


def _promtool_test(series, expected_warnings) -> dict:
    lines = []
    for name, labels, value in series:
        inner = ", ".join(f'{k}="{v}"' for k, v in sorted({**LABELS, **labels}.items()))
        lines.append({"series": f"{name}{{{inner}}}", "values": f"{value:g}x40"})
    warn = [{"exp_labels": {"severity": "warning", "namespace": NAMESPACE, "check": c, "subject": s, "status": st},
             "exp_annotations": {
                 "summary": f"VerneMQ check {c} is {st} on {s}",
                 "description": f"vmq-validate watch has reported {c} as {st} for {s} for 15m "
                                "(unknown: a fact could not be collected, see /report)."}}
            for c, s, st in expected_warnings]
    return {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": lines, "alert_rule_test": [
            {"eval_time": "30m", "alertname": "VerneMQValidatorFinding", "exp_alerts": warn},
            {"eval_time": "30m", "alertname": "VerneMQValidatorCriticalFinding", "exp_alerts": []}]}]}


def _promtool(tmp_path, docs, test) -> subprocess.CompletedProcess:
    tool = shutil.which("promtool")
    if not tool:
        pytest.skip("promtool is not installed (Debian package prometheus, scripts/bootstrap.sh)")
    rule = find(docs, "PrometheusRule", VALIDATOR)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False))
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(test, sort_keys=False))
    return subprocess.run([tool, "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True)


@pytest.mark.parametrize("profile,extra", [("80-validator", []), (XNS, [SHARED])], ids=["default", "gateway"])
def test_the_default_validator_raises_no_standing_alert(renderer, tmp_path, profile, extra):
    """The chart's validator without rbac.clusterRead, one run against a healthy release: every series is
    pass or skip (TRAFFIC-011..014 and -023 skip with the reason), and promtool confirms that neither finding
    alert fires after their `for:`."""
    docs = validator_docs(renderer, profile)
    (c,) = find(docs, "Deployment", VALIDATOR)["spec"]["template"]["spec"]["containers"]
    series = _watch_series(tmp_path, served(docs, extra), c["args"])
    current = {(lb["check"], lb["status"]) for n, lb, v in series if n == "vmq_validate_check_status" and v == 1}
    assert {st for _c, st in current} <= {"pass", "skip"}, sorted(current)
    for cid in NEEDS_NAMESPACE_LABELS:
        assert (cid, "skip") in current, cid
    if extra:
        for cid in GATEWAY_CHECKS:
            assert (cid, "pass") in current, cid
    proc = _promtool(tmp_path, docs, _promtool_test(series, []))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]


def test_the_alert_test_sees_unknown_checks(renderer, tmp_path):
    """The same run without the chart's --cluster-args (cluster-wide reads under the namespaced Role): the
    NetworkPolicy checks are unknown, and the alert test expecting silence fails, while one expecting a
    warning per unknown series passes."""
    docs = validator_docs(renderer, "80-validator")
    (c,) = find(docs, "Deployment", VALIDATOR)["spec"]["template"]["spec"]["containers"]
    args = list(c["args"])
    i = args.index("--cluster-args")
    del args[i:i + 2]
    series = _watch_series(tmp_path, served(docs), args)
    unknown = sorted((lb["check"], lb["subject"], lb["status"]) for n, lb, v in series
                     if n == "vmq_validate_check_status" and v == 1 and lb["status"] == "unknown")
    assert {cid for cid, _s, _st in unknown} >= set(NEEDS_NAMESPACE_LABELS[:4])
    assert _promtool(tmp_path, docs, _promtool_test(series, [])).returncode != 0
    proc = _promtool(tmp_path, docs, _promtool_test(series, unknown))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
