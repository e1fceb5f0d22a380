"""Traffic checks on the WebSocket Ingress (MQTT over WebSocket through an HTTP proxy)."""

from __future__ import annotations

import fnmatch
from typing import Any, Iterable, Mapping

from ...core.model import Finding, failed, passed, skipped
from ...core.registry import check
from .common import (WS_LISTENERS, annotations, container_ports, keepalive, name_of, namespace,
                     service_port_listener, vmq_pods, vmq_services)

NGINX = "nginx.ingress.kubernetes.io/"
ING = ("k8s.ingresses", "k8s.services", "k8s.pods", "traffic.scope")


def vmq_backends(facts: Mapping[str, Any]) -> list[tuple[dict, list[dict]]]:
    """[(ingress, [path entries that route to a Service of the release])]; each entry is
    {"host", "path", "pathType", "service", "port", "svc_port", "listener", "where"}."""
    pods = vmq_pods(facts)
    services = {(namespace(s), s["metadata"]["name"]): s for s in vmq_services(facts)}
    out = []
    for ing in facts["k8s.ingresses"]:
        ns = namespace(ing)
        entries = []
        for i, rule in enumerate((ing.get("spec") or {}).get("rules") or []):
            for j, p in enumerate(((rule.get("http") or {}).get("paths")) or []):
                svc_ref = (p.get("backend") or {}).get("service") or {}
                svc = services.get((ns, svc_ref.get("name")))
                if svc is None:
                    continue
                port_ref = svc_ref.get("port") or {}
                sp = None
                for cand in (svc.get("spec") or {}).get("ports") or []:
                    if ("number" in port_ref and cand.get("port") == port_ref["number"]) or \
                            ("name" in port_ref and cand.get("name") == port_ref["name"]):
                        sp = cand
                entries.append({"host": rule.get("host"), "path": p.get("path", "/"), "pathType": p.get("pathType"),
                                "service": svc_ref.get("name"), "port": port_ref.get("number", port_ref.get("name")),
                                "svc_port": sp, "listener": service_port_listener(sp, pods) if sp else None,
                                "where": f"spec.rules[{i}].http.paths[{j}]"})
        if entries:
            out.append((ing, entries))
    return out


def covers(path: str, path_type: str | None, ws_path: str) -> bool:
    path = path or "/"
    if path_type == "Exact":
        return path == ws_path
    # Prefix (and ImplementationSpecific, which ingress-nginx treats as a prefix): element-wise
    if path == "/":
        return True
    p = path.rstrip("/")
    return ws_path == p or ws_path.startswith(p + "/")


@check("TRAFFIC-008", title="WebSocket Ingress routes the WS path to the WebSocket listener", severity="error",
       category="traffic", needs=ING, defaults={"ws_path": "/mqtt"},
       remedy="Route path /mqtt (pathType Prefix or Exact) to the client Service port that targets the `ws` "
              "container port (8080), e.g. backend.service.port.name: ws.")
def ws_ingress_backend(facts, conf) -> Iterable[Finding]:
    """An Ingress is an HTTP proxy: it can carry MQTT over WebSocket, never raw MQTT. Every
    Ingress path that routes to a Service of the release must reach the `ws`/`wss` listener (a
    backend on 1883 accepts the TCP connection and drops the HTTP upgrade), and some path must
    cover the WebSocket path clients use (`/mqtt`, option `ws_path`) — otherwise clients get a
    404 from the proxy's default backend."""
    ws_path = conf["ws_path"]
    for ing, entries in vmq_backends(facts):
        good = []
        for e in entries:
            ev = {k: e[k] for k in ("host", "path", "pathType", "service", "port", "listener", "where")}
            if e["svc_port"] is None:
                yield failed(f"{name_of(ing)} {e['where']}", f"backend port {e['port']!r} is not a port of Service "
                             f"{e['service']}", **ev)
            elif e["listener"] not in WS_LISTENERS:
                yield failed(f"{name_of(ing)} {e['where']}", f"backend reaches the {e['listener']} listener, not "
                             "a WebSocket listener (ws/wss)", **ev)
            else:
                good.append(e)
        if not good:
            continue
        routed = [e for e in good if covers(e["path"], e["pathType"], ws_path)]
        ev = {"ws_path": ws_path, "paths": [f"{e['host'] or '*'}{e['path']} ({e['pathType']})" for e in good]}
        if routed:
            yield passed(name_of(ing), f"{ws_path} reaches the {routed[0]['listener']} listener", **ev)
        else:
            yield failed(name_of(ing), f"no path covers {ws_path}: WebSocket clients get 404", **ev)


def _is_nginx(ing: Mapping[str, Any], conf: Mapping[str, Any]) -> tuple[bool, str]:
    cls = (ing.get("spec") or {}).get("ingressClassName") or annotations(ing).get("kubernetes.io/ingress.class")
    if cls is None:
        return bool(conf["assume_nginx_without_class"]), "no ingress class (cluster default)"
    return cls in conf["nginx_classes"], f"ingress class {cls}"


@check("TRAFFIC-009", title="ingress-nginx: WebSocket upgrade works and proxy timeouts cover the keepalive",
       severity="error", category="traffic", needs=ING,
       defaults={"keepalive_seconds": 300, "nginx_classes": ["nginx"], "assume_nginx_without_class": True},
       remedy="Annotate the Ingress: nginx.ingress.kubernetes.io/proxy-read-timeout and proxy-send-timeout to at "
              "least the MQTT keepalive in seconds (e.g. \"3600\"; chart: ingress.timeoutSeconds >= "
              "mqtt.maxKeepaliveSeconds); keep proxy-http-version 1.1, backend-protocol HTTP/HTTPS and do not "
              "override connection-proxy-header.")
