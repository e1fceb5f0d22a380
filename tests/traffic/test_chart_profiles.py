"""Every traffic check passes on every profile the chart renders; mutated renders fail with the check's ID.

Each profile is rendered once per test session (`helm template t charts/vernemq -n mqtt -f PROFILE`).
"""

from __future__ import annotations

import copy
import functools
import shutil
import subprocess
from pathlib import Path

import pytest

from validators.collect import manifests
from validators.core.model import Status

from .util import bad, plan

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "vernemq"
PROFILES = sorted((CHART / "ci").glob("*-values.yaml"))
HELM = shutil.which("helm", path=str(ROOT / ".tools" / "bin")) or shutil.which("helm")
RELEASE, NS = "t", "mqtt"

#: findings the chart produces today that are chart problems, not check problems (reported to the
#: chart owner). Only these may appear; any other finding fails the test. Empty: the chart is clean.
KNOWN_CHART_ISSUES: dict[tuple[str, str], str] = {
    # the ingress-nginx profiles stay for clusters that still run it; the retirement warning is the point
    ("TRAFFIC-024", f"Ingress {NS}/{RELEASE}-vernemq-ws"): "ingress-nginx is retired (warning by design)",
}

pytestmark = pytest.mark.skipif(not PROFILES or HELM is None, reason="chart profiles or helm not available")


@functools.lru_cache(maxsize=None)
def gateway_crds():
    """The Gateway API v1.6.1 standard CRDs copied into tests/fixtures (TRAFFIC-016 runs on every profile)."""
    from validators.collect.crds import load_dir

    return load_dir(str(ROOT / "tests" / "fixtures" / "gateway-api" / "v1.6.1"))


@functools.lru_cache(maxsize=None)
def render(profile: str) -> tuple[dict, ...]:
    out = subprocess.run([HELM, "template", RELEASE, str(CHART), "-n", NS, "-f", profile],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, f"helm template failed for {profile}: {out.stderr}"
    docs = manifests.read_documents_text(out.stdout, Path(profile).name)
    return tuple(manifests.normalize(docs, NS))


def objects(profile: Path) -> list[dict]:
    return copy.deepcopy(list(render(str(profile))))


@pytest.mark.parametrize("profile", PROFILES, ids=[p.name for p in PROFILES])
def test_every_check_passes_on_every_chart_profile(profile):
    # no policy file: the chart's own annotations (keepalive, client sources, dist range) must say enough
    report = plan(objects(profile), RELEASE, NS, crds=gateway_crds())
    findings = [(r.check, r.subject, r.status.value, r.message) for r in report.results
                if r.status in (Status.FAIL, Status.UNKNOWN, Status.WARN)
                and (r.check, r.subject) not in KNOWN_CHART_ISSUES]
    assert findings == []
    assert any(r.status is Status.PASS for r in report.results if r.check == "TRAFFIC-012")


def _vmq_netpol(objs):
    return next(o for o in objs if o["kind"] == "NetworkPolicy"
                and o["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/instance") == RELEASE)


def _client_svc(objs):
    return next(o for o in objs if o["kind"] == "Service" and o["metadata"]["name"] == f"{RELEASE}-vernemq")


def cluster_policy(objs):
    _client_svc(objs)["spec"]["externalTrafficPolicy"] = "Cluster"


def no_idle_timeout(objs):
    del _client_svc(objs)["metadata"]["annotations"]["service.beta.kubernetes.io/azure-load-balancer-tcp-idle-timeout"]


def block_4369(objs):
    for rule in _vmq_netpol(objs)["spec"]["ingress"]:
        if rule.get("ports"):
            rule["ports"] = [p for p in rule["ports"] if p.get("port") != 4369]


def open_9100_to_all(objs):
    _vmq_netpol(objs)["spec"]["ingress"].append({"ports": [{"port": 9100, "protocol": "TCP"}]})


def ws_backend_to_mqtt(objs):
    ing = next(o for o in objs if o["kind"] == "Ingress")
    for rule in ing["spec"]["rules"]:
        for p in rule["http"]["paths"]:
            p["backend"]["service"]["port"] = {"number": 1883}


def nginx_default_timeouts(objs):
    ing = next(o for o in objs if o["kind"] == "Ingress")
    for key in list(ing["metadata"].get("annotations", {})):
        if "timeout" in key:
            del ing["metadata"]["annotations"][key]


CHART_MUTATIONS = [
    ("10-aks-values.yaml", cluster_policy, "TRAFFIC-001"),
    ("10-aks-values.yaml", cluster_policy, "TRAFFIC-004"),
    ("10-aks-values.yaml", no_idle_timeout, "TRAFFIC-003"),
    ("00-default-values.yaml", block_4369, "TRAFFIC-012"),
    ("00-default-values.yaml", open_9100_to_all, "TRAFFIC-013"),
    ("30-ingress-nginx-values.yaml", ws_backend_to_mqtt, "TRAFFIC-008"),
    ("30-ingress-nginx-values.yaml", nginx_default_timeouts, "TRAFFIC-009"),
]


@pytest.mark.parametrize("name,mutation,check_id", CHART_MUTATIONS,
                         ids=[f"{n}-{m.__name__}-{c}" for n, m, c in CHART_MUTATIONS])
def test_mutated_chart_render_fails_with_the_check_id(name, mutation, check_id):
    profile = CHART / "ci" / name
    if not profile.exists():
        pytest.skip(f"profile {name} is gone from the chart")
    objs = objects(profile)
    mutation(objs)
    assert check_id in bad(plan(objs, RELEASE, NS))
