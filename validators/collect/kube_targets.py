"""Targets from a live cluster: the release's VerneMQ pods, and the cookie / API key from its Secrets.

Shared by `vmq-validate distribution` and `vmq-validate clients`. Follows docs/contracts.md:

* pods: ``label_selector`` (``app.kubernetes.io/name=vernemq,app.kubernetes.io/instance=<release>``);
  only Running pods with an IP become nodes (the others are listed in ``meta["pods_skipped"]``).
* container: the one with a port named ``epmd`` (else one named ``vernemq``, else the first).
* ports by container-port name (``epmd``, ``cluster``, ``http``, ``mqtt``, ``mqtts``, ``ws``, ``wss``),
  falling back to 4369, 44053, 8888, 1883, 8883, 8080, 8443.
* distribution range: the env ``DOCKER_VERNEMQ_ERLANG__DISTRIBUTION__PORT_RANGE__MINIMUM/MAXIMUM`` (the
  last definition wins), else the pod annotation ``vernemq-toolkit/dist-port-range`` ("9100-9109"), else 9100-9109.
* node name, as the official image derives it (docker-vernemq ``vernemq.sh``): with env
  ``DOCKER_VERNEMQ_DISCOVERY_KUBERNETES`` set, ``VerneMQ@<pod>.<subdomain>.<ns>.svc.<cluster>``
  (subdomain = env ``DOCKER_VERNEMQ_KUBERNETES_SUBDOMAIN`` or ``spec.subdomain``; cluster = env
  ``DOCKER_VERNEMQ_KUBERNETES_CLUSTER_NAME`` or ``cluster.local``; without a subdomain
  ``VerneMQ@<pod>.<ns>.svc.<cluster>``); else env ``DOCKER_VERNEMQ_NODENAME`` as the host part; else
  ``VerneMQ@<pod IP>``.
* cookie: the container env ``DOCKER_VERNEMQ_DISTRIBUTED_COOKIE`` (its ``secretKeyRef`` is followed),
  else the Secret labelled ``vernemq-toolkit/secret=erlang-cookie`` (+ instance), key ``cookie``.
  API key: the container env ``API_KEY`` (its ``secretKeyRef`` is followed), else the Secret labelled
  ``vernemq-toolkit/secret=api-key`` (+ instance), key ``api-key``.
  Both become :class:`~validators.core.secret.Secret` objects the moment they are read (registered with
  the redactor); a Secret that cannot be read is not fatal (``meta`` says why; kube-exec then uses each
  pod's own cookie), but a value with a control character inside is an input error naming the Secret.
"""

from __future__ import annotations

import base64
from typing import Any

from ..core.addr import url
from ..core.errors import CollectionError, InputError
from ..core.secret import API_KEY, COOKIE, Secret
from .kubeclient import explain_error
from .targets import ClusterSpec, Node

COOKIE_ENV = "DOCKER_VERNEMQ_DISTRIBUTED_COOKIE"
API_KEY_ENV = "API_KEY"  # the chart's container env (the image registers it with `vmq-admin api-key add`)
RANGE_ANNOTATION = "vernemq-toolkit/dist-port-range"
RANGE_ENV = ("DOCKER_VERNEMQ_ERLANG__DISTRIBUTION__PORT_RANGE__MINIMUM",
             "DOCKER_VERNEMQ_ERLANG__DISTRIBUTION__PORT_RANGE__MAXIMUM")
DEFAULT_PORTS = {"epmd": 4369, "cluster": 44053, "http": 8888, "mqtt": 1883, "mqtts": 8883, "ws": 8080, "wss": 8443}
INSTANCE = "app.kubernetes.io/instance"


def _get(obj: Any, *path: str) -> Any:
    """obj.a.b or obj["a"]["b"] (kubernetes models or plain dicts), None when absent."""
    for p in path:
        if obj is None:
            return None
        obj = obj.get(p) if isinstance(obj, dict) else getattr(obj, p, None)
    return obj


def pick_container(pod: Any) -> Any:
    containers = _get(pod, "spec", "containers") or []
    for c in containers:
        if any(_get(p, "name") == "epmd" for p in _get(c, "ports") or []):
            return c
    for c in containers:
        if _get(c, "name") == "vernemq":
            return c
    if not containers:
        raise CollectionError(f"pod {_get(pod, 'metadata', 'name')} has no containers")
    return containers[0]


def container_env(container: Any) -> dict[str, Any]:
    """name -> value (str) or the env var object itself when it uses valueFrom."""
    out: dict[str, Any] = {}
    for e in _get(container, "env") or []:
        name = _get(e, "name")
        value = _get(e, "value")
        out[name] = value if value is not None else e
    return out


