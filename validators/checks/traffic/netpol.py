"""Traffic checks on NetworkPolicies: clients reach the broker, the cluster ports are open between
the release's pods and closed to everything else, DNS and API egress work. Uses the general
evaluator in validators.netpol (full Kubernetes semantics)."""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable, Mapping

from ...core.errors import InputError
from ...core.model import Finding, failed, passed, skipped, warned
from ...core.registry import check
from ...netpol import Endpoint, Evaluator, parse_policy, pod_endpoint
from ...netpol.model import NS_NAME_LABEL
from .common import (CLIENT_LISTENERS, WS_LISTENERS, annotations, client_services, container_env, dist_range,
                     listener_port, namespace, service_port_listener, vmq_pods)
from .ingress import vmq_backends

NP = ("k8s.networkpolicies", "k8s.pods", "k8s.namespaces", "k8s.services", "k8s.ingresses", "traffic.scope")
PROBE_IP = "203.0.113.10"  # TEST-NET-3: "somewhere on the internet"
KUBERNETES_DISCOVERY_ENV = "DOCKER_VERNEMQ_DISCOVERY_KUBERNETES"
#: ";"-separated IPs/CIDRs/NAMESPACE/key=value,... the release lets in on the client ports (docs/contracts.md)
CLIENT_SOURCES_ANNOTATION = "vernemq-toolkit/client-sources"


