"""Traffic checks on the client Services: traffic policy, Azure LB, ports, endpoints."""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from ...core.model import Finding, failed, passed, skipped, unknown, warned
from ...core.registry import check
from .common import (CLIENT_LISTENERS, annotations, client_services, is_headless, keepalive, name_of, resolve_service_port,
                     service_port_listener, svc_type, vmq_pods, vmq_services)

AZ = "service.beta.kubernetes.io/"
IDLE_TIMEOUT = AZ + "azure-load-balancer-tcp-idle-timeout"
AZ_PROBE_PROTOCOL = AZ + "azure-load-balancer-health-probe-protocol"
_AZURE_KEY = re.compile(r"^service\.beta\.kubernetes\.io/(azure-|port_\d+_)")

SVC = ("k8s.services", "k8s.pods", "traffic.scope")


def _exposed(svc: Mapping[str, Any]) -> bool:
    return svc_type(svc) in ("LoadBalancer", "NodePort")


def _etp(svc: Mapping[str, Any]) -> str:
    return (svc.get("spec") or {}).get("externalTrafficPolicy") or "Cluster"


@check("TRAFFIC-015", title="The release's VerneMQ pods and client Service are found", severity="error",
       category="traffic", needs=SVC,
       remedy="Select the release: --release NAME (label app.kubernetes.io/instance) or --selector k=v,...; "
              "the pods must carry app.kubernetes.io/name=vernemq and a Service must select them.")
