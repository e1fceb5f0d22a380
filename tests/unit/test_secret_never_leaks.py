"""Property: an API key and a cookie set in the environment never appear — in clear, as the base64 of the
HTTP Basic credentials ``KEY:``, or hex-encoded — in stdout, stderr, the JSON or JUnit report, the Ansible
module's result, or any process's argument list (what `ps` in a pod shows).

Secrets are generated (every visible ASCII character for the key, as an HTTP header allows; any printable
text for the cookie, including quotes, ``$()``, ``@APIKEY@`` and other script placeholders). The nodes are
a hostile HTTP server on loopback that *reflects* every request it gets (request line and headers, so
``Authorization: Basic ...`` and ``x-api-key: ...``) back in its answers: as JSON, as text, with 200, 401
and 500, so any evidence or error text built from an answer would carry the key. EPMD and the cluster
ports are closed ports (refused at once). Commands: `distribution --targets` (direct transport, the
cluster/show view with the key), `clients --targets` with Basic auth and with ``--key-header``, through
the CLI in-process and through the Ansible module (its real file, run the way Ansible runs it); and the
pod probe script (kube-exec / netns-shell) run with ``bash -s`` while its requests are held open.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile import LoopbackServer
from validators.cli import main

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "roles" / "vernemq_validate" / "library" / "vmq_validate.py"

VISIBLE = "".join(chr(c) for c in range(0x21, 0x7F))
api_keys = st.text(alphabet=VISIBLE, min_size=12, max_size=40)
cookies = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_categories=("Cc", "Cs")),
                  min_size=12, max_size=40).map(str.strip).filter(lambda c: len(c) >= 12)
hostile = st.sampled_from(["@APIKEY@", "@COOKIE@", "$(touch PWNED)", "'\"`", "%s%n", "\\x41", "@TARGETS@"])
api_keys = st.one_of(api_keys, st.tuples(api_keys, hostile).map(lambda t: t[0] + t[1]))


class Reflector(LoopbackServer):
    """HTTP on 127.0.0.1 that answers every request with the request itself (mode: json|text|401|500)."""

    def __init__(self):
        self.mode = "json"
        self.heads: list[bytes] = []
        super().__init__()

    def handle(self, c):
        with c:
            c.settimeout(5)
            head = b""
            try:
                while b"\r\n\r\n" not in head and len(head) < 65536:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                self.heads.append(head)
                text = head.decode("latin-1")
                status, body = {
                    "json": ("200 OK", json.dumps({"error": text, "headers": text.split("\r\n"), "table": [
                        {"client_id": text, "is_online": True, "mountpoint": "", "node": text}]})),
                    "text": ("200 OK", text),
                    "401": ("401 Unauthorized", json.dumps({"type": "unauthorized", "seen": text})),
                    "500": ("500 Internal Server Error", "crash: " + text),
                }[self.mode]
                data = body.encode("latin-1", "replace")
                c.sendall(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                          f"Connection: close\r\n\r\n".encode() + data)
            except OSError:
                pass


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    srv = Reflector()
    d = tmp_path_factory.mktemp("leak")
    targets = d / "targets.yaml"
    targets.write_text(yaml.safe_dump({
        "cluster": {"epmd_port": closed_port(), "cluster_port": closed_port(), "cookie_env": "LEAK_TEST_COOKIE",
                    "api_key_env": "LEAK_TEST_KEY"},
        "nodes": [{"name": "VerneMQ@127.0.0.1", "host": "127.0.0.1", "http": f"http://127.0.0.1:{srv.port}"}]}))
    yield srv, d, targets
    srv.close()


def forms(key: str, cookie: str) -> dict[str, str]:
    basic = base64.b64encode(f"{key}:".encode()).decode()
    out = {"key": key, "basic": basic, "basic-unpadded": basic.rstrip("="), "key-hex": key.encode().hex(),
           "cookie": cookie, "cookie-hex": cookie.encode().hex()}
    for name in ("key", "cookie"):  # as JSON and XML would escape them
        out[f"{name}-json"] = json.dumps(out[name])[1:-1]
        out[f"{name}-json-ascii"] = json.dumps(out[name], ensure_ascii=True)[1:-1]
        out[f"{name}-xml"] = html.escape(out[name], quote=True)
    return out


def assert_clean(where: str, text: str, key: str, cookie: str) -> None:
    for name, value in forms(key, cookie).items():
        assert value not in text, f"{name} of the secret appears in {where}"


COMMANDS = [
    ["distribution", "--transport", "direct", "--timeout", "1"],
    ["clients", "--samples", "1", "--timeout", "2"],
    ["clients", "--samples", "1", "--timeout", "2", "--key-header"],
]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=api_keys, cookie=cookies, mode=st.sampled_from(["json", "text", "401", "500"]),
       command=st.sampled_from(COMMANDS), fmt=st.sampled_from(["text", "json", "junit"]))
def test_cli_outputs_and_reports_never_hold_the_secret(world, key, cookie, mode, command, fmt):
    srv, d, targets = world
    srv.mode = mode
    srv.heads.clear()
    rj, rx = d / "r.json", d / "r.xml"
    for p in (rj, rx):
        p.unlink(missing_ok=True)
    out, err = io.StringIO(), io.StringIO()
    os.environ.update(LEAK_TEST_KEY=key, LEAK_TEST_COOKIE=cookie)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([command[0], "--targets", str(targets), *command[1:], "--format", fmt,
                         "--report-json", str(rj), "--report-junit", str(rx)])
    finally:
        os.environ.pop("LEAK_TEST_KEY", None)
        os.environ.pop("LEAK_TEST_COOKIE", None)
    assert code in (0, 1), err.getvalue()
    # the hostile server did get the key (so the scenario exercised it) ...
    sent = b"".join(srv.heads).decode("latin-1")
    assert key in sent or base64.b64encode(f"{key}:".encode()).decode() in sent, "the key was never sent"
    # ... and reflected it into every answer; none of it comes out
    for where, text in (("stdout", out.getvalue()), ("stderr", err.getvalue()), ("JSON report", rj.read_text()),
                        ("JUnit report", rx.read_text())):
        assert_clean(where, text, key, cookie)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=api_keys, cookie=cookies, command=st.sampled_from(COMMANDS[:2]))
def test_the_ansible_module_result_never_holds_the_secret(world, key, cookie, command):
    srv, d, targets = world
    srv.mode = "json"
    args = {"command": command[0], "args": ["--targets", str(targets), *command[1:]], "fail_on": "error",
            "fail_on_findings": True, "report_json": str(d / "m.json"), "report_junit": str(d / "m.xml"),
            "secret_env": {"LEAK_TEST_KEY": key, "LEAK_TEST_COOKIE": cookie}}
    f = d / "args.json"
    f.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    res = subprocess.run([sys.executable, str(MODULE), str(f)], capture_output=True, text=True, timeout=120,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    result = json.loads(res.stdout)
    assert "report" in result, result
    for where, text in (("module result", res.stdout), ("module stderr", res.stderr),
                        ("JSON report", (d / "m.json").read_text()), ("JUnit report", (d / "m.xml").read_text())):
        assert_clean(where, text, key, cookie)


@pytest.mark.skipif(not shutil.which("bash") or not Path("/proc/self/cmdline").exists(), reason="needs bash, /proc")
@settings(max_examples=4, deadline=None)
@given(key=api_keys, cookie=cookies)
def test_no_process_argv_holds_the_secret_while_the_pod_script_runs(key, cookie):
    from tests.distribution.test_secret_argv import HoldingServer, _wait, all_cmdlines
    from validators.core.secret import API_KEY, COOKIE, Secret
    from validators.transports.shell import build_script

    srv = HoldingServer()
    # the held requests live for the whole --timeout (the process group is killed at the end): long enough
    # for a scan on a loaded machine
    job = {"source": "VerneMQ@127.0.0.1", "source_host": "127.0.0.1", "timeout": 30, "concurrency": 2,
           "cookie": Secret(cookie, "test cookie", COOKIE), "epmd_port": srv.port, "cluster_port": srv.port,
           "targets": [{"name": "VerneMQ@127.0.0.1", "host": "127.0.0.1"}],
           "view": {"url": f"http://127.0.0.1:{srv.port}", "api_key": Secret(key, "test key", API_KEY)}}
    proc = subprocess.Popen(["bash", "-s"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        proc.stdin.write(build_script(job))
        proc.stdin.close()
        assert _wait(lambda: any(r.startswith(b"GET ") and r.endswith(b"\r\n\r\n") for r in srv.received)
                     and any(r.startswith(b"\x00\x01n") for r in srv.received))
        seen = all_cmdlines() + all_cmdlines()
        assert any(b"/dev/tcp" in c for c in seen), "the request children were not seen"
        for name, value in forms(key, cookie).items():
            if "hex" in name:
                continue
            assert not [c for c in seen if value.encode() in c], f"{name} of the secret is on a process argv"
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()
        srv.close()
