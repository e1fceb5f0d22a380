"""Pure helpers shared by the traffic checks: which pods are the release's VerneMQ pods, which
Services are its client Services, what each Service port reaches. No I/O.

Facts read (same shapes in `plan` and `cluster`, see docs/traffic.md):
  traffic.scope        {"namespace", "release", "selector": {label: value}, "mode": "plan"|"live"}
  traffic.live         True in a live run, NotApplicable in an offline plan
  k8s.services / k8s.pods / k8s.ingresses / k8s.networkpolicies / k8s.namespaces / k8s.workloads
  k8s.endpointslices / k8s.nodes / k8s.apiserver   (live only)
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

KEEPALIVE_ANNOTATION = "vernemq-toolkit/mqtt-keepalive-seconds"
DIST_RANGE_ANNOTATION = "vernemq-toolkit/dist-port-range"
DIST_ENV_MIN = "DOCKER_VERNEMQ_ERLANG__DISTRIBUTION__PORT_RANGE__MINIMUM"
DIST_ENV_MAX = "DOCKER_VERNEMQ_ERLANG__DISTRIBUTION__PORT_RANGE__MAXIMUM"

#: docs/contracts.md: container port names and their fallback numbers
PORTS = {"mqtt": 1883, "mqtts": 8883, "ws": 8080, "wss": 8443, "http": 8888, "epmd": 4369, "cluster": 44053}
CLIENT_LISTENERS = ("mqtt", "mqtts", "ws", "wss")
WS_LISTENERS = ("ws", "wss")
DEFAULT_DIST_RANGE = (9100, 9109)


def name_of(obj: Mapping[str, Any]) -> str:
    md = obj.get("metadata") or {}
    ns = md.get("namespace")
    return f"{obj.get('kind', '?')} {ns}/{md.get('name')}" if ns else f"{obj.get('kind', '?')} {md.get('name')}"


def labels(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def annotations(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def namespace(obj: Mapping[str, Any]) -> str:
    return (obj.get("metadata") or {}).get("namespace") or "default"


def _in_scope(facts: Mapping[str, Any], obj: Mapping[str, Any]) -> bool:
    ns = facts["traffic.scope"].get("namespace")
    return not ns or namespace(obj) == ns


def vmq_pods(facts: Mapping[str, Any]) -> list[dict]:
    """The release's VerneMQ pods: the selector's labels, in the release namespace, not finished
    (live pods in phase Succeeded/Failed are leftovers, not brokers)."""
    sel = facts["traffic.scope"]["selector"]
    return [p for p in facts["k8s.pods"] if _in_scope(facts, p)
            and all(labels(p).get(k) == v for k, v in sel.items())
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]


def selects(service: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    sel = (service.get("spec") or {}).get("selector") or {}
    pl = labels(pod)
    return bool(sel) and namespace(service) == namespace(pod) and all(pl.get(k) == v for k, v in sel.items())


def is_headless(service: Mapping[str, Any]) -> bool:
    return (service.get("spec") or {}).get("clusterIP") == "None"


def vmq_services(facts: Mapping[str, Any]) -> list[dict]:
    """Every Service (headless or not) whose selector matches a VerneMQ pod of the release."""
    pods = vmq_pods(facts)
    return [s for s in facts["k8s.services"] if any(selects(s, p) for p in pods)]


def client_services(facts: Mapping[str, Any]) -> list[dict]:
    """docs/contracts.md fallback: every non-headless Service selecting the VerneMQ pods."""
    return [s for s in vmq_services(facts) if not is_headless(s)]


def svc_type(service: Mapping[str, Any]) -> str:
    return (service.get("spec") or {}).get("type") or "ClusterIP"


def container_ports(pod: Mapping[str, Any]) -> list[dict]:
    out = []
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            out.append({"container": c.get("name"), "name": p.get("name"), "port": p.get("containerPort"),
                        "protocol": p.get("protocol") or "TCP"})
    return out


def listener_name(pod: Mapping[str, Any], number: int, protocol: str = "TCP") -> str | None:
    for p in container_ports(pod):
        if p["port"] == number and p["protocol"] == protocol and p["name"]:
            return p["name"]
    return None


def named_port(pod: Mapping[str, Any], name: str) -> int | None:
    for p in container_ports(pod):
        if p["name"] == name:
            return p["port"]
    return None


def listener_port(pods: Iterable[Mapping[str, Any]], name: str) -> int:
    """The container port number of listener ``name`` (fallback: the contract's number)."""
    for pod in pods:
        n = named_port(pod, name)
        if n:
            return n
    return PORTS[name]


def resolve_service_port(sp: Mapping[str, Any], pod: Mapping[str, Any]) -> dict[str, Any]:
    """What a Service port reaches on ``pod``: {"target", "number", "listener", "problem"}.

    ``listener`` is the container port name (mqtt, ws, …) the traffic lands on; ``problem`` is a
    sentence when the target does not exist on the pod."""
    target = sp.get("targetPort", sp.get("port"))
    proto = sp.get("protocol") or "TCP"
    if isinstance(target, str) and not target.isdigit():
        number = named_port(pod, target)
        if number is None:
            return {"target": target, "number": None, "listener": None,
                    "problem": f"targetPort {target!r} names no container port of the pod"}
        return {"target": target, "number": number, "listener": target, "problem": None}
    number = int(target)
    name = listener_name(pod, number, proto)
    if name is None:
        declared = sorted({p["port"] for p in container_ports(pod)})
        return {"target": number, "number": number, "listener": None,
                "problem": f"targetPort {number}/{proto} is not a container port of the pod (declared: {declared})"}
    return {"target": number, "number": number, "listener": name, "problem": None}


def service_port_listener(sp: Mapping[str, Any], pods: list[Mapping[str, Any]]) -> str | None:
    """The listener name a Service port leads to (by target name, by number, or contract fallback)."""
    for pod in pods:
        r = resolve_service_port(sp, pod)
        if r["listener"]:
            return r["listener"]
    target = sp.get("targetPort", sp.get("port"))
    if isinstance(target, str) and target in PORTS:
        return target
    for name, number in PORTS.items():
        if target == number or sp.get("port") == number:
            return name
    return sp.get("name") if sp.get("name") in PORTS else None


def int_annotation(obj: Mapping[str, Any], key: str) -> tuple[int | None, str | None]:
    """(value, problem) for an integer annotation; (None, None) when absent."""
    raw = annotations(obj).get(key)
    if raw is None:
        return None, None
    try:
        value = int(str(raw).strip())
    except ValueError:
        return None, f"annotation {key}={raw!r} is not a whole number"
    if value <= 0:
        return None, f"annotation {key}={raw!r} must be positive"
    return value, None


def keepalive(obj: Mapping[str, Any], conf: Mapping[str, Any]) -> tuple[int, str, str | None]:
    """(seconds, where it came from, problem) — the annotation on ``obj``, else the option."""
    value, problem = int_annotation(obj, KEEPALIVE_ANNOTATION)
    if value is not None:
        return value, f"annotation {KEEPALIVE_ANNOTATION}", None
    return int(conf["keepalive_seconds"]), "policy option keepalive_seconds", problem


def dist_range(pod: Mapping[str, Any]) -> tuple[int, int]:
    """docs/contracts.md: the effective env vars (what the Erlang VM uses: the last definition of each
    name wins), else the pod annotation, else 9100-9109. The annotation only describes the env; when a
    later env entry (e.g. the chart's ``vernemq.extraEnv``) redefines the range, the env is right."""
    env = container_env(pod)
    try:
        lo, hi = int(env[DIST_ENV_MIN]), int(env[DIST_ENV_MAX])
        if 1 <= lo <= hi <= 65535:
            return lo, hi
    except (KeyError, ValueError):
        pass
    raw = annotations(pod).get(DIST_RANGE_ANNOTATION)
    if raw:
        try:
            lo, hi = (int(x) for x in str(raw).split("-", 1))
            if 1 <= lo <= hi <= 65535:
                return lo, hi
        except ValueError:
            pass
    return DEFAULT_DIST_RANGE


def container_env(pod: Mapping[str, Any]) -> dict[str, str]:
    """Effective literal env values of the pod's containers: the last definition of a name wins, as in
    Kubernetes (a later valueFrom entry hides an earlier literal; valueFrom values are never read)."""
    out: dict[str, str] = {}
    for c in (pod.get("spec") or {}).get("containers") or []:
        for e in c.get("env") or []:
            if not isinstance(e, Mapping):
                continue
            if "value" in e and e.get("value") is not None:
                out[str(e.get("name"))] = str(e["value"])
            else:
                out.pop(str(e.get("name")), None)
    return out