def release_found(facts, conf) -> Iterable[Finding]:
    """Every other traffic check looks at the VerneMQ pods selected by `--release`/`--selector`
    (docs/contracts.md) and at the Services that select them. When nothing matches, the other
    checks have nothing to look at and would skip: this check turns that into a failure, so a
    typo in the release name never looks like a clean report."""
    sel = facts["traffic.scope"]["selector"]
    pods = vmq_pods(facts)
    sel_text = ",".join(f"{k}={v}" for k, v in sel.items())
    if not pods:
        seen = sorted({(p.get("metadata") or {}).get("labels", {}).get("app.kubernetes.io/instance", "")
                       for p in facts["k8s.pods"]} - {""})
        yield failed("release", f"no pod matches the selector {sel_text} in namespace "
                     f"{facts['traffic.scope'].get('namespace') or '(any)'}",
                     selector=sel_text, pods_seen=len(facts["k8s.pods"]), instances_seen=seen)
        return
    clients = client_services(facts)
    if not clients:
        yield failed("release", f"{len(pods)} VerneMQ pod(s) match {sel_text} but no non-headless Service selects them",
                     selector=sel_text, pods=[p["metadata"]["name"] for p in pods])
        return
    hooks = facts.get("k8s.hook_pods")
    for hp in hooks if isinstance(hooks, list) else []:
        if all(((hp.get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in sel.items()):
            yield warned(name_of(hp), f"Helm hook pod carries the VerneMQ selector labels {sel_text}: while it runs "
                         "it is selected by the client Service and the NetworkPolicies like a broker pod",
                         remedy="Give hook/test pods a label set the Services do not select (e.g. a different "
                                "app.kubernetes.io/name, or add app.kubernetes.io/component to the Service selectors).",
                         hook=annotations(hp).get("helm.sh/hook"))
    yield passed("release", f"{len(pods)} VerneMQ pod(s), client Service(s): "
                 + ", ".join(s["metadata"]["name"] for s in clients),
                 selector=sel_text, pods=[p["metadata"]["name"] for p in pods])


@check("TRAFFIC-001", title="LoadBalancer/NodePort client Service uses externalTrafficPolicy: Local",
       severity="error", category="traffic", needs=SVC,
       remedy="Set spec.externalTrafficPolicy: Local on the client Service (chart value "
              "service.externalTrafficPolicy=Local). The LB then sends traffic only to nodes that run a ready "
              "VerneMQ pod, keeps the client source address, and health-checks the node over healthCheckNodePort "
              "instead of opening TCP connections on the MQTT port.")
def external_traffic_policy(facts, conf) -> Iterable[Finding]:
    """With `externalTrafficPolicy: Cluster` (the Kubernetes default) every node accepts LB traffic
    and forwards it, SNATed, to some VerneMQ pod, possibly on another node: the broker sees node
    addresses instead of clients, a second hop adds latency and breaks on node drain, and the cloud
    LB (AKS) health-probes every node by opening TCP connections on the MQTT port — connections
    that never send CONNECT and show up as "online" ghost clients (the "online 5, offline -5"
    symptom). `Local` sends traffic only to nodes with a ready pod and probes
    `healthCheckNodePort` instead."""
    for svc in client_services(facts):
        if not _exposed(svc):
            yield passed(name_of(svc), f"type {svc_type(svc)}: not exposed through node ports", type=svc_type(svc))
            continue
        etp = _etp(svc)
        ev = {"type": svc_type(svc), "externalTrafficPolicy": etp,
              "explicit": "externalTrafficPolicy" in (svc.get("spec") or {})}
        if etp == "Local":
            yield passed(name_of(svc), f"{svc_type(svc)} with externalTrafficPolicy Local", **ev)
        else:
            yield failed(name_of(svc), f"{svc_type(svc)} Service has externalTrafficPolicy {etp}"
                         + ("" if ev["explicit"] else " (the default, field not set)"), **ev)


@check("TRAFFIC-002", title="Local LoadBalancer Service has a healthCheckNodePort allocated", severity="error",
       category="traffic", needs=SVC + ("traffic.live",),
       remedy="Recreate the Service with externalTrafficPolicy: Local and type LoadBalancer (the API server allocates "
              "spec.healthCheckNodePort); check that no admission webhook strips it.")
def health_check_node_port(facts, conf) -> Iterable[Finding]:
    """For a `LoadBalancer` Service with `externalTrafficPolicy: Local`, the API server allocates
    `spec.healthCheckNodePort`; kube-proxy answers HTTP `/healthz` there with 200 only on nodes
    that run a ready endpoint, and the cloud LB probes it. Without it the LB cannot tell which
    nodes have a VerneMQ pod. Live only: an offline plan has no allocated ports (skip)."""
    for svc in client_services(facts):
        if svc_type(svc) != "LoadBalancer" or _etp(svc) != "Local":
            yield skipped(name_of(svc), f"{svc_type(svc)}/{_etp(svc)}: no health check node port expected",
                          type=svc_type(svc), externalTrafficPolicy=_etp(svc))
            continue
        hc = (svc.get("spec") or {}).get("healthCheckNodePort")
        if isinstance(hc, int) and hc > 0:
            yield passed(name_of(svc), f"healthCheckNodePort {hc} allocated", healthCheckNodePort=hc)
        else:
            yield failed(name_of(svc), "LoadBalancer with Local policy but no healthCheckNodePort is allocated",
                         healthCheckNodePort=hc)


def is_azure(svc: Mapping[str, Any], facts: Mapping[str, Any], conf: Mapping[str, Any]) -> tuple[bool, str]:
    cloud = conf.get("cloud", "auto")
    if cloud == "azure":
        return True, "policy option cloud=azure"
    if cloud != "auto":
        return False, f"policy option cloud={cloud}"
    keys = [k for k in annotations(svc) if _AZURE_KEY.match(k)]
    if keys:
        return True, f"Azure annotation {keys[0]}"
    nodes = facts.get("k8s.nodes")
    if isinstance(nodes, list):
        for n in nodes:
            if str((n.get("spec") or {}).get("providerID", "")).startswith("azure://"):
                return True, f"node {n['metadata']['name']} has an azure:// providerID"
    return False, "no Azure annotation on the Service" + ("" if isinstance(nodes, list) else " (nodes not known offline)")


@check("TRAFFIC-003", title="AKS: LB TCP idle timeout is set and at least the MQTT keepalive", severity="error",
       category="traffic", needs=SVC, defaults={"keepalive_seconds": 300, "cloud": "auto"},
       remedy="Annotate the client Service with service.beta.kubernetes.io/azure-load-balancer-tcp-idle-timeout: "
              "\"N\" (minutes, 4-100) where N*60 >= the longest MQTT keepalive clients use "
              "(annotation vernemq-toolkit/mqtt-keepalive-seconds); chart: service.azure.idleTimeoutMinutes "
              "and mqtt.maxKeepaliveSeconds.")
def azure_idle_timeout(facts, conf) -> Iterable[Finding]:
    """The Azure load balancer silently drops TCP flows that are idle longer than its idle timeout
    (4 minutes by default) without sending a RST. An MQTT client idle for its keepalive interval
    sends only PINGREQ; when the keepalive is longer than the LB idle timeout the flow is
    dropped, the client reconnects, and the broker keeps the old session "online" until
    1.5 x keepalive passes. The idle timeout (annotation, minutes, 4-100) must therefore be at
    least the longest keepalive the release allows (annotation
    `vernemq-toolkit/mqtt-keepalive-seconds` on the Service, else option `keepalive_seconds`).
    Applies to LoadBalancer client Services on Azure (option `cloud`: auto|azure|other; auto
    looks for Azure annotations, and in a live run for azure:// node provider IDs)."""
    for svc in client_services(facts):
        if svc_type(svc) != "LoadBalancer":
            yield skipped(name_of(svc), f"type {svc_type(svc)}: no cloud load balancer", type=svc_type(svc))
            continue
        azure, why = is_azure(svc, facts, conf)
        if not azure:
            yield skipped(name_of(svc), f"not an Azure load balancer ({why})", detection=why)
            continue
        ka, ka_src, ka_problem = keepalive(svc, conf)
        if ka_problem:
            yield failed(name_of(svc), ka_problem, remedy="Write the keepalive annotation as whole seconds, e.g. \"300\".")
            continue
        raw = annotations(svc).get(IDLE_TIMEOUT)
        ev = {"annotation": IDLE_TIMEOUT, "value": raw, "keepalive_seconds": ka, "keepalive_from": ka_src,
              "azure": why}
        if raw is None:
            yield failed(name_of(svc), f"{IDLE_TIMEOUT} is not set (Azure default 4 minutes); keepalive is {ka}s", **ev)
            continue
        try:
            minutes = int(str(raw).strip())
        except ValueError:
            yield failed(name_of(svc), f"{IDLE_TIMEOUT}={raw!r} is not a whole number of minutes", **ev)
            continue
        if not 4 <= minutes <= 100:
            yield failed(name_of(svc), f"{IDLE_TIMEOUT}={minutes} is outside Azure's range 4-100 minutes", **ev)
        elif minutes * 60 < ka:
            yield failed(name_of(svc), f"idle timeout {minutes} min ({minutes * 60}s) is shorter than the "
                         f"MQTT keepalive {ka}s", **ev)
        else:
            yield passed(name_of(svc), f"idle timeout {minutes} min >= keepalive {ka}s", **ev)


def _svc_port_by_ref(svc: Mapping[str, Any], ref: str) -> Mapping[str, Any] | None:
    for sp in (svc.get("spec") or {}).get("ports") or []:
        if str(sp.get("port")) == str(ref) or sp.get("name") == ref:
            return sp
    return None


@check("TRAFFIC-004", title="AKS: the LB health probe opens no TCP connection on MQTT/WebSocket ports",
       severity="error", category="traffic", needs=SVC, defaults={"cloud": "auto"},
       remedy="Use externalTrafficPolicy: Local (the LB then probes healthCheckNodePort over HTTP), or point each "
              "MQTT/WS port's probe elsewhere: service.beta.kubernetes.io/port_1883_health-probe_protocol: http, "
              "port_1883_health-probe_port: <the http status port>, port_1883_health-probe_request-path: /health.")
def azure_probe(facts, conf) -> Iterable[Finding]:
    """With `externalTrafficPolicy: Cluster`, the Azure cloud provider creates one health probe per
    Service port, by default a TCP probe on that port's node port (an HTTP probe on `/` when the
    port's appProtocol is http/https). On the MQTT port every probe is a TCP connection to the
    broker that never sends CONNECT: VerneMQ counts these sockets and the cluster shows phantom
    online clients ("online 5, offline -5"). Safe: `Local` policy (probe goes to
    healthCheckNodePort), `port_N_no_probe_rule: "true"`, or a per-port probe whose
    `port_N_health-probe_port` points at a non-client port (e.g. the http status port)."""
    pods = vmq_pods(facts)
    for svc in client_services(facts):
        if svc_type(svc) != "LoadBalancer":
            continue
        azure, why = is_azure(svc, facts, conf)
        if not azure:
            yield skipped(name_of(svc), f"not an Azure load balancer ({why})", detection=why)
            continue
        if _etp(svc) == "Local":
            yield passed(name_of(svc), "Local policy: Azure probes healthCheckNodePort over HTTP, not the broker",
                         externalTrafficPolicy="Local")
            continue
        ann = annotations(svc)
        for sp in (svc.get("spec") or {}).get("ports") or []:
            listener = service_port_listener(sp, pods)
            if listener not in CLIENT_LISTENERS or (sp.get("protocol") or "TCP") != "TCP":
                continue
            port = sp["port"]
            subject = f"{name_of(svc)} port {port}"
            pre = f"{AZ}port_{port}_"
            if str(ann.get(pre + "no_probe_rule", "")).lower() == "true":
                yield passed(subject, "no probe rule for this port", annotation=pre + "no_probe_rule")
                continue
            proto = ann.get(pre + "health-probe_protocol") or ann.get(AZ_PROBE_PROTOCOL)
            if not proto:
                proto = "http" if str(sp.get("appProtocol", "")).lower() in ("http", "https") else "tcp"
            probe_ref = ann.get(pre + "health-probe_port")
            target = _svc_port_by_ref(svc, probe_ref) if probe_ref else sp
            ev = {"listener": listener, "probe_protocol": str(proto).lower(), "probe_port": probe_ref or port,
                  "externalTrafficPolicy": _etp(svc)}
            if probe_ref and target is None:
                yield failed(subject, f"{pre}health-probe_port={probe_ref!r} names no port of the Service", **ev)
                continue
            target_listener = service_port_listener(target, pods)
            if target_listener in CLIENT_LISTENERS:
                status_port = next((p for p in (svc.get("spec") or {}).get("ports") or []
                                    if service_port_listener(p, pods) == "http"), None)
                where = (f'"{status_port["port"]}" (the http status port)' if status_port else
                         "a Service port that targets the http status listener (add one)")
                yield failed(subject, f"the Azure {str(proto).upper()} probe connects to the {target_listener} "
                             f"listener every few seconds (Cluster policy)",
                             remedy=f"Set externalTrafficPolicy: Local (chart: service.externalTrafficPolicy=Local), or "
                                    f"annotate the Service: {pre}health-probe_protocol: http, "
                                    f"{pre}health-probe_port: {where}, {pre}health-probe_request-path: /health.",
                             **ev)
            else:
                yield passed(subject, f"probe goes to the {target_listener or probe_ref} port, not a client listener", **ev)


@check("TRAFFIC-005", title="Service ports and target ports match the container's listeners", severity="error",
       category="traffic", needs=SVC,
       remedy="Point every Service port's targetPort at a container port name the VerneMQ container declares "
              "(mqtt, mqtts, ws, wss, http, epmd, cluster — docs/contracts.md), and name Service ports like "
              "the listener they reach.")
def service_ports(facts, conf) -> Iterable[Finding]:
    """Every port of every Service that selects the VerneMQ pods (client and headless) must land
    on a listener the container declares: a named targetPort must name a container port, a
    numeric one must be a declared containerPort (and protocol). A Service port named after a
    listener (`mqtt`, `ws`, …) must reach that listener — a port named `mqtt` that targets the
    WebSocket listener accepts TCP connections and then fails every MQTT CONNECT."""
    pods = vmq_pods(facts)
    if not pods:
        return
    for svc in vmq_services(facts):
        sel_pods = [p for p in pods if all((p["metadata"].get("labels") or {}).get(k) == v
                                           for k, v in ((svc.get("spec") or {}).get("selector") or {}).items())]
        for sp in (svc.get("spec") or {}).get("ports") or []:
            subject = f"{name_of(svc)} port {sp.get('name') or sp.get('port')}"
            problems, listeners = set(), set()
            for pod in sel_pods:
                r = resolve_service_port(sp, pod)
                if r["problem"]:
                    problems.add(r["problem"])
                else:
                    listeners.add(r["listener"])
            ev = {"port": sp.get("port"), "targetPort": sp.get("targetPort", sp.get("port")),
                  "name": sp.get("name"), "headless": is_headless(svc)}
            if problems:
                yield failed(subject, "; ".join(sorted(problems)), **ev)
            elif sp.get("name") in {"mqtt", "mqtts", "ws", "wss", "http", "epmd", "cluster"} and \
                    listeners and sp["name"] not in listeners:
                yield failed(subject, f"Service port named {sp['name']!r} reaches listener(s) {sorted(listeners)}",
                             listeners=sorted(listeners), **ev)
            else:
                yield passed(subject, f"reaches listener {', '.join(sorted(listeners))}", listeners=sorted(listeners),
                             **ev)


def _ready(pod: Mapping[str, Any]) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


@check("TRAFFIC-006", title="Every ready VerneMQ pod is an endpoint of the client Service", severity="error",
       category="traffic", needs=SVC + ("traffic.live", "k8s.endpointslices"),
       remedy="Make the Service selector match the pod labels exactly (app.kubernetes.io/name, "
              "app.kubernetes.io/instance) and the Service ports' targetPorts name declared container ports; "
              "then check `kubectl get endpointslices -l kubernetes.io/service-name=SERVICE`.")
def endpoints(facts, conf) -> Iterable[Finding]:
    """A ready VerneMQ pod that is not a ready endpoint of the client Service receives no client
    traffic while it still counts in the cluster, so load concentrates on the others and clients
    pinned to it by DNS or LB state see resets. The check compares the ready pods with the
    EndpointSlices labelled `kubernetes.io/service-name=<client Service>`. Live only."""
    pods = vmq_pods(facts)
    ready = sorted(p["metadata"]["name"] for p in pods if _ready(p))
    for svc in client_services(facts):
        name = svc["metadata"]["name"]
        ns = svc["metadata"].get("namespace")
        in_slices: dict[str, bool] = {}
        for sl in facts["k8s.endpointslices"]:
            md = sl.get("metadata") or {}
            if (md.get("labels") or {}).get("kubernetes.io/service-name") != name or md.get("namespace") != ns:
                continue
            for ep in sl.get("endpoints") or []:
                ref = ep.get("targetRef") or {}
                if ref.get("kind", "Pod") == "Pod" and ref.get("name"):
                    ok = (ep.get("conditions") or {}).get("ready")
                    in_slices[ref["name"]] = in_slices.get(ref["name"], False) or ok is not False
        missing = [p for p in ready if p not in in_slices]
        not_ready = [p for p in ready if p in in_slices and not in_slices[p]]
        ev = {"ready_pods": ready, "endpoints": sorted(in_slices), "missing": missing, "not_ready_in_slice": not_ready}
        if not ready:
            yield unknown(name_of(svc), "no VerneMQ pod is ready, nothing to compare", **ev)
        elif missing or not_ready:
            yield failed(name_of(svc), f"ready pod(s) {missing + not_ready} are not ready endpoints of the Service", **ev)
        else:
            yield passed(name_of(svc), f"all {len(ready)} ready pods are endpoints", **ev)


@check("TRAFFIC-007", title="Local policy: VerneMQ pods are spread over more than one node", severity="warning",
       category="traffic", needs=SVC + ("traffic.live",),
       remedy="Spread the pods: podAntiAffinity on kubernetes.io/hostname or topologySpreadConstraints "
              "(maxSkew 1), and run at least 2 replicas.")
def spread(facts, conf) -> Iterable[Finding]:
    """With `externalTrafficPolicy: Local` the load balancer only sends traffic to nodes that run a
    ready VerneMQ pod. When every ready pod sits on one node, all client traffic goes to that
    node, and draining or losing it disconnects every client at once. Live only (the node of a
    pod is known after scheduling)."""
    pods = [p for p in vmq_pods(facts) if _ready(p)]
    nodes = sorted({(p.get("spec") or {}).get("nodeName") for p in pods} - {None})
    for svc in client_services(facts):
        if not _exposed(svc) or _etp(svc) != "Local":
            continue
        ev = {"nodes": nodes, "ready_pods": len(pods)}
        if not pods:
            yield unknown(name_of(svc), "no ready VerneMQ pod", **ev)
        elif len(nodes) <= 1:
            yield warned(name_of(svc), f"all {len(pods)} ready pod(s) run on node {nodes[0] if nodes else '?'}: "
                         "every LB connection goes to that one node", **ev)
        else:
            yield passed(name_of(svc), f"ready pods on {len(nodes)} nodes", **ev)
