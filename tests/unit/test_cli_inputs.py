"""Careless input to `vmq-validate`: each case is one line on stderr naming the field, exit 2, no traceback
(issue: tracebacks with exit 1 read as "findings"). In-process through ``validators.cli.main``, and as a
real process where stdin or stdout matter (closed stdin, `| head -1`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from validators.cli import main
from validators.core.errors import InputError
from validators.core.policy import OPTION_RULES, Policy
from validators.core.registry import catalog

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = "apiVersion: v1\nkind: Namespace\nmetadata: {name: mqtt}\n"


def run_cli(*argv, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "validators", *argv], capture_output=True, env=env, timeout=60, **kw)


def one_line_error(err: str, field: str) -> None:
    assert "Traceback" not in err and "internal error" not in err, err
    lines = [ln for ln in err.splitlines() if "error" in ln]
    assert lines and field in lines[-1], err


def targets(tmp_path, text: str) -> str:
    p = tmp_path / "targets.yaml"
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(p)


GOOD_NODE = "nodes: [{name: VerneMQ@127.0.0.1, host: 127.0.0.1}]\n"


@pytest.mark.parametrize("text,field", [
    (b"\xff\xfe\x00garbage", "--targets"),
    ("[1, 2, 3]", "targets.yaml"),
    ("cluster: {cookie_file: 12}\n" + GOOD_NODE, "cookie_file"),
    ("cluster: {cookie_file: bin.cookie}\n" + GOOD_NODE, "cookie_file"),
    ("cluster: {cookie_env: C}\nnodes: [{name: \"VerneMQ@127.0.0.1\\n\", host: 127.0.0.1}]", "nodes[0].name"),
    ("cluster: {cookie_env: C}\nnodes: [{name: VerneMQ@h, host: \"h\\n\"}]", "nodes[0].host"),
    ("cluster: {cookie_env: C}\nnodes: [{name: VerneMQ@h, host: h, http: 'http://h:0'}]", "nodes[0].http"),
    ("cluster: {cookie_env: C}\nnodes: [{name: VerneMQ@h, host: h, http: 'http://h:١٨٨٣'}]", "nodes[0].http"),
    ("cluster: {cookie_env: C, transport: netns}\nnodes: [{name: VerneMQ@h, host: h, netns: \"a b\"}]",
     "nodes[0].netns"),
    ("[" * 5000, "--targets"),
])
def test_garbage_targets_files(tmp_path, capsys, monkeypatch, text, field):
    monkeypatch.setenv("C", "a-cookie-value")
    (tmp_path / "bin.cookie").write_bytes(b"\xff\xfe\xfa")
    assert main(["distribution", "--targets", targets(tmp_path, text)]) == 2
    one_line_error(capsys.readouterr().err, field)


@pytest.mark.parametrize("policy,field", [
    (b"\x00\xff\xfe", "--policy"),
    ("checks: [", "--policy"),
    ("checks: {TRAFFIC-003: {options: {cloud: Azure}}}", "options.cloud"),
    ("checks: {CLIENTS-001: {options: {tolerance: -1}}}", "options.tolerance"),
    ("checks: {CLIENTS-001: {options: {tolerance: true}}}", "options.tolerance"),
    ("checks: {TRAFFIC-009: {options: {keepalive_seconds: -30}}}", "options.keepalive_seconds"),
    ("checks: {TRAFFIC-008: {options: {ws_path: ''}}}", "options.ws_path"),
    ("checks: {TRAFFIC-009: {options: {nginx_classes: [1, null]}}}", "options.nginx_classes"),
    ("checks: {CLIENTS-012: {options: {max_drop_ratio: 1.5}}}", "options.max_drop_ratio"),
])
def test_bad_policy_files(tmp_path, capsys, policy, field):
    p = tmp_path / "policy.yaml"
    p.write_bytes(policy.encode() if isinstance(policy, str) else policy)
    m = tmp_path / "m.yaml"
    m.write_text(MANIFEST)
    assert main(["plan", "-f", str(m), "--policy", str(p)]) == 2
    one_line_error(capsys.readouterr().err, field)


def test_every_check_option_has_a_rule_and_its_default_passes_it():
    for cid, spec in catalog().items():
        for name, default in spec.defaults.items():
            assert name in OPTION_RULES, f"{cid} option {name} has no rule in validators/core/policy.py"
            assert OPTION_RULES[name](default) is None, (cid, name, default)
    Policy.load(None)


@pytest.mark.parametrize("kubeconfig", [b"\xff\xfe", b"a: [", b"[1, 2]", b"contexts: 5", b"contexts: [{name: 7}]"])
def test_garbage_kubeconfig(tmp_path, capsys, kubeconfig):
    k = tmp_path / "kubeconfig"
    k.write_bytes(kubeconfig)
    assert main(["cluster", "--kubeconfig", str(k), "--context", "c", "--namespace", "n", "--release", "r"]) == 2
    one_line_error(capsys.readouterr().err, "--kubeconfig")


@pytest.mark.parametrize("argv,field", [
    (["--heartbeat", "9" * 400 + "h"], "--heartbeat"),
    (["--heartbeat", "99999999h"], "--heartbeat"),
    (["--entry", "tcp://127.0.0.1:1883", "--heartbeat", "1h", "--interval", "0.000001ms"], "--interval"),
    (["--entry", "tcp://127.0.0.1:1883", "--heartbeat", "168h", "--interval", "1s"], "--heartbeat"),
    (["--sample-interval", "١٠s"], "--sample-interval"),
    (["--timeout", "nan"], "--timeout"),
    (["--timeout", "1e400"], "--timeout"),
    (["--samples", "٢"], "--samples"),
    (["--entry", "tcp://127.0.0.1:0"], "--entry"),
    (["--entry", "tcp://127.0.0.1:+1"], "--entry"),
])
def test_numbers_durations_and_ports(tmp_path, capsys, argv, field):
    assert main(["clients", "--targets", targets(tmp_path, GOOD_NODE), *argv]) == 2
    one_line_error(capsys.readouterr().err, field)


@pytest.mark.parametrize("argv,field", [
    (["--target-version", "2.1.2 latest"], "--target-version"),
    (["--target-version", "2.1.2\n"], "--target-version"),
    (["--target-version", "٢.١.٢"], "--target-version"),
    (["--http-port", "70000"], "--http-port"),
    (["--http-port", "٨٨٨٨"], "--http-port"),
    (["--interval", "inf"], "--interval"),
])
def test_preflight_version_and_port(tmp_path, capsys, argv, field):
    assert main(["preflight", "--targets", targets(tmp_path, GOOD_NODE), *argv]) == 2
    one_line_error(capsys.readouterr().err, field)


@pytest.mark.parametrize("port", ["١٨٨٣", "1883/", "0", "70000", "1883/XTP"])
def test_reachability_ports(tmp_path, capsys, port):
    m = tmp_path / "m.yaml"
    m.write_text(MANIFEST)
    assert main(["reachability", "-f", str(m), "--from", "10.0.0.1", "--to", "10.0.0.2", "--port", port]) == 2
    one_line_error(capsys.readouterr().err, "--port")


def test_report_path_that_is_a_directory_fails_before_any_result(tmp_path, capsys):
    m = tmp_path / "m.yaml"
    m.write_text(MANIFEST)
    for opt in ("--report-json", "--report-junit"):
        assert main(["plan", "-f", str(m), opt, str(tmp_path)]) == 2
        out, err = capsys.readouterr()
        assert out == "", "nothing is printed before the report paths are known to be writable"
        one_line_error(err, opt)
    (tmp_path / "afile").write_text("")
    assert main(["plan", "-f", str(m), "--report-json", str(tmp_path / "afile" / "r.json")]) == 2
    one_line_error(capsys.readouterr().err, "--report-json")
    same = str(tmp_path / "r")
    assert main(["plan", "-f", str(m), "--report-json", same, "--report-junit", same]) == 2
    one_line_error(capsys.readouterr().err, "--report-junit")
    assert main(["plan", "-f", str(m), "--report-json", "/dev/null", "--report-junit", "/dev/null"]) in (0, 1)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_an_endless_input_file_is_refused_not_read_forever(capsys):
    assert main(["plan", "-f", "/dev/zero"]) == 2
    one_line_error(capsys.readouterr().err, "-f")
    assert main(["plan", "-f", "/dev/null", "--policy", "/dev/zero"]) == 2
    one_line_error(capsys.readouterr().err, "--policy")


def test_binary_capture_log_in_a_replay_folder(tmp_path, capsys):
    phase = tmp_path / "phase"
    phase.mkdir()
    (phase / "_capture_log.txt").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    assert main(["clients", "--replay", str(phase)]) == 2
    one_line_error(capsys.readouterr().err, "--replay")


def test_stdin_not_utf8_or_closed():
    cp = run_cli("plan", "-f", "-", input=b"\xff\xfe\x00kind: x")
    assert cp.returncode == 2
    one_line_error(cp.stderr.decode(), "-f -")
    # fd 0 closed altogether (`<&-`)
    cp = subprocess.run(["bash", "-c", f'exec 0<&-; exec "{sys.executable}" -m validators plan -f -'],
                        capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert cp.returncode == 2, cp.stderr
    one_line_error(cp.stderr.decode(), "-f -")


def test_closed_stdout_is_not_a_traceback():
    for argv in (["checks"], ["--help"], ["plan", "-f", "-"]):
        cp = subprocess.run(["bash", "-c", f'"{sys.executable}" -m validators "$@" | head -c 1 >/dev/null; '
                                           'exit "${PIPESTATUS[0]}"', "_", *argv],
                            input=MANIFEST * 200 if argv[0] == "plan" else "", capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
        assert "Traceback" not in cp.stderr and "Exception ignored" not in cp.stderr, (argv, cp.stderr)
        assert cp.returncode in (0, 1), (argv, cp.returncode, cp.stderr)


def test_input_error_text_names_field_and_fix():
    e = InputError("--x", "is bad.", "do y.")
    assert str(e) == "--x: is bad. Fix: do y." and e.exit_code == 2
