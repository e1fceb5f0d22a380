"""The lab: N VerneMQ-like "pods" as Linux network namespaces on one bridge, each running a real
``epmd`` and a real Erlang node named ``VerneMQ@<addr>`` (see ``vmqlabnode.erl``), with fault knobs.

    from tests.lab import Lab
    with Lab(n=3) as lab:                      # builds, starts, waits until the cluster has converged
        lab.nodes[0].name, .addr, .netns       # "VerneMQ@10.213.7.1", "10.213.7.1", "vmqlab-4242-0-n0"
        lab.exec(0, ["ss", "-ltn"])            # CompletedProcess, run inside pod 0 (bounded timeout)
        p = lab.spawn(1, ["python3", "-m", "http.server", "8888"])  # Popen in pod 1, killed on teardown
        with lab.block(0, 1, 4369, mode="reject"):   # or "drop"; new connections pod0 -> pod1:4369
            ...
        with lab.partition([0], [1, 2]):  ...   # all traffic between the groups dropped, views split
        with lab.killed(2): ...                 # SIGKILL the Erlang node; restarted on exit
        with lab.epmd_down(1): ...              # epmd killed; epmd + node restarted on exit
        with lab.wrong_cookie(1): ...           # node 1 restarted with another cookie
        with lab.dist_port(1, 9200): ...        # node 1 restarted with its distribution port at 9200
        Lab(n=2, image_cookie=True)             # nodes started like the official image: vm.args -setcookie vmq
        with lab.vm_args_cookie_from_secret(): ...  # ... then with the Secret's cookie written into vm.args
        lab.targets(transport="netns")          # a targets-file mapping (validators/collect/targets.py)

Everything is cleaned up (processes, namespaces, veths, bridge; nft tables live inside the
namespaces) on exit, on exceptions, on KeyboardInterrupt and at interpreter exit. Names carry the
pid so two labs can coexist. The cookie and API key live in 0400/0600 files inside the lab's temp
dir and are never put on a command line.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

HERE = Path(__file__).resolve().parent
STATE_DIR = Path(os.environ.get("VMQLAB_STATE_DIR", "/run/vmqlab" if os.access("/run", os.W_OK) else
                                tempfile.gettempdir() + "/vmqlab"))
#: the official image's /vernemq/etc/vm.args (docker-vernemq, see tests/fixtures/vernemq/image/README.md)
IMAGE_VM_ARGS = HERE.parent / "fixtures" / "vernemq" / "image" / "vm.args"
IMAGE_COOKIE = "vmq"  # what that file's -setcookie line holds
SUBNET_BASE = "10.213"          # pods get 10.213.X.1..N, the bridge 10.213.X.254 (X free on this host)
_counter = 0
_counter_lock = threading.Lock()


class LabError(RuntimeError):
    """The lab could not be built or a knob could not be applied (message says what and how to fix)."""


def run(argv: Sequence[str], timeout: float = 20, check: bool = True, input: str | None = None,
        env: dict | None = None) -> subprocess.CompletedProcess:
    try:
        cp = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, input=input, env=env)
    except subprocess.TimeoutExpired:
        raise LabError(f"{' '.join(argv[:6])}: no result within {timeout}s") from None
    except FileNotFoundError:
        raise LabError(f"{argv[0]}: not installed (run scripts/bootstrap.sh)") from None
    if check and cp.returncode != 0:
        raise LabError(f"{' '.join(argv[:8])}: exit {cp.returncode}: {cp.stderr.strip()[:400]}")
    return cp


def can_build() -> tuple[bool, str]:
    """Whether this process can build a lab; the reason when not."""
    if os.geteuid() != 0:
        return False, "the lab needs root (network namespaces, veths, nftables)"
    for tool in ("ip", "nft", "epmd", "erl", "erlc"):
        if not shutil.which(tool):
            return False, f"{tool} is not installed (scripts/bootstrap.sh installs it)"
    probe = f"vmqlab-probe-{os.getpid()}"
    try:
        run(["ip", "netns", "add", probe], timeout=10)
        run(["ip", "netns", "del", probe], timeout=10)
    except LabError as exc:
        return False, f"cannot create a network namespace: {exc}"
    return True, ""


@dataclass
class LabNode:
    index: int
    name: str
    addr: str
    netns: str
    http_port: int
    home: Path
    dist_port: int
    cookie_file: Path
    #: faults currently applied to this node (for status and for teardown order)
    procs: dict = field(default_factory=dict)
    #: None: the cookie comes from ~/.erlang.cookie. Else the node starts as the official image starts VerneMQ:
    #: ``-args_file etc/vm.args`` (the image's file, -name rewritten) whose ``-setcookie`` is this file's content
    #: or, for "vmq", the image's own line (see Lab.image_start)
    vm_args_cookie: str | None = None

    @property
    def http_url(self) -> str:
        return f"http://{self.addr}:{self.http_port}"


class Lab:
    def __init__(self, n: int = 3, *, http_port: int = 8888, epmd_port: int = 4369,
                 dist_range: tuple[int, int] = (9100, 9109), dist_port: int | None = None,
                 cluster_port: int = 44053, ticktime: int = 4, api_key: str | None = None,
                 cookie: str | None = None, ready_timeout: float = 60.0, detached: bool = False,
                 image_cookie: bool = False):
        if not 1 <= n <= 200:
            raise ValueError("n must be 1..200")
        global _counter
        with _counter_lock:
            _counter += 1
            seq = _counter
        self.n = n
        self.pid = os.getpid()
        self.id = f"{self.pid}-{seq}"
        self.tag = f"{self.pid:x}{seq}"[-8:]          # for interface names (15-char limit)
        self.bridge = f"vlb{self.tag}"
        self.http_port, self.epmd_port, self.cluster_port = http_port, epmd_port, cluster_port
        self.dist_range = dist_range
        self.base_dist_port = dist_port if dist_port is not None else dist_range[0]
        self.ticktime = ticktime
        self.api_key = api_key or "lab-api-" + secrets.token_hex(8)
        self.cookie = cookie or "labcookie" + secrets.token_hex(10)
        self.ready_timeout = ready_timeout
        self.detached = detached
        self.dir = Path(tempfile.mkdtemp(prefix=f"vmqlab-{self.id}-"))
        self.subnet: ipaddress.IPv4Network | None = None
        self.nodes: list[LabNode] = []
        self._procs: list[subprocess.Popen] = []
        self._down = False
        self._nft_rules: dict[str, list[str]] = {}
        self._lock = threading.RLock()
        self.cookie_file = self.dir / "cookie"
        self.api_key_file = self.dir / "api-key"
        self.image_cookie = image_cookie

    # ----------------------------------------------------------------- build / teardown
    def __enter__(self) -> "Lab":
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.down()

    def up(self) -> "Lab":
        from validators.core import redact
        redact.register(self.cookie)
        redact.register(self.api_key)
        if not self.detached:
            atexit.register(self.down)
            if threading.current_thread() is threading.main_thread() and \
                    signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
                signal.signal(signal.SIGTERM, _sigterm)
        self._write_secret(self.cookie_file, self.cookie)
        self._write_secret(self.api_key_file, self.api_key)
        run(["erlc", "-o", str(self.dir), str(HERE / "vmqlabnode.erl")], timeout=60)
        self.subnet = self._claim_subnet()
        self._save_state()
        hosts = list(self.subnet.hosts())
        run(["ip", "link", "add", self.bridge, "type", "bridge"])
        run(["ip", "addr", "add", f"{hosts[-1]}/{self.subnet.prefixlen}", "dev", self.bridge])
        run(["ip", "link", "set", self.bridge, "up"])
        for i in range(self.n):
            ns = f"vmqlab-{self.id}-n{i}"
            addr = str(hosts[i])
            home = self.dir / f"n{i}"
            home.mkdir()
            node = LabNode(i, f"VerneMQ@{addr}", addr, ns, self.http_port, home, self.base_dist_port,
                           self.cookie_file, vm_args_cookie=IMAGE_COOKIE if self.image_cookie else None)
            self.nodes.append(node)
            self._save_state()
            veth = f"vl{self.tag}h{i}"
            run(["ip", "netns", "add", ns])
            run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
            run(["ip", "link", "set", veth, "master", self.bridge, "up"])
            run(["ip", "-n", ns, "addr", "add", f"{addr}/{self.subnet.prefixlen}", "dev", "eth0"])
            run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=_NFT_BASE)
        for node in self.nodes:
            self._start_epmd(node)
        self._wait(lambda: all(self._epmd_up(n) for n in self.nodes), "every epmd to listen", 20)
        for node in self.nodes:
            self._start_node(node)
        self.wait_converged()
        return self

    def down(self) -> None:
        with self._lock:
            if self._down:
                return
            self._down = True
        for p in self._procs:
            _killpg(p)
        for node in self.nodes:
            _kill_netns_pids(node.netns)
        for node in self.nodes:
            run(["ip", "netns", "del", node.netns], check=False, timeout=10)
        run(["ip", "link", "del", self.bridge], check=False, timeout=10)
        for p in self._procs:
            with contextlib.suppress(Exception):
                p.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            (STATE_DIR / f"{self.id}.json").unlink()
        with contextlib.suppress(Exception):
            atexit.unregister(self.down)

    # ----------------------------------------------------------------- public helpers
    def exec(self, i: int, argv: Sequence[str], timeout: float = 30, input: str | None = None,
             check: bool = False, env: dict | None = None) -> subprocess.CompletedProcess:
        """Run ``argv`` inside pod ``i``'s network namespace and wait (bounded) for it."""
        return run(["ip", "netns", "exec", self.nodes[i].netns, *argv], timeout=timeout, check=check,
                   input=input, env=env)

    def spawn(self, i: int, argv: Sequence[str], env: dict | None = None, log: str | None = None,
              **kw) -> subprocess.Popen:
        """Start ``argv`` in pod ``i`` (own process group); it is killed when the lab goes down."""
        out = open(self.dir / (log or f"spawn-n{i}-{len(self._procs)}.log"), "ab")
        p = subprocess.Popen(["ip", "netns", "exec", self.nodes[i].netns, *argv], stdout=out,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                             env=env, **kw)
        out.close()
        self._procs.append(p)
        return p

    def targets(self, transport: str = "netns", http_port: int | None = None) -> dict:
        """A targets-file mapping for this lab (cookie and API key by file, never inline)."""
        return {
            "cluster": {"epmd_port": self.epmd_port, "dist_port_range": list(self.dist_range),
                        "cluster_port": self.cluster_port, "cookie_file": str(self.cookie_file),
                        "api_key_file": str(self.api_key_file), "transport": transport},
            "nodes": [{"name": n.name, "host": n.addr, "netns": n.netns,
                       "http": f"http://{n.addr}:{http_port or n.http_port}"} for n in self.nodes],
        }

    def write_targets(self, path: str | Path, transport: str = "netns", **kw) -> Path:
        import yaml
        path = Path(path)
        path.write_text(yaml.safe_dump(self.targets(transport, **kw), sort_keys=False))
        return path

    def cluster_view(self, i: int, timeout: float = 3) -> dict[str, bool] | None:
        """{member: running} as node ``i``'s /api/v1/cluster/show reports it, None if it does not answer."""
        node = self.nodes[i]
        req = urllib.request.Request(node.http_url + "/api/v1/cluster/show")
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{self.api_key}:".encode()).decode())
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                doc = json.loads(r.read())
        except (OSError, ValueError, urllib.error.URLError):
            return None
        return {row["Node"]: row["Running"] for row in doc["table"]}

    def wait_converged(self, timeout: float | None = None, down: Iterable[int] = ()) -> None:
        """Wait until every running node sees every other running node as Running (and ``down`` as not)."""
        down = set(down)
        up = [n for n in self.nodes if n.index not in down]

        def ok() -> bool:
            for n in up:
                view = self.cluster_view(n.index, timeout=2)
                if view is None:
                    return False
                for m in self.nodes:
                    if view.get(m.name) is not (m.index not in down):
                        return False
            return True
        self._wait(ok, "the cluster views to converge", timeout or self.ready_timeout)

    def wait_views(self, expect: dict[int, dict[int, bool]], timeout: float = 30) -> None:
        """Wait until node i's view says member j is running == expect[i][j]."""
        def ok() -> bool:
            for i, row in expect.items():
                view = self.cluster_view(i, timeout=2)
                if view is None or any(view.get(self.nodes[j].name) is not r for j, r in row.items()):
                    return False
            return True
        self._wait(ok, f"the views {expect}", timeout)

    # ----------------------------------------------------------------- fault knobs
    @contextlib.contextmanager
    def block(self, src: int, dst: int, port: int, mode: str = "drop"):
        """New TCP connections from pod ``src`` to pod ``dst``:``port`` are dropped or rejected (RST)."""
        if mode not in ("drop", "reject"):
            raise ValueError("mode must be drop or reject")
        verdict = "drop" if mode == "drop" else "reject with tcp reset"
        handle = self._nft_add(dst, "input",
                               f"ip saddr {self.nodes[src].addr} tcp dport {port} ct state new {verdict}")
        try:
            yield
        finally:
            self._nft_del(dst, "input", handle)

    @contextlib.contextmanager
    def partition(self, a: Iterable[int], b: Iterable[int], timeout: float = 40):
        """Drop every packet between group ``a`` and group ``b``; waits until the views split/heal."""
        a, b = sorted(set(a)), sorted(set(b))
        handles = []
        try:
            for side, other in ((a, b), (b, a)):
                addrs = ", ".join(self.nodes[j].addr for j in other)
                for i in side:
                    handles.append((i, "input", self._nft_add(i, "input", f"ip saddr {{ {addrs} }} drop")))
                    handles.append((i, "output", self._nft_add(i, "output", f"ip daddr {{ {addrs} }} drop")))
            expect = {i: {j: (j in a) == (i in a) for j in a + b} for i in a + b}
            self.wait_views(expect, timeout)
            yield
        finally:
            for i, chain, h in handles:
                self._nft_del(i, chain, h)
            if not self._down:
                self.wait_converged(timeout)

    @contextlib.contextmanager
    def killed(self, i: int, timeout: float = 40):
        """SIGKILL node ``i``'s Erlang VM (epmd stays up); restarted and re-converged on exit."""
        node = self.nodes[i]
        try:
            _killpg(node.procs.pop("beam"))
            self.wait_converged(timeout, down=[i])
            yield
        finally:
            if not self._down:
                self._start_node(node)
                self.wait_converged(timeout)

    @contextlib.contextmanager
    def epmd_down(self, i: int, timeout: float = 40):
        """Kill pod ``i``'s epmd (the Erlang node keeps running, unregistered); on exit epmd and node restart."""
        node = self.nodes[i]
        try:
            _killpg(node.procs.pop("epmd"))
            self._wait(lambda: not self._epmd_up(node), "epmd to stop", 10)
            yield
        finally:
            if not self._down:
                self._start_epmd(node)
                self._wait(lambda: self._epmd_up(node), "epmd to restart", 20)
                self._restart_node(node)
                self.wait_converged(timeout)

    @contextlib.contextmanager
    def wrong_cookie(self, i: int, timeout: float = 40):
        """Restart node ``i`` with a different cookie; the others see it as down."""
        node = self.nodes[i]
        other = node.home / "other-cookie"
        self._write_secret(other, "othercookie" + secrets.token_hex(8))
        try:
            node.cookie_file = other
            self._restart_node(node)
            others = [j for j in range(self.n) if j != i]
            self.wait_views({**{j: {i: False} for j in others}, i: {j: False for j in others}}, timeout)
            yield
        finally:
            node.cookie_file = self.cookie_file
            if not self._down:
                self._restart_node(node)
                self.wait_converged(timeout)

    @contextlib.contextmanager
    def dist_port(self, i: int, port: int, timeout: float = 40):
        """Restart node ``i`` with its distribution port pinned to ``port`` (e.g. outside the range)."""
        node = self.nodes[i]
        try:
            node.dist_port = port
            self._restart_node(node)
            self.wait_converged(timeout)
            yield
        finally:
            node.dist_port = self.base_dist_port
            if not self._down:
                self._restart_node(node)
                self.wait_converged(timeout)

    @contextlib.contextmanager
    def vm_args_cookie_from_secret(self, timeout: float = 40):
        """For a lab started with ``image_cookie=True``: every node restarted with the Secret's cookie (the
        lab's cookie file) on the ``-setcookie`` line of its vm.args, as a fixed chart would write it; back
        to the image's ``-setcookie vmq`` on exit."""
        try:
            self._restart_all(str(self.cookie_file), timeout)
            yield
        finally:
            if not self._down:
                self._restart_all(IMAGE_COOKIE, timeout)

    def _restart_all(self, vm_args_cookie: str, timeout: float) -> None:
        for node in self.nodes:
            node.vm_args_cookie = vm_args_cookie
            self._restart_node(node)
        self.wait_converged(timeout)

    # ----------------------------------------------------------------- internals
    def _write_secret(self, path: Path, value: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(value)

    def _claim_subnet(self) -> ipaddress.IPv4Network:
        import fcntl
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        with open(STATE_DIR / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            used = run(["ip", "-4", "-o", "addr"], timeout=10).stdout
            claimed = set()
            for f in STATE_DIR.glob("*.json"):
                with contextlib.suppress(Exception):
                    claimed.add(json.loads(f.read_text()).get("subnet"))
            start = self.pid % 200
            for k in range(250):
                x = (start + k) % 250
                net = f"{SUBNET_BASE}.{x}.0/24"
                if f" {SUBNET_BASE}.{x}." not in used and net not in claimed:
                    self.subnet = ipaddress.IPv4Network(net)
                    self._save_state()
                    return self.subnet
        raise LabError(f"no free {SUBNET_BASE}.X.0/24 subnet on this host; run `python -m tests.lab down`")

    def _save_state(self) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        state = {"id": self.id, "owner_pid": self.pid, "detached": self.detached, "bridge": self.bridge,
                 "subnet": str(self.subnet) if self.subnet else None, "dir": str(self.dir),
                 "netns": [n.netns for n in self.nodes],
                 "nodes": [{"name": n.name, "addr": n.addr, "netns": n.netns, "http": n.http_url}
                           for n in self.nodes],
                 "cookie_file": str(self.cookie_file), "api_key_file": str(self.api_key_file)}
        tmp = STATE_DIR / f".{self.id}.tmp"
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, STATE_DIR / f"{self.id}.json")

    def _start_epmd(self, node: LabNode) -> None:
        node.procs["epmd"] = self.spawn(node.index, ["epmd", "-port", str(self.epmd_port)],
                                        log=f"epmd-n{node.index}.log")

    def _epmd_up(self, node: LabNode) -> bool:
        cp = self.exec(node.index, ["epmd", "-port", str(self.epmd_port), "-names"], timeout=10)
        return cp.returncode == 0 and "up and running" in cp.stdout

    def _start_node(self, node: LabNode) -> None:
        home = node.home / "home"
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir()
        cookie = home / ".erlang.cookie"
        shutil.copyfile(node.cookie_file, cookie)
        os.chmod(cookie, 0o400)
        conf = node.home / "node.conf"
        members = ", ".join(json.dumps(m.name) for m in self.nodes)
        self._write_secret(conf, f"{{members, [{members}]}}.\n{{http_port, {node.http_port}}}.\n"
                                 f"{{cluster_port, {self.cluster_port}}}.\n{{api_key, {json.dumps(self.api_key)}}}.\n"
                                 f"{{ip, {json.dumps(node.addr)}}}.\n")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "VMQLAB_CONF": str(conf),
               "ERL_EPMD_PORT": str(self.epmd_port)}
        start = ["-name", node.name]
        if node.vm_args_cookie is not None:
            start = ["-args_file", str(self._image_etc(node))]
        argv = ["erl", *start, "-noshell", "-noinput",
                "-kernel", "inet_dist_listen_min", str(node.dist_port), "inet_dist_listen_max", str(node.dist_port),
                "-kernel", "net_ticktime", str(self.ticktime), "-pa", str(self.dir),
                "+S", "1:1", "+A", "1", "+sbwt", "none", "+sbwtdcpu", "none", "+sbwtdio", "none",
                "-s", "vmqlabnode", "start"]
        node.procs["beam"] = self.spawn(node.index, argv, env=env, log=f"beam-n{node.index}.log")

    def _image_etc(self, node: LabNode) -> Path:
        """etc/vm.args and etc/vernemq.conf as the official image's start script leaves them; returns vm.args.

        vm.args is the image's own file with the ``-name`` line rewritten (the start script's sed); its
        ``-setcookie`` stays ``vmq`` unless ``node.vm_args_cookie`` names a cookie file. vernemq.conf gets
        ``distributed_cookie`` = the Secret's cookie, where DOCKER_VERNEMQ_DISTRIBUTED_COOKIE lands; nothing
        here reads it, as the real release does not when vm.args exists (it starts with -args_file). The
        node's ~/.erlang.cookie also holds the Secret's cookie: Erlang itself decides that -setcookie wins.
        """
        etc = node.home / "etc"
        etc.mkdir(exist_ok=True)
        text = IMAGE_VM_ARGS.read_text()
        text = re.sub(r"(?m)^-name .*$", f"-name {node.name}", text)
        if node.vm_args_cookie != IMAGE_COOKIE:
            text = re.sub(r"(?m)^-setcookie .*$", "-setcookie " + Path(node.vm_args_cookie).read_text().strip(), text)
        self._write_secret(etc / "vm.args", text)
        self._write_secret(etc / "vernemq.conf", "## Start\ndistributed_cookie = "
                           + node.cookie_file.read_text().strip() + "\n## End\n")
        return etc / "vm.args"

    def _restart_node(self, node: LabNode) -> None:
        old = node.procs.pop("beam", None)
        if old is not None:
            _killpg(old)
            with contextlib.suppress(Exception):
                old.wait(timeout=10)
        self._wait(lambda: self._port_free(node), f"{node.name} to release its ports", 15)
        self._start_node(node)

    def _port_free(self, node: LabNode) -> bool:
        out = self.exec(node.index, ["ss", "-Hltn", f"sport = :{node.http_port}"], timeout=10).stdout
        return not out.strip()

    def _nft_add(self, i: int, chain: str, rule: str) -> str:
        ns = self.nodes[i].netns
        cp = run(["ip", "netns", "exec", ns, "nft", "--echo", "--handle", "add", "rule", "inet", "vmqlab",
                  chain, *rule.split()], timeout=10)
        for tok_i, tok in enumerate(cp.stdout.split()):
            if tok == "handle":
                return cp.stdout.split()[tok_i + 1]
        raise LabError(f"nft did not report a rule handle for {rule!r}: {cp.stdout!r}")

    def _nft_del(self, i: int, chain: str, handle: str) -> None:
        if self._down:
            return
        run(["ip", "netns", "exec", self.nodes[i].netns, "nft", "delete", "rule", "inet", "vmqlab", chain,
             "handle", handle], timeout=10, check=False)

    def _wait(self, cond, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if cond():
                return
            if time.monotonic() > deadline:
                raise LabError(f"timed out after {timeout:g}s waiting for {what} (logs in {self.dir})")
            time.sleep(0.2)

    def status(self) -> list[dict]:
        return [{"node": n.name, "netns": n.netns, "view": self.cluster_view(n.index)} for n in self.nodes]


_NFT_BASE = """table inet vmqlab {
  chain input { type filter hook input priority 0; policy accept; }
  chain output { type filter hook output priority 0; policy accept; }
}
"""


def _sigterm(signum, frame):  # turn SIGTERM into an exception so context managers clean up
    raise SystemExit(128 + signum)


def _killpg(p: subprocess.Popen | None) -> None:
    if p is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(p.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        p.wait(timeout=5)


def _kill_netns_pids(ns: str) -> None:
    cp = run(["ip", "netns", "pids", ns], check=False, timeout=10)
    for tok in cp.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(tok), signal.SIGKILL)


def teardown_state(state: dict) -> None:
    """Remove a lab from its state file (used by `python -m tests.lab down` for detached/orphaned labs)."""
    for ns in state.get("netns", []):
        _kill_netns_pids(ns)
    for ns in state.get("netns", []):
        run(["ip", "netns", "del", ns], check=False, timeout=10)
    if state.get("bridge"):
        run(["ip", "link", "del", state["bridge"]], check=False, timeout=10)
    if state.get("dir"):
        shutil.rmtree(state["dir"], ignore_errors=True)
    with contextlib.suppress(OSError):
        (STATE_DIR / f"{state['id']}.json").unlink()


def list_states() -> list[dict]:
    out = []
    for f in sorted(STATE_DIR.glob("*.json")) if STATE_DIR.exists() else []:
        with contextlib.suppress(Exception):
            out.append(json.loads(f.read_text()))
    return out


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