def ns_labels(facts: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    out = {}
    for ns in facts["k8s.namespaces"]:
        md = ns.get("metadata") or {}
        labels = dict(md.get("labels") or {})
        labels.setdefault(NS_NAME_LABEL, md.get("name"))
        out[md.get("name")] = labels
    return out


def build(facts: Mapping[str, Any]) -> tuple[Evaluator, list[Endpoint], dict[str, dict[str, str]]]:
    """(evaluator over every pod of the facts, the VerneMQ pods as endpoints, namespace labels)."""
    nsl = ns_labels(facts)
    policies = [parse_policy(p) for p in facts["k8s.networkpolicies"]]
    pods = [pod_endpoint(p, nsl.get(namespace(p))) for p in facts["k8s.pods"]]
    vmq_names = {(namespace(p), p["metadata"]["name"]) for p in vmq_pods(facts)}
    vmq = [e for e in pods if (e.namespace, e.name) in vmq_names]
    return Evaluator(policies, pods), vmq, nsl


def endpoint_spec(text: str, nsl: Mapping[str, Mapping[str, str]], where: str) -> Endpoint:
    """``"203.0.113.10"`` / ``"10.0.0.0/8"`` (first address) -> an address outside the pod network;
    ``"NAMESPACE/key=value,key2=value2"`` -> a pod with those labels in that namespace."""
    try:
        return Endpoint.external(text)
    except ValueError:
        pass
    if _is_net(text):
        net = ipaddress.ip_network(text, strict=False)
        return Endpoint(kind="ip", ip=next(iter(net.hosts()), net.network_address))
    if "/" not in text:
        raise InputError(where, f"{text!r} is neither an IP/CIDR nor NAMESPACE/labels.",
                         "write 203.0.113.10, 10.0.0.0/8 or clients/app=sensor.")
    ns, sel = text.split("/", 1)
    labels = {}
    for part in [p for p in sel.split(",") if p]:
        if "=" not in part:
            raise InputError(where, f"{part!r} in {text!r} is not key=value.", "write NAMESPACE/key=value,...")
        k, v = part.split("=", 1)
        labels[k] = v
    nl = dict(nsl.get(ns) or {})
    nl.setdefault(NS_NAME_LABEL, ns)
    return Endpoint(kind="pod", namespace=ns, name=f"probe({sel or 'any'})", labels=labels, ns_labels=nl)


def _is_net(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
        return True
    except ValueError:
        return False


def validate_options(options: Mapping[str, Mapping[str, Any]]) -> None:
    """Raise InputError (exit 2, before anything is collected) for option values the checks could
    not use: ``options`` maps check ID -> its merged options (Policy.options)."""
    for cid, key in (("TRAFFIC-011", "client_sources"), ("TRAFFIC-011", "ingress_controller"),
                     ("TRAFFIC-013", "probe_ip"), ("TRAFFIC-014", "dns")):
        values = options.get(cid, {}).get(key)
        for v in values if isinstance(values, list) else [values]:
            if v:
                endpoint_spec(str(v), {}, f"--policy: checks.{cid}.options.{key}")
    for v in options.get("TRAFFIC-014", {}).get("api_server") or []:
        host, _, port = str(v).rpartition(":")
        try:
            Endpoint.external(host)
            ok = port.isdigit() and 1 <= int(port) <= 65535
        except ValueError:
            ok = False
        if not ok:
            raise InputError("--policy: checks.TRAFFIC-014.options.api_server", f"{v!r} is not IP:PORT.",
                             "write e.g. 10.0.0.1:443.")


def _deciders(verdicts) -> list[str]:
    return sorted({p for v in verdicts for p in v.deciding_policies()})


@check("TRAFFIC-011", title="NetworkPolicies let clients reach the MQTT and WebSocket listeners", severity="error",
       category="traffic", needs=NP,
       defaults={"client_sources": [PROBE_IP], "ingress_controller": "ingress-nginx/app.kubernetes.io/name=ingress-nginx"},
       remedy="Add an ingress rule to the VerneMQ NetworkPolicy for the client ports (mqtt 1883, mqtts 8883, ws 8080, "
              "wss 8443) from the client sources (ipBlock of the client networks, or no `from` for anywhere) and, "
              "for WebSocket through an Ingress, from the ingress controller's namespace.")
def clients_reach(facts, conf) -> Iterable[Finding]:
    """Each client source must reach every VerneMQ pod on every client listener (mqtt, mqtts, ws,
    wss) that a client Service exposes. Sources: the client Service annotation
    `vernemq-toolkit/client-sources` (the sources the release is configured for, separated by ";"),
    else option `client_sources` (IP, CIDR — its first address —, or `NAMESPACE/key=value` for
    in-cluster clients; default an address on the internet, i.e. "anywhere"), plus — for the WebSocket listeners, when an Ingress routes to the release — the
    ingress controller pod (option `ingress_controller`). A connection needs the source's egress
    (in-cluster sources) and the VerneMQ pod's ingress to allow it; the evidence names the
    policies that decided."""
    ev_, vmq, nsl = build(facts)
    if not vmq:
        return
    pods = vmq_pods(facts)
    listeners = {}
    svcs = client_services(facts)
    for svc in svcs:
        for sp in (svc.get("spec") or {}).get("ports") or []:
            lname = service_port_listener(sp, pods)
            if lname in CLIENT_LISTENERS:
                listeners[lname] = (listener_port(pods, lname), sp.get("protocol") or "TCP")
    configured = [a for svc in svcs for a in
                  str(annotations(svc).get(CLIENT_SOURCES_ANNOTATION, "")).replace(" ", "").split(";") if a]
    if configured:
        names, where = configured, f"annotation {CLIENT_SOURCES_ANNOTATION}"
    else:
        names, where = conf["client_sources"], "policy TRAFFIC-011 options.client_sources"
    sources = [(s, endpoint_spec(s, nsl, f"{where}: {s}")) for s in names]
    ctrl = None
    if any(e["listener"] in WS_LISTENERS for _i, es in vmq_backends(facts) for e in es) and conf["ingress_controller"]:
        ctrl = (conf["ingress_controller"],
                endpoint_spec(conf["ingress_controller"], nsl, "policy TRAFFIC-011 options.ingress_controller"))
    for lname, (port, proto) in sorted(listeners.items()):
        srcs = sources + ([ctrl] if ctrl and lname in WS_LISTENERS else [])
        for label, src in srcs:
            verdicts = [ev_.check(src, dst, port, proto) for dst in vmq]
            denied = [v for v in verdicts if not v.allowed]
            subject = f"{label} -> {lname} {port}/{proto}"
            ev = {"pods": len(vmq), "denied_pods": [v.dst for v in denied], "policies": _deciders(verdicts)}
            if denied:
                ev["why"] = [denied[0].egress.explain(), denied[0].ingress.explain()]
                yield failed(subject, f"denied to {len(denied)} of {len(vmq)} VerneMQ pod(s)", **ev)
            else:
                yield passed(subject, f"allowed to all {len(vmq)} VerneMQ pod(s)", **ev)


def cluster_ports(pods: list[Mapping[str, Any]]) -> list[tuple[str, list[int]]]:
    lo, hi = dist_range(pods[0]) if pods else (9100, 9109)
    return [("epmd", [listener_port(pods, "epmd")]), ("distribution", list(range(lo, hi + 1))),
            ("cluster", [listener_port(pods, "cluster")])]


def _peers(vmq: list[Endpoint]) -> list[Endpoint]:
    """With a single pod, a second one with the same labels stands in (what a scale-up would add)."""
    if len(vmq) >= 2:
        return vmq
    if not vmq:
        return []
    v = vmq[0]
    return [v, Endpoint(kind="pod", namespace=v.namespace, name=v.name + "-peer", labels=dict(v.labels),
                        ns_labels=dict(v.ns_labels), named_ports=dict(v.named_ports))]


def _group(ports: list[int]) -> str:
    return str(ports[0]) if len(ports) == 1 else f"{ports[0]}-{ports[-1]}"


@check("TRAFFIC-012", title="Cluster ports (EPMD 4369, distribution range, 44053) are open between VerneMQ pods",
       severity="error", category="traffic", needs=NP,
       remedy="Allow pod-to-pod traffic between the release's VerneMQ pods in BOTH directions: an ingress rule "
              "from podSelector <release labels> and, when the pods are egress-isolated, an egress rule to the same "
              "selector, on TCP 4369, 9100-9109 (port + endPort) and 44053.")
def cluster_open(facts, conf) -> Iterable[Finding]:
    """VerneMQ nodes find each other through EPMD (4369), talk Erlang distribution on the
    configured range (9100-9109, docs/contracts.md) and replicate messages over the cluster
    listener (44053). A NetworkPolicy that misses one of them splits the cluster: nodes show as
    not running, subscriptions and session counts diverge between nodes. Every ordered pair of
    the release's pods must be allowed both by the source's egress and the destination's ingress
    (with one replica, a same-labelled peer stands in)."""
    ev_, vmq, _nsl = build(facts)
    peers = _peers(vmq)
    if not peers:
        return
    for group, ports in cluster_ports(vmq_pods(facts)):
        denied = []
        verdicts = []
        for port in ports:
            for s in peers:
                for d in peers:
                    if s is d:
                        continue
                    v = ev_.check(s, d, port, "TCP")
                    verdicts.append(v)
                    if not v.allowed:
                        denied.append(v)
        subject = f"{group} {_group(ports)}/TCP"
        ev = {"pairs": len(peers) * (len(peers) - 1), "ports": _group(ports), "policies": _deciders(verdicts)}
        if denied:
            ev["denied"] = sorted({f"{v.src} -> {v.dst}:{v.port}" for v in denied})[:10]
            ev["why"] = [denied[0].egress.explain(), denied[0].ingress.explain()]
            yield failed(subject, f"{len(denied)} pod-to-pod connection(s) denied", **ev)
        else:
            yield passed(subject, "open between all VerneMQ pods", **ev)


@check("TRAFFIC-013", title="Cluster ports are closed to everything but the release's VerneMQ pods",
       severity="warning", category="traffic", needs=NP, defaults={"probe_ip": PROBE_IP},
       remedy="Restrict the ingress rule for 4369, 9100-9109 and 44053 to `from: [podSelector: <release labels>]` "
              "(no namespaceSelector, no ipBlock, not a rule without `from`), and select the VerneMQ pods with a "
              "policy that has policyType Ingress.")
def cluster_closed(facts, conf) -> Iterable[Finding]:
    """The Erlang distribution port trusts anyone who knows the cookie and gives them a remote
    shell; EPMD lists the node names. These ports must only be reachable from the release's own
    VerneMQ pods. The check probes each VerneMQ pod from: another pod of the same namespace, a
    pod of another namespace, an address outside the cluster (option `probe_ip`), and the other
    pods of the manifests/namespace. It warns when any of them gets through ("open to all" when
    the outside address or another namespace does). The release's own validator pod (labels
    ``app.kubernetes.io/component: validator`` and the release's ``app.kubernetes.io/instance``,
    the chart's ``validator.enabled``) is part of the release and no probe."""
    ev_, vmq, nsl = build(facts)
    if not vmq:
        return
    vmq_ids = {v.id for v in vmq}
    ns = vmq[0].namespace
    # the release's own validator (`vmq-validate watch` with transport direct, docs/watch.md) probes these ports
    # on purpose and holds the cookie: it is part of the release, not a stranger
    instance = vmq[0].labels.get("app.kubernetes.io/instance")
    validators = {p.id for p in ev_.pods if p.id not in vmq_ids and p.namespace == ns and instance
                  and p.labels.get("app.kubernetes.io/component") == "validator"
                  and p.labels.get("app.kubernetes.io/instance") == instance}
    probes = [
        Endpoint(kind="pod", namespace=ns, name="probe(same-namespace)", labels={"app.kubernetes.io/name": "probe"},
                 ns_labels=dict(vmq[0].ns_labels)),
        Endpoint(kind="pod", namespace="vmq-toolkit-probe", name="probe(other-namespace)", labels={},
                 ns_labels={NS_NAME_LABEL: "vmq-toolkit-probe"}),
        Endpoint.external(conf["probe_ip"]),
    ] + [p for p in ev_.pods if p.id not in vmq_ids and p.id not in validators][:20]
    for group, ports in cluster_ports(vmq_pods(facts)):
        reached = {}
        verdicts = []
        for probe in probes:
            for port in ports:
                for d in vmq:
                    v = ev_.check(probe, d, port, "TCP")
                    verdicts.append(v)
                    if v.allowed:
                        reached.setdefault(probe.id, v)
        subject = f"{group} {_group(ports)}/TCP"
        ev = {"probes": [p.id for p in probes], "reached_by": sorted(reached), "policies": _deciders(verdicts)}
        if validators:
            ev["release_validator"] = sorted(validators)
        if reached:
            wide = [k for k in reached if k in (probes[1].id, probes[2].id)]
            first = next(iter(reached.values()))
            ev["why"] = first.ingress.explain()
            yield warned(subject, ("open to all: " if wide else "open beyond the release: ")
                         + f"reachable from {', '.join(sorted(reached))}", **ev)
        else:
            yield passed(subject, "reachable only from the release's VerneMQ pods", **ev)


def _api_candidates(facts: Mapping[str, Any], ev_: Evaluator, vmq: list[Endpoint],
                    conf: Mapping[str, Any]) -> tuple[list[tuple[Endpoint, int]], str]:
    live = facts.get("k8s.apiserver")
    if isinstance(live, list) and live:
        return [(Endpoint.external(a["ip"]), int(a["port"])) for a in live], "live endpoints of default/kubernetes"
    if conf["api_server"]:
        out = []
        for s in conf["api_server"]:
            host, _, port = s.rpartition(":")
            out.append((Endpoint.external(host), int(port)))
        return out, "policy option api_server"
    ips = {PROBE_IP}
    for pol in ev_.selecting(vmq[0], "Egress"):
        for rule in pol.egress:
            for peer in rule.peers or ():
                if peer.ip_block:
                    ips.add(str(next(iter(peer.ip_block.cidr.hosts()), peer.ip_block.cidr.network_address)))
    return ([(Endpoint.external(ip), port) for ip in sorted(ips) for port in (443, 6443)],
            "offline approximation: any address on 443/6443 (set option api_server: [IP:PORT] to be exact)")


@check("TRAFFIC-014", title="DNS egress, and API server egress when discovery needs it, are allowed",
       severity="error", category="traffic", needs=NP,
       defaults={"dns": "kube-system/k8s-app=kube-dns", "api_server": []},
       remedy="When the VerneMQ pods are egress-isolated, add egress rules: to namespaceSelector "
              "kubernetes.io/metadata.name=kube-system + podSelector k8s-app=kube-dns on UDP and TCP 53; and, with "
              "Kubernetes discovery, to the API server address (ipBlock) on its port (443 or 6443).")
def egress_dns_api(facts, conf) -> Iterable[Finding]:
    """Egress isolation of the VerneMQ pods (a policy with policyType Egress) blocks everything not
    listed. VerneMQ nodes resolve each other's names through cluster DNS (UDP and TCP 53 to
    kube-dns), and with Kubernetes discovery (`DOCKER_VERNEMQ_DISCOVERY_KUBERNETES=1`) the
    container asks the API server for its peers at start-up. Only the egress side of the VerneMQ
    pods is judged (policies of kube-system are outside the release). The API server address is
    read live from the `default/kubernetes` endpoints; offline it is option `api_server`
    (`IP:PORT` list), else any address on 443/6443 is accepted as a stand-in."""
    ev_, vmq, nsl = build(facts)
    if not vmq:
        return
    dns = endpoint_spec(conf["dns"], nsl, "policy TRAFFIC-014 options.dns")
    for proto in ("UDP", "TCP"):
        vs = [ev_.check(src, dns, 53, proto) for src in vmq]
        denied = [v.src for v in vs if not v.egress.allowed]
        ev = {"dns": conf["dns"], "denied_pods": denied, "policies": _deciders(vs)}
        if denied:
            ev["why"] = next(v.egress.explain() for v in vs if not v.egress.allowed)
            yield failed(f"DNS 53/{proto}", f"egress to kube-dns denied from {len(denied)} VerneMQ pod(s)", **ev)
        else:
            yield passed(f"DNS 53/{proto}", "egress to kube-dns allowed", **ev)
    needs_api = [p["metadata"]["name"] for p in vmq_pods(facts)
                 if container_env(p).get(KUBERNETES_DISCOVERY_ENV) in ("1", "true", "on")]
    if not needs_api:
        yield skipped("API server", f"no pod sets {KUBERNETES_DISCOVERY_ENV}=1: API egress not needed")
        return
    cands, how = _api_candidates(facts, ev_, vmq, conf)
    bad = []
    for src in vmq:
        if not any(ev_.check(src, dst, port, "TCP").egress.allowed for dst, port in cands):
            bad.append(src.id)
    ev = {"candidates": [f"{d.ip}:{p}" for d, p in cands][:10], "source": how, "denied_pods": bad,
          "policies": sorted({p.id for p in ev_.selecting(vmq[0], "Egress")})}
    if bad:
        yield failed("API server", f"Kubernetes discovery is on but egress to the API server is denied from {bad}", **ev)
    else:
        yield passed("API server", "egress to the API server allowed", **ev)
