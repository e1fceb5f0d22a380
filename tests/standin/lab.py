"""A loopback cluster of VerneMQ stand-in nodes in front of one real Mosquitto.

    with StandinLab(nodes=2) as lab:
        lab.nodes[0].name, .addr, .http_url, .mqtt_url, .ws_url
        lab.write_targets(path)              # a targets file for `vmq-validate clients --targets`
        socks = lab.bare_sockets(0, "mqtt", 5)   # TCP sockets that never send CONNECT
        lab.kill(1)                          # SIGKILL, like a crashed VerneMQ node
        lab.stop(1) / lab.start(1)           # graceful stop without leave (a ghost member) / start again:
                                             # persistent sessions come back offline, counters start at 0
        lab.ws_upgraded_sockets(0, 4)        # WebSocket upgrades that never send CONNECT (they stay)
        lab.add_api_key(1)                   # `vmq-admin api-key add` on node 1 only (api_key_on=[...])
        lab.split(0, 1) / lab.heal()         # a netsplit with nftables (needs netns=Netns())
        lab.broker_url("tcp") / ("ws")      # Mosquitto itself, bypassing the stand-ins

Every run picks its own 127.A.B.0/24 block and free ports on each address (another process may hold
a wildcard listener on VerneMQ's default ports), and the context manager kills every process it started.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import random
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from validators.core import redact

ROOT = Path(__file__).resolve().parents[2]
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


class StandinError(RuntimeError):
    pass


@dataclass
class StandinNode:
    index: int
    name: str
    addr: str
    mqtt_port: int = 0
    ws_port: int = 0
    http_port: int = 0
    cluster_port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def http_url(self) -> str:
        return f"http://{self.addr}:{self.http_port}"

    @property
    def mqtt_url(self) -> str:
        return f"tcp://{self.addr}:{self.mqtt_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.addr}:{self.ws_port}/mqtt"


def free_port(addr: str) -> int:
    with socket.socket() as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


def _wait_port(host: str, port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise StandinError(f"nothing listens on {host}:{port}")


class StandinLab:
    def __init__(self, nodes: int = 2, connect_timeout: float = 30.0, broker_conf: str = "",
                 mosquitto_users: dict[str, str] | None = None, acl: str | None = None, base: str | None = None,
                 broker_addr: str | None = None, node_names: str = "VerneMQ{i}@{addr}", tls: bool = False,
                 api_key_on: list[int] | None = None, netns: Any = None, ws_request_timeout: float = 5.0):
        """``broker_addr``: run Mosquitto on this address (e.g. the distribution lab's bridge) instead of
        ``<base>.250``; ``nodes=0`` runs only the broker. ``api_key_on``: the nodes that have the API key from
        the start (default: all). ``netns``: a :class:`tests.standin.netns.Netns` to run everything in."""
        self.n = nodes
        self.connect_timeout = connect_timeout
        self.broker_conf_extra = broker_conf
        self.users = mosquitto_users or {}
        self.acl = acl
        self.base = base
        self.tmp = Path(tempfile.mkdtemp(prefix="vmq-standin-"))
        self.api_key = "standin-" + secrets.token_hex(12)
        redact.register(self.api_key)
        self.key_file = self.tmp / "api-key"  # the validator's copy
        self.key_file.write_text(self.api_key)
        os.chmod(self.key_file, 0o600)
        self.api_key_on = None if api_key_on is None else set(api_key_on)
        self.netns = netns
        self.split_table: str | None = None
        self.ws_request_timeout = ws_request_timeout
        self.nodes: list[StandinNode] = []
        self.broker: subprocess.Popen | None = None
        self.broker_addr = broker_addr or ""
        self.fixed_broker_addr = broker_addr
        self.node_names = node_names
        self.tls = tls
        self.tls_port = 0
        self.ca_file: Path | None = None
        self.broker_ports = (0, 0)

    # -------------------------------------------------------------- lifecycle
    def __enter__(self) -> "StandinLab":
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.down()

    def up(self) -> None:
        atexit.register(self.down)  # also when the test process exits without __exit__
        last = None
        for attempt in range(5):
            if attempt:
                time.sleep(0.2 * attempt)  # e.g. a bridge address that is still coming up
            base = self.base or f"127.{random.randint(100, 250)}.{random.randint(0, 255)}"
            self.broker_addr = self.fixed_broker_addr or f"{base}.250"
            try:
                self._start_broker()
                break
            except StandinError as exc:
                last = exc
                self._stop(self.broker)
                self.broker = None
                if self.base:
                    raise
        else:
            raise StandinError(f"could not start mosquitto on any loopback block: {last}")
        names = [self.node_names.format(i=i + 1, addr=f"{base}.{i + 1}") for i in range(self.n)]
        self.nodes = []
        for i in range(self.n):
            key_file = self._node_key_file(i)
            key_file.write_text(self.api_key if self.api_key_on is None or i in self.api_key_on else "")
            os.chmod(key_file, 0o600)
        for i in range(self.n):
            addr = f"{base}.{i + 1}"
            self.nodes.append(StandinNode(i, names[i], addr, free_port(addr), free_port(addr), free_port(addr),
                                          free_port(addr)))
        for node in self.nodes:
            self.start(node.index)

    def net(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn`` where the nodes are reachable: inside the lab's namespace, or right here."""
        return self.netns.call(fn, *args) if self.netns is not None else fn(*args)

    def _cmd(self, argv: list[str]) -> list[str]:
        return self.netns.cmd(argv) if self.netns is not None else argv

    def _node_key_file(self, i: int) -> Path:
        return self.tmp / f"api-key-node{i + 1}"

    def _repick(self, i: int) -> None:
        node = self.nodes[i]
        node.mqtt_port, node.ws_port, node.http_port = (free_port(node.addr), free_port(node.addr),
                                                         free_port(node.addr))
        # the cluster port is already in the peers' command lines: keep it

    def _start_broker(self) -> None:
        conf = self.tmp / "mosquitto.conf"
        self.broker_ports = (free_port(self.broker_addr), free_port(self.broker_addr))
        tcp, ws = self.broker_ports
        lines = ["per_listener_settings false", f"listener {tcp} {self.broker_addr}",
                 f"listener {ws} {self.broker_addr}", "protocol websockets", "persistence false",
                 f"log_dest file {self.tmp / 'mosquitto.log'}", "log_type error", "log_type warning",
                 "max_keepalive 65535"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # started as root, mosquitto drops to the `mosquitto` user, which cannot read our 0700 temp dir
            lines.append("user root")
        if self.tls:
            self.tls_port = free_port(self.broker_addr)
            self._make_certs()
            lines += [f"listener {self.tls_port} {self.broker_addr}", f"certfile {self.tmp / 'server.crt'}",
                      f"keyfile {self.tmp / 'server.key'}", f"cafile {self.ca_file}"]
        if self.users:
            pw = self.tmp / "passwd"
            pw.write_text("")
            for user, password in self.users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(pw), user, password], check=True,
                               capture_output=True)
            os.chmod(pw, 0o600)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        if self.acl is not None:
            acl = self.tmp / "acl"
            acl.write_text(self.acl)
            lines.append(f"acl_file {acl}")
        lines.append(self.broker_conf_extra)
        conf.write_text("\n".join(lines) + "\n")
        self.broker = subprocess.Popen(self._cmd([MOSQUITTO, "-c", str(conf)]), stdout=subprocess.DEVNULL,
                                       stderr=open(self.tmp / "mosquitto.stderr", "wb"), start_new_session=True)
        deadline = time.monotonic() + 5
        try:
            self.net(_wait_port, self.broker_addr, tcp, deadline)
            self.net(_wait_port, self.broker_addr, ws, deadline)
        except StandinError:
            err = (self.tmp / "mosquitto.stderr").read_text(errors="replace")[-500:]
            raise StandinError(f"mosquitto did not start on {self.broker_addr}: {err}") from None
        if self.broker.poll() is not None:
            raise StandinError("mosquitto exited")

    def _make_certs(self) -> None:
        """A throw-away CA and a server certificate for the broker address (``cryptography``, in the lock)."""
        import datetime
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "standin-ca")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
              .not_valid_after(now + datetime.timedelta(days=2))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(ca_key, hashes.SHA256()))
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.broker_addr)]))
                .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(self.broker_addr))]),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        pem = serialization.Encoding.PEM
        (self.tmp / "ca.crt").write_bytes(ca.public_bytes(pem))
        (self.tmp / "server.crt").write_bytes(cert.public_bytes(pem))
        (self.tmp / "server.key").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                                serialization.NoEncryption()))
        os.chmod(self.tmp / "server.key", 0o600)
        self.ca_file = self.tmp / "ca.crt"

    def start(self, i: int) -> None:
        """Start node i; a port taken between picking and binding is picked again (twice at most)."""
        for attempt in range(3):
            try:
                return self._start(i)
            except StandinError as exc:
                if "address already in use" not in str(exc) or attempt == 2:
                    raise
                self._repick(i)

    def _start(self, i: int) -> None:
        node = self.nodes[i]
        argv = [sys.executable, "-m", "tests.standin.node", "--name", node.name, "--addr", node.addr,
                "--broker", f"{self.broker_addr}:{self.broker_ports[0]}",
                "--broker-ws", f"{self.broker_addr}:{self.broker_ports[1]}", "--mqtt-port", str(node.mqtt_port),
                "--ws-port", str(node.ws_port), "--http-port", str(node.http_port),
                "--cluster-port", str(node.cluster_port),
                "--api-key-file", str(self._node_key_file(i)), "--connect-timeout", str(self.connect_timeout),
                "--state-file", str(self.tmp / f"state-node{i + 1}.json"),
                "--ws-request-timeout", str(self.ws_request_timeout)]
        for other in self.nodes:
            if other is not node:
                argv += ["--peer", f"{other.name}={other.addr}:{other.cluster_port}"]
        log = open(self.tmp / f"node{i + 1}.log", "ab")
        node.proc = subprocess.Popen(self._cmd(argv), cwd=ROOT, stdout=subprocess.PIPE, stderr=log, start_new_session=True,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})
        ready, _, _ = select.select([node.proc.stdout], [], [], 10)
        line = node.proc.stdout.readline() if ready else b""
        try:
            msg = json.loads(line or b"{}")
        except ValueError:
            msg = {}
        if "ready" not in msg:
            err = (self.tmp / f"node{i + 1}.log").read_text(errors="replace")[-800:]
            raise StandinError(f"stand-in {node.name} did not start: {msg.get('error') or err or 'no output'}")

    def wait_converged(self, timeout: float = 10.0) -> None:
        """Every running node sees every other running node (peer check interval 0.5 s)."""
        self.net(self._wait_converged, timeout)

    def _wait_converged(self, timeout: float) -> None:
        import urllib.request

        running = [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ok = True
            for n in running:
                try:
                    with urllib.request.urlopen(f"{n.http_url}/status.json", timeout=2) as r:
                        doc = json.loads(r.read())
                except OSError:
                    ok = False
                    break
                want = {m.name for m in running}
                seen = {k for k, up in doc[0][n.name]["mystatus"][0].items() if up}
                if seen != want | {n.name} and not (seen >= want):
                    ok = False
                    break
                if set(doc[0]) != want:
                    ok = False
                    break
            if ok:
                return
            time.sleep(0.1)
        raise StandinError(f"stand-in nodes did not converge within {timeout:g}s")

    def kill(self, i: int) -> None:
        proc = self.nodes[i].proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(5)

    def stop(self, i: int) -> None:
        """A graceful stop (SIGTERM) without leaving the cluster: the peers keep it as a member that is not
        running, like `vernemq stop` or a pod that is gone. Its persistent sessions are kept for `start(i)`."""
        self._stop(self.nodes[i].proc)
        if self.nodes[i].proc is not None and self.nodes[i].proc.stdout:
            self.nodes[i].proc.stdout.close()

    def add_api_key(self, i: int) -> None:
        """`vmq-admin api-key add` on node i: only that node accepts the key from now on."""
        self._node_key_file(i).write_text(self.api_key)

    def split(self, a: int, b: int) -> str:
        """Cut nodes a and b apart (their cluster link, both ways) with an nftables table of our own, inside the
        lab's namespace; HTTP from the validator still reaches both. Returns the table name."""
        if self.netns is None:
            raise StandinError("split() needs the lab to run in its own network namespace (netns=Netns())")
        na, nb = self.nodes[a], self.nodes[b]
        self.split_table = f"vmq_standin_split_{secrets.token_hex(3)}"
        self.netns.nft(f"""table inet {self.split_table} {{
  chain input {{
    type filter hook input priority 0; policy accept;
    ip saddr {na.addr} ip daddr {nb.addr} tcp dport {nb.cluster_port} drop
    ip saddr {nb.addr} ip daddr {na.addr} tcp dport {na.cluster_port} drop
  }}
}}
""")
        return self.split_table

    def heal(self) -> None:
        if self.split_table is not None:
            self.netns.nft(f"delete table inet {self.split_table}\n")
            self.split_table = None

    def _stop(self, proc: subprocess.Popen | None) -> None:
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(3)

    def down(self) -> None:
        atexit.unregister(self.down)
        for n in self.nodes:
            self._stop(n.proc)
            if n.proc is not None and n.proc.stdout:
                n.proc.stdout.close()
        self._stop(self.broker)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -------------------------------------------------------------- helpers
    def broker_url(self, kind: str = "tcp") -> str:
        tcp, ws = self.broker_ports
        if kind == "ssl":
            return f"ssl://{self.broker_addr}:{self.tls_port}"
        return f"tcp://{self.broker_addr}:{tcp}" if kind == "tcp" else f"ws://{self.broker_addr}:{ws}/mqtt"

    def bare_sockets(self, i: int, kind: str, count: int) -> list[socket.socket]:
        """``count`` TCP connections to node i's MQTT (``mqtt``) or WebSocket (``ws``) port that send nothing."""
        node = self.nodes[i]
        port = node.mqtt_port if kind == "mqtt" else node.ws_port
        return self.net(lambda: [socket.create_connection((node.addr, port), timeout=2) for _ in range(count)])

    def ws_upgraded_sockets(self, i: int, count: int) -> list[socket.socket]:
        """``count`` connections to node i's WebSocket port that upgrade (101, subprotocol mqtt) and then never
        send an MQTT CONNECT."""
        node = self.nodes[i]

        def one() -> socket.socket:
            s = socket.create_connection((node.addr, node.ws_port), timeout=5)
            key = base64.b64encode(secrets.token_bytes(16)).decode()
            s.sendall((f"GET /mqtt HTTP/1.1\r\nHost: {node.addr}:{node.ws_port}\r\nUpgrade: websocket\r\n"
                       f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                       "Sec-WebSocket-Protocol: mqtt\r\n\r\n").encode())
            head = b""
            while b"\r\n\r\n" not in head:
                data = s.recv(4096)
                if not data:
                    raise StandinError("the WebSocket upgrade was closed without an answer")
                head += data
            if not head.startswith(b"HTTP/1.1 101"):
                raise StandinError(f"the WebSocket upgrade was answered {head[:40]!r}")
            return s

        return self.net(lambda: [one() for _ in range(count)])

    def targets(self, env_var: str = "VMQ_STANDIN_API_KEY") -> dict:
        return {"cluster": {"api_key_file": str(self.key_file)},
                "nodes": [{"name": n.name, "host": n.addr, "http": n.http_url, "mqtt": n.mqtt_url, "ws": n.ws_url}
                          for n in self.nodes]}

    def write_targets(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(yaml.safe_dump(self.targets(), sort_keys=False))
        return path


def wait_for(pred, what: str, timeout: float = 5.0, interval: float = 0.05):
    """``pred()``'s first truthy value within ``timeout`` seconds, polled every ``interval``; else AssertionError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def json_shape(value):
    """Key order and JSON types, recursively, with node names folded (lists by their first element): what a
    stand-in answer must share with the captured one."""
    if isinstance(value, dict):
        return [("<node>" if "@" in k else k, json_shape(v)) for k, v in value.items()]
    if isinstance(value, list):
        return ["list", json_shape(value[0])] if value else ["list"]
    return type(value).__name__


#: a stand-in beside a real Erlang lab node listens for its cluster peers here (the Erlang node holds 44053)
LAB_STANDIN_CLUSTER_PORT = 44054


def lab_standin_argv(node, nodes, broker: str, broker_ws: str, api_key_file, http_port: int = 8889) -> list[str]:
    """argv of a stand-in that runs in a real Erlang lab node's namespace (tests/lab ``Lab``), in front of the
    shared Mosquitto at ``broker``/``broker_ws``, answering cluster/show from that node's real Erlang view."""
    argv = [sys.executable, "-m", "tests.standin.node", "--name", node.name, "--addr", node.addr,
            "--broker", broker, "--broker-ws", broker_ws,
            "--cluster-port", str(LAB_STANDIN_CLUSTER_PORT), "--api-key-file", str(api_key_file),
            "--cluster-show-url", f"http://{node.addr}:{http_port}/api/v1/cluster/show"]
    for other in nodes:
        if other is not node:
            argv += ["--peer", f"{other.name}={other.addr}:{LAB_STANDIN_CLUSTER_PORT}"]
    return argv
