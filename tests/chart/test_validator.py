"""The chart's validator (`validator.enabled`, profile ci/80-validator): the Deployment running
`vmq-validate watch`, its least-privilege Role, the NetworkPolicies (checked with the repository's own
NetworkPolicy evaluator), the ServiceMonitor, the Grafana row, and the PrometheusRule under promtool, fed
with the series `watch` produced against the lab (tests/fixtures/watch/series.json, recorded by
tests/watch/test_lab.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from validators.cli import main

from .conftest import FULLNAME, NAMESPACE, HelmError, find, find_all

ROOT = Path(__file__).resolve().parents[2]
SERIES = ROOT / "tests" / "fixtures" / "watch" / "series.json"
PROFILE = "80-validator"
VALIDATOR = f"{FULLNAME}-validator"


@pytest.fixture(scope="module")
def docs(renderer):
    return renderer.docs(PROFILE)


def test_off_by_default(default_docs):
    assert not [d for d in default_docs if "validator" in d["metadata"]["name"]]


def test_deployment_runs_watch_restricted(docs):
    dep = find(docs, "Deployment", VALIDATOR)
    spec = dep["spec"]["template"]["spec"]
    assert dep["spec"]["replicas"] == 1 and spec["serviceAccountName"] == VALIDATOR
    (c,) = spec["containers"]
    assert c["image"] == "vernemq-toolkit/vmq-validators:0.1.0"
    args = c["args"]
    assert args[:2] == ["watch", "--in-cluster"] and args[args.index("--namespace") + 1] == NAMESPACE
    assert args[args.index("--distribution-args") + 1] == "--transport direct"
    assert args[args.index("--listen") + 1] == "0.0.0.0:9910"
    sc, psc = c["securityContext"], spec["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["runAsNonRoot"] and psc["runAsNonRoot"]
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"} and psc["runAsUser"] != 0
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # the validator is not a VerneMQ pod: the broker's StatefulSet and Services never select it
    labels = dep["spec"]["template"]["metadata"]["labels"]
    sts = find(docs, "StatefulSet", FULLNAME)
    assert not sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for svc in find_all(docs, "Service"):
        if svc["metadata"]["name"] != VALIDATOR:
            assert not svc["spec"]["selector"].items() <= labels.items(), svc["metadata"]["name"]


def test_watch_accepts_the_rendered_arguments(docs, capsys):
    """The chart's args parse as a watch plan (bad args would crash-loop the pod)."""
    from validators.cli import build_parser
    from validators.commands.watch import build_plan

    (c,) = find(docs, "Deployment", VALIDATOR)["spec"]["template"]["spec"]["containers"]
    parser, _ = build_parser()
    plan = build_plan(parser.parse_args(c["args"]))
    assert plan.commands == ["cluster", "distribution", "clients"] and plan.interval == 60
    assert plan.namespaces["distribution"].transport == "direct" and plan.listen == ("0.0.0.0", 9910)


def _rules(role):
    return {(tuple(r["apiGroups"]), tuple(r["resources"])): r for r in role["rules"]}


def test_role_is_least_privilege(docs):
    role = find(docs, "Role", VALIDATOR)
    rules = _rules(role)
    for r in role["rules"]:
        assert set(r["verbs"]) <= {"get", "list"}, r  # read-only without exec
    secrets = rules[(("",), ("secrets",))]
    assert secrets["verbs"] == ["get"]
    assert secrets["resourceNames"] == [f"{FULLNAME}-erlang-cookie", f"{FULLNAME}-api-key"]
    assert not any("pods/exec" in r["resources"] for r in role["rules"])
    resources = {res for r in role["rules"] for res in r["resources"]}
    assert resources == {"pods", "services", "endpoints", "endpointslices", "networkpolicies", "ingresses",
                         "statefulsets", "secrets"}
    rb = find(docs, "RoleBinding", VALIDATOR)
    assert rb["subjects"] == [{"kind": "ServiceAccount", "name": VALIDATOR, "namespace": NAMESPACE}]
    assert not find_all(docs, "ClusterRole")