def nginx_websocket(facts, conf) -> Iterable[Finding]:
    """ingress-nginx proxies WebSocket upgrades out of the box (HTTP/1.1, `Connection: upgrade`),
    but it closes a proxied connection after `proxy-read-timeout`/`proxy-send-timeout` seconds
    without data (60 by default). An MQTT client that is quiet for its keepalive sends only a
    PINGREQ: with a keepalive longer than the timeout, every idle client is cut and reconnects,
    and the broker keeps its old session online until 1.5 x keepalive (ghost clients). The
    upgrade breaks when the Ingress forces HTTP/1.0, a non-HTTP backend protocol, or its own
    Connection header. Keepalive: annotation `vernemq-toolkit/mqtt-keepalive-seconds` on the
    Ingress, else option `keepalive_seconds`. Other ingress controllers are skipped."""
    for ing, entries in vmq_backends(facts):
        if not any(e["listener"] in WS_LISTENERS for e in entries):
            continue
        nginx, why = _is_nginx(ing, conf)
        if not nginx:
            yield skipped(name_of(ing), f"not ingress-nginx ({why}): timeouts not checked", detection=why)
            continue
        ann = annotations(ing)
        ka, ka_src, ka_problem = keepalive(ing, conf)
        if ka_problem:
            yield failed(name_of(ing), ka_problem, remedy="Write the keepalive annotation as whole seconds.")
            continue
        problems = []
        ev: dict[str, Any] = {"keepalive_seconds": ka, "keepalive_from": ka_src}
        for key in ("proxy-read-timeout", "proxy-send-timeout"):
            raw = ann.get(NGINX + key)
            ev[key] = raw if raw is not None else "60 (default)"
            try:
                value = int(str(raw).strip().rstrip("s")) if raw is not None else 60
            except ValueError:
                problems.append(f"{key}={raw!r} is not a number of seconds")
                continue
            if value < ka:
                problems.append(f"{key} {value}s < keepalive {ka}s")
        version = ann.get(NGINX + "proxy-http-version")
        if version is not None and str(version).strip() != "1.1":
            problems.append(f"proxy-http-version {version} cannot upgrade to WebSocket (needs 1.1)")
        proto = ann.get(NGINX + "backend-protocol")
        if proto is not None and str(proto).upper() not in ("HTTP", "HTTPS"):
            problems.append(f"backend-protocol {proto} is not HTTP/HTTPS")
        conn = ann.get(NGINX + "connection-proxy-header")
        if conn is not None and str(conn).lower() != "upgrade":
            problems.append(f"connection-proxy-header {conn!r} replaces the Upgrade handshake header")
        ev.update({"proxy-http-version": version, "backend-protocol": proto, "connection-proxy-header": conn})
        if problems:
            yield failed(name_of(ing), "; ".join(problems), **ev)
        else:
            yield passed(name_of(ing), f"upgrade enabled, timeouts >= keepalive {ka}s", **ev)


def _host_covered(host: str | None, tls: list[Mapping[str, Any]]) -> bool:
    for t in tls:
        hosts = t.get("hosts") or []
        if not host and not hosts:
            return True
        if host and any(h == host or fnmatch.fnmatchcase(host, h) and h.startswith("*.") and
                        host.count(".") == h.count(".") for h in hosts):
            return True
    return False


@check("TRAFFIC-010", title="WebSocket Ingress terminates TLS when the release uses TLS", severity="error",
       category="traffic", needs=ING, defaults={"require_tls": False},
       remedy="Add spec.tls to the Ingress with every rule host and a certificate Secret (chart: ingress.tls.enabled "
              "and ingress.tls.secretName), "
              "or switch off the TLS listeners / require_tls when plain ws:// is intended.")
def ingress_tls(facts, conf) -> Iterable[Finding]:
    """TLS is required on the WebSocket Ingress when the release says so: its VerneMQ pods declare a
    TLS listener (`mqtts` or `wss`), the Ingress asks ingress-nginx to redirect to HTTPS
    (`ssl-redirect`/`force-ssl-redirect: "true"`), or the policy option `require_tls` is true.
    Then every rule host must be listed under `spec.tls` (a wildcard `*.example.com` covers one
    label), otherwise the credentials in MQTT CONNECT travel in clear text over ws://."""
    pods = vmq_pods(facts)
    tls_listeners = sorted({p["name"] for pod in pods for p in container_ports(pod) if p["name"] in ("mqtts", "wss")})
    for ing, entries in vmq_backends(facts):
        ann = annotations(ing)
        redirect = [k for k in ("ssl-redirect", "force-ssl-redirect") if str(ann.get(NGINX + k, "")).lower() == "true"]
        reasons = (["policy option require_tls"] if conf["require_tls"] else []) + \
            [f"release declares TLS listener(s) {tls_listeners}"] * bool(tls_listeners) + \
            [f"annotation {NGINX}{k}" for k in redirect]
        tls = (ing.get("spec") or {}).get("tls") or []
        hosts = sorted({e["host"] or "" for e in entries})
        ev = {"required_because": reasons, "hosts": hosts,
              "tls_hosts": sorted({h for t in tls for h in (t.get("hosts") or [])})}
        if not reasons:
            yield passed(name_of(ing), "TLS not required by the release (no mqtts/wss listener, require_tls false)"
                         + ("; spec.tls present" if tls else ""), **ev)
            continue
        uncovered = [h or "(no host)" for h in hosts if not _host_covered(h or None, tls)]
        if not tls:
            yield failed(name_of(ing), "TLS is required but the Ingress has no spec.tls", **ev)
        elif uncovered:
            yield failed(name_of(ing), f"host(s) {uncovered} are not covered by spec.tls", **ev)
        else:
            yield passed(name_of(ing), "every host is covered by spec.tls", **ev)
