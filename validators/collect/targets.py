"""The targets file: a VerneMQ cluster described by hand (VMs, bare metal, the test lab).

Shared by `vmq-validate distribution` and `vmq-validate clients`.

```yaml
cluster:
  epmd_port: 4369
  dist_port_range: [9100, 9109]
  cluster_port: 44053
  cookie_env: VMQ_COOKIE        # or cookie_file: PATH; never the cookie itself
  api_key_env: VMQ_API_KEY      # optional (or api_key_file), for /api/v1
  transport: direct             # direct | netns | netns-shell | kube-exec (how checks run *from* each node)
nodes:
  - name: VerneMQ@10.0.0.1
    host: 10.0.0.1
    http: http://10.0.0.1:8888
    mqtt: tcp://10.0.0.1:1883
    ws: ws://10.0.0.1:8080/mqtt
    netns: vmq-a                # only for transports netns / netns-shell
    pod: vernemq-0              # only for transport kube-exec (with namespace: under cluster or node)
```
Transports: ``direct`` probes from where the validator runs; ``netns`` runs the Python probe in each
node's network namespace (``ip netns exec``); ``netns-shell`` runs the bash probe script that
``kube-exec`` runs in VerneMQ pods, but in the namespace (proves the script without a cluster).
Secrets are read from the environment or a file, never from the command line, and are
registered with the redactor as soon as they are read.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlparse

from ..core import secret
from ..core.errors import InputError
from ..core.inputs import load_yaml, read_text, url_port
from ..core.secret import Secret

TRANSPORTS = ("direct", "netns", "netns-shell", "kube-exec")
_NODE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*@[A-Za-z0-9_.:-]+$")
_K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_OBJECT_NAME = {"netns": re.compile(r"[A-Za-z0-9_.-]{1,64}"), "pod": _K8S_NAME, "namespace": _K8S_NAME,
                "container": _K8S_NAME}
_CLUSTER_KEYS = {"epmd_port", "dist_port_range", "cluster_port", "cookie_env", "cookie_file",
                 "api_key_env", "api_key_file", "transport", "namespace"}
_NODE_KEYS = {"name", "host", "http", "mqtt", "mqtts", "ws", "wss", "netns", "pod", "namespace", "container"}


@dataclass(frozen=True)
class Node:
    name: str
    host: str
    http: str | None = None
    mqtt: str | None = None
    mqtts: str | None = None
    ws: str | None = None
    wss: str | None = None
    netns: str | None = None
    pod: str | None = None
    namespace: str | None = None
    container: str | None = None

    @property
    def short(self) -> str:
        """The part before '@' (what EPMD registers)."""
        return self.name.split("@", 1)[0]


@dataclass(frozen=True)
class ClusterSpec:
    nodes: tuple[Node, ...]
    epmd_port: int = 4369
    dist_port_range: tuple[int, int] = (9100, 9109)
    cluster_port: int = 44053
    transport: str = "direct"
    cookie: Secret | None = field(default=None, repr=False)
    api_key: Secret | None = field(default=None, repr=False)
    source: str = ""

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)


def _port(where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise InputError(where, f"{value!r} is not a TCP port.", "use a whole number from 1 to 65535.")
    return value


def _secret(where: str, env_key: str | None, file_key: str | None, env: Mapping[str, str],
            base: Path, required: bool, kind: str = secret.COOKIE) -> Secret | None:
    """The Secret named by ``*_env`` or ``*_file`` (read, stripped, validated and registered once)."""
    if env_key and file_key:
        raise InputError(where, "both an environment variable and a file are given.", "keep one of them.")
    if env_key is not None:
        return Secret.from_env(env_key, where, env, kind)
    if file_key is not None:
        return Secret.from_file(file_key, where, base, kind)
    if required:
        raise InputError(where, "no secret source given.", "set cookie_env (or cookie_file) under cluster:.")
    return None


def _url(where: str, value: Any, schemes: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise InputError(where, f"{value!r} is not a URL.", f"write e.g. {schemes[0]}://10.0.0.1:PORT.")
    u = urlparse(value)
    if u.scheme not in schemes or not u.hostname:
        raise InputError(where, f"{value!r} is not a {'/'.join(schemes)} URL with a host.",
                         f"write e.g. {schemes[0]}://10.0.0.1:PORT.")
    url_port(u, where, value)  # :0, :+1, other scripts' digits and out-of-range ports are refused
    return value


def parse_targets(raw: Any, source: str = "<targets>", env: Mapping[str, str] | None = None,
                  base: Path | None = None, need_cookie: bool = True) -> ClusterSpec:
    env = os.environ if env is None else env
    base = base or Path(".")
    if not isinstance(raw, Mapping):
        raise InputError(source, "the targets file must be a mapping with `cluster:` and `nodes:`.",
                         "see `vmq-validate distribution --help` for the format.")
    extra = set(raw) - {"cluster", "nodes"}
    if extra:
        raise InputError(source, f"unknown top-level key(s) {sorted(extra)}.", "use only cluster: and nodes:.")
    cl = raw.get("cluster") or {}
    if not isinstance(cl, Mapping):
        raise InputError(f"{source}: cluster", "must be a mapping.", "see the format in the docs.")
    bad = set(cl) - _CLUSTER_KEYS
    if bad:
        raise InputError(f"{source}: cluster", f"unknown key(s) {sorted(bad)}.", f"known keys: {sorted(_CLUSTER_KEYS)}.")
    if "cookie" in cl or "api_key" in cl:
        raise InputError(f"{source}: cluster", "secrets may not be written into the targets file.",
                         "use cookie_env/cookie_file and api_key_env/api_key_file.")
    epmd = _port(f"{source}: cluster.epmd_port", cl.get("epmd_port", 4369))
    cport = _port(f"{source}: cluster.cluster_port", cl.get("cluster_port", 44053))
    rng = cl.get("dist_port_range", [9100, 9109])
    if not (isinstance(rng, (list, tuple)) and len(rng) == 2):
        raise InputError(f"{source}: cluster.dist_port_range", f"{rng!r} is not [min, max].", "write e.g. [9100, 9109].")
    lo = _port(f"{source}: cluster.dist_port_range[0]", rng[0])
    hi = _port(f"{source}: cluster.dist_port_range[1]", rng[1])
    if lo > hi:
        raise InputError(f"{source}: cluster.dist_port_range", f"min {lo} is above max {hi}.", "swap them.")
    transport = cl.get("transport", "direct")
    if transport not in TRANSPORTS:
        raise InputError(f"{source}: cluster.transport", f"{transport!r} is not a transport.", f"use one of {TRANSPORTS}.")
    cookie = _secret(f"{source}: cluster.cookie_env/cookie_file", cl.get("cookie_env"), cl.get("cookie_file"),
                     env, base, need_cookie)
    api_key = _secret(f"{source}: cluster.api_key_env/api_key_file", cl.get("api_key_env"), cl.get("api_key_file"),
                      env, base, False, secret.API_KEY)

    nodes_raw = raw.get("nodes")
    if not isinstance(nodes_raw, list) or not nodes_raw:
        raise InputError(f"{source}: nodes", "must be a non-empty list.", "list every VerneMQ node with name and host.")
    nodes: list[Node] = []
    seen: set[str] = set()
    for i, n in enumerate(nodes_raw):
        where = f"{source}: nodes[{i}]"
        if not isinstance(n, Mapping):
            raise InputError(where, "must be a mapping.", "write name: and host: at least.")
        bad = set(n) - _NODE_KEYS
        if bad:
            raise InputError(where, f"unknown key(s) {sorted(bad)}.", f"known keys: {sorted(_NODE_KEYS)}.")
        name = n.get("name")
        if not isinstance(name, str) or not _NODE_NAME.fullmatch(name):
            raise InputError(f"{where}.name", f"{name!r} is not an Erlang node name.", "write e.g. VerneMQ@10.0.0.1.")
        if name in seen:
            raise InputError(f"{where}.name", f"{name} is listed twice.", "list each node once.")
        seen.add(name)
        host = n.get("host")
        if not isinstance(host, str) or not host:
            raise InputError(f"{where}.host", f"{host!r} is not a host.", "write an IP address or DNS name.")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not re.fullmatch(r"[A-Za-z0-9.-]+", host):
                raise InputError(f"{where}.host", f"{host!r} is neither an IP address nor a DNS name.",
                                 "write e.g. 10.0.0.1.") from None
        kw: dict[str, Any] = {"name": name, "host": host}
        for key, schemes in (("http", ("http", "https")), ("mqtt", ("tcp", "mqtt")), ("mqtts", ("ssl", "mqtts", "tls")),
                             ("ws", ("ws",)), ("wss", ("wss",))):
            if n.get(key) is not None:
                kw[key] = _url(f"{where}.{key}", n[key], schemes)
        for key in ("netns", "pod", "namespace", "container"):
            if n.get(key) is not None:
                if not isinstance(n[key], str) or not n[key]:
                    raise InputError(f"{where}.{key}", f"{n[key]!r} must be a non-empty string.", "or leave it out.")
                if not _OBJECT_NAME[key].fullmatch(n[key]):
                    raise InputError(f"{where}.{key}", f"{n[key]!r} is not a valid {key} name.",
                                     "use lowercase letters, digits, '-' and '.' (netns: also '_' and capitals).")
                kw[key] = n[key]
        if transport in ("netns", "netns-shell") and "netns" not in kw:
            raise InputError(f"{where}.netns", "transport is netns but this node names no network namespace.",
                             "add netns: NAME to every node.")
        if transport == "kube-exec":
            if "pod" not in kw:
                raise InputError(f"{where}.pod", "transport is kube-exec but this node names no pod.",
                                 "add pod: NAME to every node (and namespace: under cluster or the node).")
            ns = cl.get("namespace")
            if ns is not None and not (isinstance(ns, str) and _K8S_NAME.fullmatch(ns)):
                raise InputError(f"{source}: cluster.namespace", f"{ns!r} is not a namespace name.",
                                 "use lowercase letters, digits and '-'.")
            kw.setdefault("namespace", ns)
            if not kw.get("namespace"):
                raise InputError(f"{where}.namespace", "transport is kube-exec but no namespace is given.",
                                 "add namespace: NS under cluster: or to the node.")
        nodes.append(Node(**kw))
    return ClusterSpec(nodes=tuple(nodes), epmd_port=epmd, dist_port_range=(lo, hi), cluster_port=cport,
                       transport=transport, cookie=cookie, api_key=api_key, source=source)


def load_targets(path: str, env: Mapping[str, str] | None = None, need_cookie: bool = True) -> ClusterSpec:
    p = Path(path)
    raw = load_yaml(read_text(p, "--targets", "pass an existing targets YAML file."), "--targets", str(path))
    return parse_targets(raw, source=str(path), env=env, base=p.parent, need_cookie=need_cookie)