def test_pods_exec_only_with_kube_exec_and_only_on_the_broker_pods(renderer):
    docs = renderer.docs(PROFILE, sets=["validator.transport=kube-exec", "validator.rbac.podsExec=true"])
    role = find(docs, "Role", VALIDATOR)
    (ex,) = [r for r in role["rules"] if "pods/exec" in r["resources"]]
    assert ex["resourceNames"] == [f"{FULLNAME}-{i}" for i in range(3)]
    (c,) = find(docs, "Deployment", VALIDATOR)["spec"]["template"]["spec"]["containers"]
    assert "--transport kube-exec" in c["args"]
    with pytest.raises(HelmError, match="validator.rbac.podsExec"):
        renderer.docs(PROFILE, sets=["validator.transport=kube-exec"])
    with pytest.raises(HelmError, match="validator.rbac.podsExec"):
        renderer.docs(PROFILE, sets=["validator.rbac.podsExec=true"])
    with pytest.raises(HelmError, match="transport"):
        renderer.docs(PROFILE, sets=["validator.transport=ssh"])


def test_cluster_read_is_opt_in(renderer):
    docs = renderer.docs(PROFILE, sets=["validator.rbac.clusterRead=true"])
    cr = find(docs, "ClusterRole")
    assert cr["rules"] == [{"apiGroups": [""], "resources": ["namespaces", "nodes"], "verbs": ["get", "list"]}]


def _reach(rendered: Path, src: str, dst: str, port: int) -> int:
    return main(["reachability", "-f", str(rendered), "-n", NAMESPACE, "--from", src, "--to", dst,
                 "--port", str(port)])


@pytest.mark.parametrize("transport,open_ports", [("direct", (4369, 9100, 9109, 44053, 8888)),
                                                  ("kube-exec", (8888,))])
def test_network_policies_open_exactly_the_checks_ports(renderer, tmp_path, capsys, transport, open_ports):
    sets = [f"validator.transport={transport}"] + (["validator.rbac.podsExec=true"] if transport == "kube-exec"
                                                   else [])
    rendered = tmp_path / "r.yaml"
    rendered.write_text(renderer.text(PROFILE, sets=sets))
    v, b = f"{NAMESPACE}/{VALIDATOR}", f"{NAMESPACE}/{FULLNAME}-0"
    for port in open_ports:  # the validator's egress and the broker's ingress both allow it
        assert _reach(rendered, v, b, port) == 0, (port, capsys.readouterr().out)
    for port in {4369, 9100, 44053, 1883, 8080, 22, 5432} - set(open_ports):
        assert _reach(rendered, v, b, port) == 1, (port, capsys.readouterr().out)
    # nobody but the monitoring namespace reaches the validator, and only on its metrics port
    assert _reach(rendered, b, v, 9910) == 1
    assert _reach(rendered, "203.0.113.7", v, 9910) == 1
    assert _reach(rendered, b, v, 22) == 1
    # an outside address is no peer of the validator (egress only to DNS, the API ports and the broker)
    assert _reach(rendered, v, "203.0.113.7", 5432) == 1
    # the broker's own pod-to-pod rules are untouched
    assert _reach(rendered, b, f"{NAMESPACE}/{FULLNAME}-1", 4369) == 0
    capsys.readouterr()


def test_service_monitor_and_dashboard(docs):
    sm = find(docs, "ServiceMonitor", VALIDATOR)
    svc = find(docs, "Service", VALIDATOR)
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["endpoints"][0]["port"] == svc["spec"]["ports"][0]["name"] == "metrics"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    dash = json.loads(find(docs, "ConfigMap", f"{FULLNAME}-dashboard")["data"]["vernemq.json"])
    row = [p for p in dash["panels"] if p["type"] == "row" and "vmq-validate" in p["title"]]
    assert row
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p.get("targets", []))
    for metric in ("vmq_validate_check_status", "vmq_validate_findings", "vmq_validate_last_run_timestamp_seconds",
                   "vmq_validate_collection_errors_total"):
        assert metric in exprs