def container_ports(container: Any) -> dict[str, int]:
    ports = dict(DEFAULT_PORTS)
    for p in _get(container, "ports") or []:
        name, num = _get(p, "name"), _get(p, "container_port") or _get(p, "containerPort")
        if name in ports and isinstance(num, int):
            ports[name] = num
    return ports


def parse_range(text: str, where: str) -> tuple[int, int]:
    try:
        lo_s, hi_s = str(text).split("-", 1)
        lo, hi = int(lo_s), int(hi_s)
    except ValueError:
        raise InputError(where, f"{text!r} is not a port range.", 'write it as "9100-9109".') from None
    if not (1 <= lo <= hi <= 65535):
        raise InputError(where, f"{text!r} is not a valid port range.", "use MIN-MAX with 1 <= MIN <= MAX <= 65535.")
    return lo, hi


def dist_range(pod: Any, env: dict[str, Any]) -> tuple[tuple[int, int], str]:
    """The effective env (last definition wins: what the Erlang VM uses), else the annotation, else 9100-9109."""
    ann = (_get(pod, "metadata", "annotations") or {}).get(RANGE_ANNOTATION)
    pod_name = _get(pod, "metadata", "name")
    lo, hi = env.get(RANGE_ENV[0]), env.get(RANGE_ENV[1])
    if isinstance(lo, str) and isinstance(hi, str):
        return parse_range(f"{lo}-{hi}", f"pod {pod_name}: env {RANGE_ENV[0]}/MAXIMUM"), "env"
    if ann:
        return parse_range(ann, f"pod {pod_name}: annotation {RANGE_ANNOTATION}"), "annotation"
    return (9100, 9109), "default"


def node_name(pod: Any, env: dict[str, Any], namespace: str) -> str:
    name = _get(pod, "metadata", "name")
    if "DOCKER_VERNEMQ_DISCOVERY_KUBERNETES" in env:
        cluster = env.get("DOCKER_VERNEMQ_KUBERNETES_CLUSTER_NAME")
        cluster = cluster if isinstance(cluster, str) and cluster else "cluster.local"
        sub = env.get("DOCKER_VERNEMQ_KUBERNETES_SUBDOMAIN")
        sub = sub if isinstance(sub, str) and sub else _get(pod, "spec", "subdomain")
        host = f"{name}.{sub}.{namespace}.svc.{cluster}" if sub else f"{name}.{namespace}.svc.{cluster}"
        return f"VerneMQ@{host}"
    nodename = env.get("DOCKER_VERNEMQ_NODENAME")
    if isinstance(nodename, str) and nodename:
        return nodename if "@" in nodename else f"VerneMQ@{nodename}"
    return f"VerneMQ@{_get(pod, 'status', 'pod_ip') or _get(pod, 'status', 'podIP')}"


def _secret_value(kube: Any, namespace: str, secret: Any, key: str) -> Secret | None:
    data = _get(secret, "data") or {}
    raw = data.get(key)
    if raw is None:
        return None
    try:
        value = base64.b64decode(raw)
    except ValueError:
        return None
    name = _get(secret, "metadata", "name")
    return Secret.coerce(value, f"Secret {namespace}/{name} key {key}", API_KEY if key == "api-key" else COOKIE)


def read_cookie(kube: Any, namespace: str, env: dict[str, Any], instance: str | None) -> tuple[Secret | None, str]:
    """(cookie or None, where it came from or why it is missing)."""
    ref = env.get(COOKIE_ENV)
    if isinstance(ref, str):
        return Secret.coerce(ref, f"env {COOKIE_ENV} (literal) of the pod"), f"env {COOKIE_ENV} (literal)"
    if ref is not None:
        sk = _get(ref, "value_from", "secret_key_ref") or _get(ref, "valueFrom", "secretKeyRef")
        if sk is not None:
            sname, skey = _get(sk, "name"), _get(sk, "key")
            try:
                secret = kube.core().read_namespaced_secret(sname, namespace, _request_timeout=kube.timeout)
            except Exception as exc:  # noqa: BLE001 - mapped to a reason
                return None, explain_error(exc, f"Secret {namespace}/{sname}")
            value = _secret_value(kube, namespace, secret, skey)
            return value, f"Secret {sname} key {skey}" if value else f"Secret {sname} has no key {skey}"
    return _labelled_secret(kube, namespace, "erlang-cookie", "cookie", instance)


