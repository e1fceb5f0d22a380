"""The chart's validator in the pod lab (tests/podlab: podman pods run as a kubelet would run them, with the
chart's securityContext, env, probes and NetworkPolicies enforced; the API server is tests/fakekube.py over
TLS, which authorizes ServiceAccount tokens by the served Role/RoleBinding). The release's StatefulSet runs
the VerneMQ-shaped image (a real Erlang node per pod with the VerneMQ stand-in as its HTTP side,
docs/podlab.md); the validator pod runs the validators image with the chart's own arguments under its own
ServiceAccount and Roles, probes straight from its pod (transport direct), reads the release's Gateway API routes
and the Gateway they attach to in another namespace, and reports clean on /metrics."""

from __future__ import annotations

import copy
import time

from prometheus_client.parser import text_string_to_metric_families

from tests.fakekube import gateway_status, route_status
from tests.image.validator_image import ensure_validator_image
from tests.podlab.runner import PodRun, render
from tests.podlab.test_scenarios import CHART, EXISTING, NS, PODS, READY_TIMEOUT, REL, SET, images_for, secret_value

VALIDATOR = f"{REL}-vernemq-validator"


def _metrics(run: PodRun, pod: str) -> str:
    code = ("import urllib.request,sys;"
            "sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:9910/metrics',timeout=5).read().decode())")
    proc = run.exec(pod, ["python", "-c", code], timeout=30)
    return proc.stdout if proc.returncode == 0 else ""


def _publish_endpoint_slices(run: PodRun) -> None:
    """The endpoints controller's part, which the pod runner does not play: one EndpointSlice per Service that
    selects the VerneMQ pods, listing the Ready pods on the Service's target ports."""
    sts = next(o for o in run.objects if o.get("kind") == "StatefulSet")
    tmpl = sts["spec"]["template"]
    named = {p["name"]: p["containerPort"] for c in tmpl["spec"]["containers"] for p in c.get("ports") or []}
    labels = tmpl["metadata"]["labels"]
    for svc in [o for o in run.objects if o.get("kind") == "Service"]:
        sel = svc["spec"].get("selector") or {}
        if not sel or not sel.items() <= labels.items():
            continue
        ports = [{"name": p.get("name"), "protocol": p.get("protocol", "TCP"),
                  "port": named.get(p.get("targetPort"), p.get("targetPort", p["port"]))} for p in svc["spec"]["ports"]]
        run.kube.add({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                      "metadata": {"name": f"{svc['metadata']['name']}-podlab", "namespace": NS,
                                   "labels": {"kubernetes.io/service-name": svc["metadata"]["name"]}},
                      "addressType": "IPv4", "ports": ports,
                      "endpoints": [{"addresses": [run.pods[p].ip], "conditions": {"ready": True},
                                     "targetRef": {"kind": "Pod", "name": p, "namespace": NS}} for p in PODS]})


#: the platform team's Gateway the release's routes attach to (another namespace: the validator reads it by name
#: with the Role the chart renders there)
GATEWAY_NS, GATEWAY = "gateway-system", "shared-gateway"
SHARED = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
          "metadata": {"name": GATEWAY, "namespace": GATEWAY_NS},
          "spec": {"gatewayClassName": "istio", "listeners": [
              {"name": n, "protocol": proto, "port": port, "allowedRoutes": {"namespaces": {"from": "All"}}}
              for n, proto, port in (("http", "HTTP", 80), ("mqtt", "TCP", 1883))]}}
#: TRAFFIC-011..014 and -023 need namespace labels (cluster-wide reads): skipped by the validator without
#: validator.rbac.clusterRead (and the fake API server serves no ClusterRoles)
SKIPPED = ("TRAFFIC-011", "TRAFFIC-012", "TRAFFIC-013", "TRAFFIC-014", "TRAFFIC-023")
GATEWAY_CHECKS = ("TRAFFIC-017", "TRAFFIC-018", "TRAFFIC-019", "TRAFFIC-020", "TRAFFIC-021", "TRAFFIC-022")


