"""The chart's validator in the pod lab (tests/podlab: podman pods run as a kubelet would run them, with the
chart's securityContext, env, probes and NetworkPolicies enforced; the API server is tests/fakekube.py over
TLS, which authorizes ServiceAccount tokens by the served Role/RoleBinding). The release's StatefulSet runs
the VerneMQ-shaped image (a real Erlang node per pod with the VerneMQ stand-in as its HTTP side,
docs/podlab.md); the validator pod runs the validators image with the chart's own arguments under its own
ServiceAccount and Role, probes straight from its pod (transport direct), and reports clean on /metrics."""

from __future__ import annotations

import copy
import time

from prometheus_client.parser import text_string_to_metric_families

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


def test_the_charts_validator_reports_clean_in_the_pod_lab():
    rendered = render(CHART, REL, NS, values=[CHART / "ci" / "80-validator-values.yaml"],
                      set_values=SET + ["validator.interval=10s", "validator.extraArgs={--clients-args,--samples 1}"]
                      # TRAFFIC-011..014 and the Gateway API checks 016..023 read cluster-wide, which the validator's
                      # namespaced Role does not grant (and the fake API server serves no ClusterRoles)
                      + [f"validator.policy.checks.TRAFFIC-0{i}.enabled=false" for i in (11, 12, 13, 14, *range(16, 24))])
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
        run.wait_ready([f"{VALIDATOR}-0"], timeout=60)  # its readiness probe (/healthz) passes too
        logs = run.logs(f"{VALIDATOR}-0")
        for secret in (secret_value(run, "erlang-cookie", "cookie"), secret_value(run, "api-key", "api-key")):
            assert secret not in text and secret not in logs