def read_api_key(kube: Any, namespace: str, env: dict[str, Any], instance: str | None) -> tuple[Secret | None, str]:
    """(API key or None, where from): the container env ``API_KEY``'s ``secretKeyRef`` (a `get` of one named
    Secret, which a Role can grant by resourceNames), else the Secret labelled ``vernemq-toolkit/secret=api-key``."""
    ref = env.get(API_KEY_ENV)
    sk = None if ref is None or isinstance(ref, str) else (
        _get(ref, "value_from", "secret_key_ref") or _get(ref, "valueFrom", "secretKeyRef"))
    if sk is not None:
        sname, skey = _get(sk, "name"), _get(sk, "key")
        try:
            secret = kube.core().read_namespaced_secret(sname, namespace, _request_timeout=kube.timeout)
        except Exception:  # noqa: BLE001 - fall back to the labelled Secret
            return _labelled_secret(kube, namespace, "api-key", "api-key", instance)
        value = _secret_value(kube, namespace, secret, skey)
        if value:
            return value, f"Secret {sname} key {skey}"
    return _labelled_secret(kube, namespace, "api-key", "api-key", instance)


def _labelled_secret(kube: Any, namespace: str, kind: str, key: str, instance: str | None
                     ) -> tuple[Secret | None, str]:
    selector = f"vernemq-toolkit/secret={kind}" + (f",{INSTANCE}={instance}" if instance else "")
    try:
        secrets = kube.core().list_namespaced_secret(namespace, label_selector=selector,
                                                     _request_timeout=kube.timeout).items
    except Exception as exc:  # noqa: BLE001
        return None, explain_error(exc, f"Secrets ({selector}) in {namespace}")
    for s in secrets:
        value = _secret_value(kube, namespace, s, key)
        if value:
            return value, f"Secret {_get(s, 'metadata', 'name')} key {key}"
    return None, f"no Secret labelled {selector} with key {key}"


def targets_from_kube(kube: Any, namespace: str, selector: str, transport: str = "kube-exec",
                      need_cookie: bool = False) -> tuple[ClusterSpec, dict[str, Any]]:
    try:
        pods = kube.core().list_namespaced_pod(namespace, label_selector=selector,
                                               _request_timeout=kube.timeout).items
    except Exception as exc:  # noqa: BLE001
        raise CollectionError(explain_error(exc, f"pods ({selector}) in {namespace}")) from None
    if not pods:
        raise CollectionError(f"no pods match {selector!r} in namespace {namespace}. "
                              "Fix: check --namespace and --release/--selector (kubectl get pods -l ...).")
    nodes, skipped = [], []
    first_env: dict[str, Any] | None = None
    first_pod = None
    ports: dict[str, int] = dict(DEFAULT_PORTS)
    for pod in sorted(pods, key=lambda p: _get(p, "metadata", "name") or ""):
        pname = _get(pod, "metadata", "name")
        ip = _get(pod, "status", "pod_ip") or _get(pod, "status", "podIP")
        phase = _get(pod, "status", "phase")
        if phase != "Running" or not ip:
            skipped.append(f"{pname} ({phase or 'no phase'}{'' if ip else ', no IP'})")
            continue
        c = pick_container(pod)
        env = container_env(c)
        ports = container_ports(c)
        if first_env is None:
            first_env, first_pod = env, pod
        nodes.append(Node(name=node_name(pod, env, namespace), host=ip, http=url("http", ip, ports["http"]),
                          mqtt=url("tcp", ip, ports["mqtt"]), ws=url("ws", ip, ports["ws"], "/mqtt"),
                          pod=pname, namespace=namespace, container=_get(c, "name")))
    if not nodes:
        raise CollectionError(f"none of the {len(pods)} pods matching {selector!r} is Running with an IP "
                              f"({', '.join(skipped)}).")
    rng, rng_src = dist_range(first_pod, first_env or {})
    instance = (_get(first_pod, "metadata", "labels") or {}).get(INSTANCE)
    cookie, cookie_src = read_cookie(kube, namespace, first_env or {}, instance)
    if need_cookie and not cookie:
        raise CollectionError(f"cannot get the Erlang cookie: {cookie_src}")
    api_key, api_src = read_api_key(kube, namespace, first_env or {}, instance)
    spec = ClusterSpec(nodes=tuple(nodes), epmd_port=ports["epmd"], dist_port_range=rng,
                       cluster_port=ports["cluster"], transport=transport, cookie=cookie, api_key=api_key,
                       source=f"kubernetes {namespace} {selector}")
    meta = {"pods": [n.pod for n in nodes], "pods_skipped": skipped, "dist_port_range_from": rng_src,
            "cookie_from": cookie_src, "api_key_from": api_src}
    return spec, meta