def _play_the_gateway_controller(run: PodRun) -> None:
    """The Gateway and its controller's status, which the lab has no controller to write: the Gateway
    Accepted and Programmed, each route Accepted with ResolvedRefs."""
    run.kube.add({**SHARED, "status": gateway_status(SHARED["spec"]["listeners"])})
    for o in run.objects:
        if o.get("kind") in ("HTTPRoute", "TCPRoute", "TLSRoute"):
            refs = [{k: v for k, v in r.items() if k not in ("group", "kind")} for r in o["spec"]["parentRefs"]]
            run.kube.add({**copy.deepcopy(o), "status": route_status(refs)})


def test_the_charts_validator_reports_clean_in_the_pod_lab():
    rendered = render(CHART, REL, NS, values=[CHART / "ci" / "80-validator-values.yaml"],
                      set_values=SET + ["validator.interval=10s", "validator.extraArgs={--clients-args,--samples 1}",
                                        "gateway.enabled=true", f"gateway.name={GATEWAY}",
                                        f"gateway.namespace={GATEWAY_NS}", "gateway.ws.sectionName=http"])
    images = images_for(rendered)
    images["vernemq-toolkit/vmq-validators:0.1.0"] = ensure_validator_image()
    with PodRun(rendered, namespace=NS, images=images, existing=EXISTING) as run:
        run.wait_ready(PODS, timeout=READY_TIMEOUT)
        dep = next(o for o in run.objects if o.get("kind") == "Deployment")
        assert dep["metadata"]["name"] == VALIDATOR
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {**copy.deepcopy(dep["spec"]["template"]["metadata"]), "name": f"{VALIDATOR}-0",
                            "namespace": NS},
               "spec": copy.deepcopy(dep["spec"]["template"]["spec"])}
        _publish_endpoint_slices(run)
        _play_the_gateway_controller(run)
        run.create_pod(pod, owner=VALIDATOR)
        # the API key is bound a few seconds after a pod is Ready (docs/podlab.md): the first runs may see 401
        deadline, text, current, bad = time.monotonic() + 180, "", {}, {"no run yet": ""}
        while time.monotonic() < deadline:
            text = _metrics(run, f"{VALIDATOR}-0")
            samples = [s for f in text_string_to_metric_families(text) for s in f.samples] if text else []
            if [s for s in samples if s.name == "vmq_validate_runs_total" and s.value >= 1]:
                current = {(s.labels["check"], s.labels["subject"]): s.labels["status"]
                           for s in samples if s.name == "vmq_validate_check_status" and s.value == 1}
                bad = {k: v for k, v in current.items() if v not in ("pass", "skip")}
                if not bad:
                    break
            time.sleep(3)
        if bad:
            code = ("import urllib.request,json;d=json.load(urllib.request.urlopen('http://127.0.0.1:9910/report'));"
                    "[print(r['check'], r['subject'], r['status'], r['message'][:300]) for r in d['results'] "
                    "if r['status'] not in ('pass','skip')]")
            report = run.exec(f"{VALIDATOR}-0", ["python", "-c", code]).stdout
            raise AssertionError(f"not clean within 180s: {bad}\n{report[-4000:]}\n{run.logs(f'{VALIDATOR}-0')[-2000:]}")
        assert {c.split("-")[0] for c, _ in current} == {"TRAFFIC", "DIST", "CLIENTS"}
        by_check: dict[str, set] = {}
        for (c, _subject), st in current.items():
            by_check.setdefault(c, set()).add(st)
        for c in SKIPPED:
            assert by_check.get(c) == {"skip"}, (c, by_check.get(c))
        for c in GATEWAY_CHECKS:  # read namespaced with the rendered Roles, and judged
            assert by_check.get(c) == {"pass"}, (c, by_check.get(c))
        run.wait_ready([f"{VALIDATOR}-0"], timeout=60)  # its readiness probe (/healthz) passes too
        logs = run.logs(f"{VALIDATOR}-0")
        for secret in (secret_value(run, "erlang-cookie", "cookie"), secret_value(run, "api-key", "api-key")):
            assert secret not in text and secret not in logs