# ------------------------------------------------------------------------------------------ promtool
LABELS = {"job": VALIDATOR, "namespace": NAMESPACE, "instance": "10.244.3.7:9910", "pod": f"{VALIDATOR}-x"}
HEALTHY, DOWN = 5, 40  # minutes of each recorded phase


def _series_line(name, labels) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted({**LABELS, **labels}.items()))
    return f"{name}{{{inner}}}"


def promtool_tests() -> dict:
    """promtool unit tests from the recorded series: healthy for 5 minutes, then node 1 down for 40."""
    rec = json.loads(SERIES.read_text())
    phases = rec["phases"]
    keys = {}
    for phase in ("healthy", "node_down"):
        for d in phases[phase]:
            keys.setdefault((d["name"], tuple(sorted(d["labels"].items()))), {})[phase] = d["value"]
    input_series = []
    for (name, labels), vals in sorted(keys.items()):
        h, d = vals.get("healthy"), vals.get("node_down")
        values = " ".join([("_" if h is None else f"{h:g}")] * HEALTHY + [("_" if d is None else f"{d:g}")] * DOWN)
        input_series.append({"series": _series_line(name, dict(labels)), "values": values})

    def current(phase, pred):
        return sorted({(d["labels"]["check"], d["labels"]["subject"], d["labels"]["status"])
                       for d in phases[phase] if d["name"] == "vmq_validate_check_status" and d["value"] == 1
                       and pred(d["labels"])})

    critical = current("node_down", lambda l: l["severity"] == "error" and l["status"] == "fail")
    warning = current("node_down", lambda l: (l["severity"] == "error" and l["status"] in ("warn", "unknown")) or
                      (l["severity"] == "warning" and l["status"] in ("fail", "warn", "unknown")))
    healthy_bad = current("healthy", lambda l: l["status"] not in ("pass", "skip"))
    assert not healthy_bad and critical, "the recording has a healthy phase and critical findings after the kill"

    def crit(check, subject, _s):
        return {"exp_labels": {"severity": "critical", "namespace": NAMESPACE, "check": check, "subject": subject},
                "exp_annotations": {
                    "summary": f"VerneMQ check {check} fails on {subject}",
                    "description": f"vmq-validate watch has reported {check} as failed for {subject} for 5m. "
                                   f"`vmq-validate explain {check}` gives the fix; GET /report on the validator has "
                                   "the evidence."}}

    def warn(check, subject, status):
        return {"exp_labels": {"severity": "warning", "namespace": NAMESPACE, "check": check, "subject": subject,
                               "status": status},
                "exp_annotations": {
                    "summary": f"VerneMQ check {check} is {status} on {subject}",
                    "description": f"vmq-validate watch has reported {check} as {status} for {subject} for 15m "
                                   "(unknown: a fact could not be collected, see /report)."}}

    alert_tests = [
        # healthy, and the first minutes after the kill (shorter than for:): nothing fires
        {"eval_time": "4m", "alertname": "VerneMQValidatorCriticalFinding", "exp_alerts": []},
        {"eval_time": "9m", "alertname": "VerneMQValidatorCriticalFinding", "exp_alerts": []},
        {"eval_time": "11m", "alertname": "VerneMQValidatorCriticalFinding",
         "exp_alerts": [crit(*k) for k in critical]},
        {"eval_time": "19m", "alertname": "VerneMQValidatorFinding", "exp_alerts": []},
        {"eval_time": "21m", "alertname": "VerneMQValidatorFinding", "exp_alerts": [warn(*k) for k in warning]},
        # every command reported (ok or findings): the validator itself is fine
        {"eval_time": "30m", "alertname": "VerneMQValidatorNotReporting", "exp_alerts": []},
    ]
    return {"rule_files": ["rules.yaml"], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": input_series, "alert_rule_test": alert_tests},
                      _not_reporting_test()]}


