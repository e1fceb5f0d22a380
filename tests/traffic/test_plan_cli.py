"""`vmq-validate plan` end to end: sources (file, folder, stdin), formats, exit codes, input errors."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET

import pytest
import yaml

from validators.cli import execute, main

from .util import RELEASE


def run(capsys, argv, stdin=None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_plan_from_file_is_clean_and_json_has_the_report_shape(capsys):
    code, out, err = run(capsys, ["plan", "-f", str(RELEASE), "-n", "mqtt", "--release", "r", "--format", "json"])
    assert code == 0, out + err
    doc = json.loads(out)
    assert doc["command"] == "plan" and doc["summary"]["failed"] is False
    assert doc["meta"]["source"] == "manifests" and doc["meta"]["namespace"] == "mqtt"
    assert {r["check"] for r in doc["results"]} >= {"TRAFFIC-001", "TRAFFIC-012"}


def test_plan_from_stdin_with_a_finding_exits_1_and_writes_reports(capsys, monkeypatch, tmp_path):
    text = RELEASE.read_text().replace("externalTrafficPolicy: Local", "externalTrafficPolicy: Cluster")
    rj, ju = tmp_path / "r.json", tmp_path / "r.xml"
    code, out, _ = run(capsys, ["plan", "-f", "-", "-n", "mqtt", "--release", "r", "--no-color",
                                "--report-json", str(rj), "--report-junit", str(ju)], stdin=text, monkeypatch=monkeypatch)
    assert code == 1
    assert "FAIL    TRAFFIC-001" in out and "externalTrafficPolicy Cluster" in out and "remedy:" in out
    assert json.loads(rj.read_text())["summary"]["failed"] is True
    assert int(ET.parse(ju).getroot().find("testsuite").get("failures")) >= 1


def test_plan_reads_a_folder_recursively(capsys, tmp_path):
    docs = [d for d in yaml.safe_load_all(RELEASE.read_text()) if d]
    (tmp_path / "sub").mkdir()
    for i, d in enumerate(docs):
        (tmp_path / ("sub" if i % 2 else ".") / f"{i:02d}.yaml").write_text(yaml.safe_dump(d))
    code, out, err = run(capsys, ["plan", "-f", str(tmp_path), "-n", "mqtt", "--release", "r"])
    assert code == 0, out + err


def test_execute_returns_the_report_for_the_ansible_module():
    report = execute(["plan", "-f", str(RELEASE), "--namespace", "mqtt", "--release", "r"])
    d = report.to_dict()
    assert d["summary"]["failed"] is False and d["meta"]["release"] == "r"


def test_fail_on_never_and_warning(capsys, tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text(RELEASE.read_text().replace("        - {port: epmd}\n", "        - {port: epmd}\n", 1)
                 + "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: open}\n"
                   "spec:\n  podSelector: {}\n  ingress: [{ports: [{port: 9100}]}]\n")
    base = ["plan", "-f", str(f), "-n", "mqtt", "--release", "r"]
    assert run(capsys, base)[0] == 0
    assert run(capsys, base + ["--fail-on", "warning"])[0] == 1


def test_fail_on_critical_exits_1_only_on_a_critical_finding(capsys, tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text(RELEASE.read_text().replace("externalTrafficPolicy: Local", "externalTrafficPolicy: Cluster"))
    base = ["plan", "-f", str(f), "-n", "mqtt", "--release", "r", "--format", "json"]
    code, out, _ = run(capsys, base + ["--fail-on", "critical"])
    doc = json.loads(out)
    assert code == 0 and doc["summary"]["failed"] is False and doc["summary"]["fail_on"] == "critical"
    assert doc["summary"]["findings_by_severity"]["error"] >= 1, "the error finding is still reported"
    assert run(capsys, base)[0] == 1
    policy = tmp_path / "policy.yaml"
    policy.write_text("checks: {TRAFFIC-001: {severity: critical}}\n")
    code, out, _ = run(capsys, base + ["--fail-on", "critical", "--policy", str(policy)])
    assert code == 1 and json.loads(out)["summary"]["findings_by_severity"]["critical"] >= 1
    code, _, err = run(capsys, base + ["--fail-on", "fatal"])
    assert code == 2 and "--fail-on" in err and "'critical', 'error', 'warning', 'info', 'never'" in err


BAD = [
    ("apiVersion: v1\nkind: Service\nmetadata: {name: s\nspec: {}\n", "document 1", "not valid YAML"),
    ("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n- just\n- a list\n", "document 2 (line 6)", "not a Kubernetes"),
    ("apiVersion: v1\nmetadata: {name: s}\n", "document 1 (line 1): kind", "missing"),
    ("apiVersion: v1\nkind: Service\nmetadata: {}\n", "metadata.name", "missing"),
    ("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: mqtt}]}\n", "spec.ports[0].port",
     "must be a number"),
    ("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 1883, targetPort: 70000}]}\n",
     "spec.ports[0].targetPort", "out of range"),
    ("apiVersion: v1\nkind: Service\nmetadata: {name: s, labels: {a: 1}}\nspec: {}\n", "metadata.labels.a", "strings"),
    ("apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s}\nspec: {template: {spec: {containers: "
     "[{name: c, ports: [{containerPort: '1883'}]}]}}}\n", "spec.template.spec.containers[0].ports[0].containerPort",
     "must be a number"),
    ("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i}\nspec: {rules: [{http: {paths: "
     "[{path: /, backend: {service: {name: s}}}]}}]}\n", "backend.service.port", "required"),
    ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec: {podSelector: {}, "
     "ingress: [{ports: [{port: 9100, endPort: 9000}]}]}\n", "spec.ingress[0].ports[0].endPort", "from port"),
    ("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {}\n---\napiVersion: v1\nkind: Service\n"
     "metadata: {name: s}\nspec: {}\n", "document 2 (line 6)", "defined twice"),
]


@pytest.mark.parametrize("text,where,problem", BAD, ids=[b[1] + ":" + b[2] for b in BAD])
def test_bad_manifests_are_exit_2_with_file_document_and_field(capsys, tmp_path, text, where, problem):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    code, out, err = run(capsys, ["plan", "-f", str(f), "-n", "mqtt"])
    assert code == 2 and out == ""
    assert "bad.yaml" in err and where in err and problem in err and "Fix:" in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv,needle", [
    (["plan", "-n", "mqtt"], "-f: no manifests given"),
    (["plan", "-f", "/nonexistent/x.yaml"], "does not exist"),
    (["plan", "-f", str(RELEASE), "--selector", "app in (a)"], "--selector"),
])
def test_usage_errors_exit_2(capsys, argv, needle):
    code, out, err = run(capsys, argv)
    assert code == 2 and needle in err


def test_secret_values_in_manifests_never_reach_the_output(capsys, tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text(RELEASE.read_text() + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: r-vernemq-cookie}\n"
                 "stringData: {cookie: Sup3rS3cretCookieValue}\n")
    for fmt in ("text", "json", "junit"):
        code, out, err = run(capsys, ["plan", "-f", str(f), "-n", "mqtt", "--release", "r", "--format", fmt])
        assert code == 0 and "Sup3rS3cretCookieValue" not in out + err


def test_literal_cookie_in_a_manifest_is_registered_with_the_redactor(tmp_path):
    from validators.core import redact
    from validators.report import render

    f = tmp_path / "m.yaml"
    f.write_text(RELEASE.read_text().replace(
        "            - {name: DOCKER_VERNEMQ_DISCOVERY_KUBERNETES, value: \"1\"}\n",
        "            - {name: DOCKER_VERNEMQ_DISCOVERY_KUBERNETES, value: \"1\"}\n"
        "            - {name: MY_ERLANG_COOKIE, value: \"LiteralCookie42\"}\n")
        + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: k}\ndata: {api-key: QmFzZTY0QXBpS2V5VmFsdWU=}\n")
    try:
        report = execute(["plan", "-f", str(f), "-n", "mqtt", "--release", "r"])
        assert redact.scrub("LiteralCookie42 Base64ApiKeyValue") == f"{redact.MASK} {redact.MASK}"
        assert "LiteralCookie42" not in render(report, "json")
    finally:
        redact.clear()


def test_short_or_public_secret_values_do_not_garble_the_report(tmp_path):
    from validators.core import redact
    from validators.report import render

    f = tmp_path / "m.yaml"
    f.write_text(RELEASE.read_text() + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: k}\n"
                 "stringData: {username: r-vernemq, password: mqtt, tls.crt: TRAFFIC-001-LOOKALIKE}\n")
    try:
        out = render(execute(["plan", "-f", str(f), "-n", "mqtt", "--release", "r"]), "text")
        assert "Service mqtt/r-vernemq" in out and "TRAFFIC-001" in out and redact.MASK not in out
    finally:
        redact.clear()


@pytest.mark.parametrize("options,needle", [
    ("TRAFFIC-011: {options: {client_sources: [nonsense]}}", "checks.TRAFFIC-011.options.client_sources"),
    ("TRAFFIC-014: {options: {api_server: [10.0.0.1]}}", "checks.TRAFFIC-014.options.api_server"),
])
def test_bad_traffic_options_are_input_errors(capsys, tmp_path, options, needle):
    pol = tmp_path / "p.yaml"
    pol.write_text(f"checks:\n  {options}\n")
    code, out, err = run(capsys, ["plan", "-f", str(RELEASE), "-n", "mqtt", "--release", "r", "--policy", str(pol)])
    assert code == 2 and needle in err and "Fix:" in err
