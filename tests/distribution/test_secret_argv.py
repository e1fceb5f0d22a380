"""No secret on any process's argument list while the pod probe script runs (docs/distribution.md).

The script of :mod:`validators.transports.shell` runs for real with ``bash -s`` (what kube-exec and
netns-shell run) against a loopback server that accepts every connection and never answers, so each
request's child process stays alive. While they are alive, every ``/proc/<pid>/cmdline`` on the
machine is read: neither the API key, nor the base64 of ``KEY:`` (the Basic credentials), nor the
cookie may be in any of them. A control process proves the scan sees argument lists.
Also: the placeholders of the script are substituted in one pass, so a secret that contains
``@APIKEY@``, ``@TARGETS@`` or any other placeholder is never spliced into the script.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.hostile import LoopbackServer
from validators.transports.shell import build_script

pytestmark = pytest.mark.skipif(not shutil.which("bash") or not Path("/proc/self/cmdline").exists(),
                                reason="needs bash and /proc")


class HoldingServer(LoopbackServer):
    """Accepts on 127.0.0.1, records what each connection sends first, never answers."""

    def __init__(self):
        self.received: list[bytes] = []
        super().__init__()

    def handle(self, c):
        c.settimeout(10)
        buf = b""
        try:
            while len(buf) < 4096:
                chunk = c.recv(4096)
                if not chunk:
                    break
                buf += chunk
                self.received.append(buf)
        except OSError:
            pass


def all_cmdlines() -> list[bytes]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                out.append((d / "cmdline").read_bytes())
            except OSError:
                pass
    return out


def _wait(cond, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_no_secret_on_any_argv_while_the_script_runs():
    key = "argv-key-" + secrets.token_hex(8) + "@APIKEY@"
    cookie = "argv-cookie-" + secrets.token_hex(8)
    basic = base64.b64encode(f"{key}:".encode()).decode()
    srv = HoldingServer()
    # held requests live for the whole timeout (the process group is killed at the end): room for a loaded machine
    job = {"source": "VerneMQ@127.0.0.1", "source_host": "127.0.0.1", "timeout": 30, "cookie": cookie,
           "epmd_port": srv.port, "cluster_port": srv.port, "concurrency": 2,
           "targets": [{"name": "VerneMQ@127.0.0.1", "host": "127.0.0.1"}],
           "view": {"url": f"http://127.0.0.1:{srv.port}", "api_key": key}}
    marker = "argv-control-" + secrets.token_hex(8)
    control = subprocess.Popen(["bash", "-c", "sleep 20; true", marker])
    proc = subprocess.Popen(["bash", "-s"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        proc.stdin.write(build_script(job))
        proc.stdin.close()
        # both held requests are in flight: the EPMD NAMES request and the HTTP view
        assert _wait(lambda: any(r.startswith(b"GET ") and r.endswith(b"\r\n\r\n") for r in srv.received)
                     and any(r.startswith(b"\x00\x01n") for r in srv.received)), srv.received
        seen = []
        for _ in range(5):
            seen.extend(all_cmdlines())
            time.sleep(0.1)
        assert any(marker.encode() in c for c in seen), "the scan must see a control process's argv"
        assert any(b"bash" in c and str(srv.port).encode() in c for c in seen), "the request children were seen"
        for secret in (key, basic, cookie, key.split("@")[0]):
            hits = [c.replace(b"\0", b" ")[:200] for c in seen if secret.encode() in c]
            assert not hits, f"a secret is on a process argv: {hits}"
        # the key did go to the server (the scenario exercised it), in the headers only
        get = next(r for r in srv.received if r.startswith(b"GET ") and r.endswith(b"\r\n\r\n"))
        assert f"x-api-key: {key}\r\n".encode() in get and f"Authorization: Basic {basic}\r\n".encode() in get
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()
        control.kill()
        control.wait()
        srv.close()


def test_placeholders_are_substituted_in_one_pass():
    hostile = "@TARGETS@@VIEW@@COOKIE@@T@$(touch PWNED)'\""
    job = {"source": "s", "source_host": "127.0.0.1", "timeout": 1, "cookie": hostile, "concurrency": 1,
           "targets": [{"name": "VerneMQ@10.9.9.9", "host": "10.9.9.9"}],
           "view": {"url": "http://10.9.9.9:8888", "api_key": "@APIKEY@@COOKIE@" + hostile}}
    script = build_script(job)
    # each secret appears exactly once, shell-quoted, on the export line; no placeholder is left or spliced
    export = next(line for line in script.splitlines() if line.startswith("export "))
    assert export.count("@TARGETS@") == 2 and script.count("@TARGETS@") == 2
    assert "probe \"$@\"' _ 0 " in script and script.count("timeout 8 bash -c 'probe") == 1
    assert subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True).returncode == 0


_NETNS_SERVER = r"""
import socket, sys, threading
s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
print("ready", flush=True)
def read(c):
    buf = b""
    while True:
        try:
            chunk = c.recv(4096)
        except OSError:
            return
        if not chunk:
            return
        buf += chunk
        print(buf[:4].hex(), flush=True)
while True:
    c, _ = s.accept()
    threading.Thread(target=read, args=(c,), daemon=True).start()
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"), reason="needs root and iproute2 (network namespaces)")
def test_no_secret_on_any_argv_with_the_netns_shell_transport():
    """The same promise through the real NetnsShellTransport (`ip netns exec NS bash -s`), in a namespace of
    its own with a holding server inside it."""
    from validators.transports.netns import NetnsShellTransport

    ns = "vmqargv-" + secrets.token_hex(4)
    key = "netns-key-" + secrets.token_hex(8) + "'$(id)\""
    cookie = "netns-cookie-" + secrets.token_hex(8)
    basic = base64.b64encode(f"{key}:".encode()).decode()
    subprocess.run(["ip", "netns", "add", ns], check=True)
    server = None
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        server = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", _NETNS_SERVER, "18081"],
                                  stdout=subprocess.PIPE, text=True)
        assert server.stdout.readline().strip() == "ready"
        seen_heads: list[str] = []
        threading.Thread(target=lambda: seen_heads.extend(iter(server.stdout.readline, "")), daemon=True).start()
        job = {"source": "VerneMQ@127.0.0.1", "source_host": "127.0.0.1", "netns": ns, "timeout": 30,
               "cookie": cookie, "epmd_port": 18081, "cluster_port": 18081, "concurrency": 2,
               "targets": [{"name": "VerneMQ@127.0.0.1", "host": "127.0.0.1"}],
               "view": {"url": "http://127.0.0.1:18081", "api_key": key}}
        result: list = []
        runner = threading.Thread(target=lambda: result.extend(NetnsShellTransport().run_one(job)), daemon=True)
        runner.start()
        get, names = b"GET ".hex(), b"\x00\x01n".hex()[:8]
        assert _wait(lambda: any(h.startswith(get) for h in seen_heads)
                     and any(h.startswith(names[:6]) for h in seen_heads)), seen_heads
        seen = all_cmdlines() + all_cmdlines()
        assert any(b"/dev/tcp" in c for c in seen), "the request children in the namespace were seen"
        for secret in (key, basic, cookie):
            assert not [c for c in seen if secret.encode() in c], "a secret is on a process argv"
    finally:
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), 9)
        if server is not None:
            server.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", ns], check=False)