def _not_reporting_test() -> dict:
    """Written by hand, not from the lab recording (which has no failing watcher): the outcome series as watch
    writes them when a command's runs end at the deadline (the shape of
    tests/watch/test_watch.py::test_a_run_over_the_deadline_is_cut_and_marked), and a last-run timestamp that
    stops advancing."""
    series = []
    for outcome in ("ok", "findings", "error", "deadline"):
        values = " ".join(["1" if outcome == "ok" else "0"] * 5 + ["1" if outcome == "deadline" else "0"] * 20)
        series.append({"series": _series_line("vmq_validate_last_run_outcome",
                                              {"command": "clients", "outcome": outcome}), "values": values})
    # and a watcher whose runs stop: the timestamp of the last run stays at 5m while the interval is 60 s
    series.append({"series": _series_line("vmq_validate_last_run_timestamp_seconds", {"command": "distribution"}),
                   "values": "0+60x5 300x25"})
    series.append({"series": _series_line("vmq_validate_interval_seconds", {}), "values": "60x30"})
    deadline = {"exp_labels": {"severity": "warning", "namespace": NAMESPACE, "command": "clients"},
                "exp_annotations": {
                    "summary": "vmq-validate watch cannot run clients",
                    "description": "The validator's clients runs end in a collection error or at the deadline, or "
                                   "have stopped, for 10m: the checks above are not current. See the validator's "
                                   "log and GET /report."}}
    stale = {"exp_labels": {"severity": "warning", "namespace": NAMESPACE, "command": "distribution"},
             "exp_annotations": {
                 "summary": "vmq-validate watch cannot run distribution",
                 "description": "The validator's distribution runs end in a collection error or at the deadline, or "
                                "have stopped, for 10m: the checks above are not current. See the validator's log "
                                "and GET /report."}}
    return {"interval": "1m", "input_series": series, "alert_rule_test": [
        {"eval_time": "10m", "alertname": "VerneMQValidatorNotReporting", "exp_alerts": []},
        {"eval_time": "16m", "alertname": "VerneMQValidatorNotReporting", "exp_alerts": [deadline]},
        # stale from 8m (more than 3 intervals after the last run at 5m), firing 10m later
        {"eval_time": "17m", "alertname": "VerneMQValidatorNotReporting", "exp_alerts": [deadline]},
        {"eval_time": "19m", "alertname": "VerneMQValidatorNotReporting", "exp_alerts": [deadline, stale]}]}


@pytest.fixture(scope="module")
def rules_dir(docs, tmp_path_factory):
    rule = find(docs, "PrometheusRule", VALIDATOR)
    out = tmp_path_factory.mktemp("promtool-validator")
    (out / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False))
    (out / "tests.yaml").write_text(yaml.safe_dump(promtool_tests(), sort_keys=False))
    return out


def test_promtool_check_rules(promtool, rules_dir):
    proc = subprocess.run([promtool, "check", "rules", str(rules_dir / "rules.yaml")], capture_output=True, text=True)
    assert proc.returncode == 0 and "SUCCESS: 3 rules found" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_promtool_unit_tests_with_the_recorded_series(promtool, rules_dir):
    proc = subprocess.run([promtool, "test", "rules", "tests.yaml"], cwd=rules_dir, capture_output=True, text=True)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]


def test_promtool_unit_tests_can_fail(promtool, rules_dir, tmp_path):
    """Widen the critical rule to every status: the recorded healthy phase then fires, and the tests notice."""
    groups = yaml.safe_load((rules_dir / "rules.yaml").read_text())["groups"]
    (rule,) = [r for r in groups[0]["rules"] if r["alert"] == "VerneMQValidatorCriticalFinding"]
    assert 'status="fail"' in rule["expr"]
    rule["expr"] = rule["expr"].replace('status="fail"', 'status=~"fail|pass"')
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    shutil.copy(rules_dir / "tests.yaml", tmp_path)
    proc = subprocess.run([promtool, "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode != 0


def test_traffic_013_trusts_only_this_releases_validator(renderer):
    """The plan of the validator profile is clean (the release's own validator may reach the cluster ports);
    a pod that only claims to be *a* validator (another instance) still makes TRAFFIC-013 warn."""
    import copy

    from tests.traffic.util import plan
    from validators.collect import manifests

    objs = manifests.normalize(manifests.read_documents_text(renderer.text(PROFILE), "r.yaml"), NAMESPACE)
    r13 = [r for r in plan(objs, "mqtt", NAMESPACE).results if r.check == "TRAFFIC-013"]
    assert r13 and {r.status.value for r in r13} == {"pass"}
    assert all(r.evidence["release_validator"] == [f"{NAMESPACE}/{VALIDATOR}-0"] for r in r13)
    dep = next(o for o in objs if o["kind"] == "Deployment")
    intruder = copy.deepcopy(dep)
    intruder["metadata"]["name"] = "intruder"
    intruder["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/instance"] = "other"
    objs.append(intruder)
    np = next(o for o in objs if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == FULLNAME)
    for rule in np["spec"]["ingress"]:
        for peer in rule.get("from", []):
            labels = peer.get("podSelector", {}).get("matchLabels", {})
            if labels.get("app.kubernetes.io/component") == "validator":
                labels.pop("app.kubernetes.io/instance")
    r13 = [r for r in plan(objs, "mqtt", NAMESPACE).results if r.check == "TRAFFIC-013"]
    assert {r.status.value for r in r13} == {"warn"}
    assert all(r.evidence["reached_by"] == [f"{NAMESPACE}/intruder-0"] for r in r13), [r.evidence for r in r13]


def test_policy_is_mounted_and_valid(renderer, tmp_path):
    from validators.core.policy import Policy

    off = [f"validator.policy.checks.TRAFFIC-01{i}.enabled=false" for i in range(1, 5)]
    docs = renderer.docs(PROFILE, sets=[*off, "validator.policy.checks.CLIENTS-001.severity=warning"])
    cm = find(docs, "ConfigMap", f"{VALIDATOR}-policy")
    (tmp_path / "policy.yaml").write_text(cm["data"]["policy.yaml"])
    policy = Policy.load(str(tmp_path / "policy.yaml"))
    assert not policy.enabled("TRAFFIC-012") and policy.entries["CLIENTS-001"]["severity"] == "warning"
    spec = find(docs, "Deployment", VALIDATOR)["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    assert c["args"][c["args"].index("--policy") + 1] == "/etc/vmq-validate/policy.yaml"
    assert {"name": "policy", "mountPath": "/etc/vmq-validate", "readOnly": True} in c["volumeMounts"]
    assert {"name": "policy", "configMap": {"name": f"{VALIDATOR}-policy"}} in spec["volumes"]
    assert "--policy" not in find(renderer.docs(PROFILE), "Deployment", VALIDATOR)["spec"]["template"]["spec"][
        "containers"][0]["args"]


def test_checkov_passes_the_validator_objects(renderer, tmp_path):
    """The chart-wide checkov scan covers 00-default and 10-aks; this one scans the validator profile with
    every option on (exec, cluster reads, policy), with the same documented skips."""
    from .conftest import helm_tool
    from .test_lint_validate import CHECKOV_SKIPS

    (tmp_path / "r.yaml").write_text(renderer.text(PROFILE, sets=[
        "validator.transport=kube-exec", "validator.rbac.podsExec=true", "validator.rbac.clusterRead=true",
        "validator.policy.checks.TRAFFIC-011.enabled=false"]))
    proc = subprocess.run([helm_tool("checkov"), "--skip-download", "--framework", "kubernetes", "-d", str(tmp_path),
                           "--skip-check", ",".join(CHECKOV_SKIPS), "-o", "json"],
                          capture_output=True, text=True, timeout=170, cwd=tmp_path)
    results = json.loads(proc.stdout)["results"]
    assert [(c["check_id"], c["resource"]) for c in results["failed_checks"]] == []
    scanned = {c["resource"] for c in results["passed_checks"]}
    assert {f"Deployment.{NAMESPACE}.{VALIDATOR}", f"Role.{NAMESPACE}.{VALIDATOR}"} <= scanned, sorted(scanned)[:20]
