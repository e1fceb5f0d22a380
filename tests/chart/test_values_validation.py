"""Bad values are rejected before anything renders, with a message that names the field; good profiles pass."""

from __future__ import annotations

import pytest

from .conftest import PROFILES, HelmError

# (--set values, text that must appear in the error: the field and, for cross-field rules, the fix)
SCHEMA_CASES = [
    (["service.type=LoadBalancr"], "service.type"),
    (["service.externalTrafficPolicy=Global"], "externalTrafficPolicy"),
    (["service.sessionAffinity=Sticky"], "sessionAffinity"),
    (["image.tag=latest"], "image.tag"),
    (["image.tag="], "image"),
    (["image.digest=abc123"], "image.digest"),
    (["image.pullPolicy=Sometimes"], "pullPolicy"),
    (["replicaCount=0"], "replicaCount"),
    (["readinessProbe.mode=always"], "readinessProbe.mode"),
    (["statefulset.podManagementPolicy=Random"], "podManagementPolicy"),
    (["podAntiAffinity=medium"], "podAntiAffinity"),
    (["topologySpread.whenUnsatisfiable=Never"], "whenUnsatisfiable"),
    (["service.azure.idleTimeoutMinutes=2"], "idleTimeoutMinutes"),
    (["service.azure.idleTimeoutMinutes=120"], "idleTimeoutMinutes"),
    (["service.nodePorts.mqtt=1883"], "nodePorts"),
    (["service.ports.mqtt=70000"], "ports"),
    (["service.loadBalancerSourceRanges={not-a-cidr}"], "loadBalancerSourceRanges"),
    (["mqtt.maxKeepaliveSeconds=0"], "maxKeepaliveSeconds"),
    (["mqtt.maxKeepaliveSeconds=ten"], "maxKeepaliveSeconds"),
    (["pdb.maxUnavailable=0"], "maxUnavailable"),
    (["ingress.pathType=Regex"], "pathType"),
    (["ingress.path=mqtt"], "ingress.path"),
    (["ingress.hosts={Bad_Host}"], "hosts"),
    (["vernemq.distribution.portRangeMin=80"], "portRangeMin"),
    (["containerSecurityContext.privileged=true"], "privileged"),
    (["containerSecurityContext.allowPrivilegeEscalation=true"], "allowPrivilegeEscalation"),
    (["podSecurityContext.runAsNonRoot=false"], "runAsNonRoot"),
    (["erlangCookie.existingSecretKey="], "existingSecretKey"),
    (["erlangCookie.existingSecret=Not_A_Name"], "erlangCookie"),
    (["resources.requests=null"], "resources"),
    (["monitoring.serviceMonitor.interval=often"], "interval"),
    (["tests.image.tag=latest"], "tests"),
    (["unknownTopLevel=1"], "unknownTopLevel"),
    (["service.typo=1"], "typo"),
    (["networkPolicy.clientSources[0].cidr=10.0.0.0/8"], "clientSources"),
]

# cross-field rules (templates/_validate.tpl): message "VALUES VALIDATION" + field + fix
RULE_CASES = [
    (["listeners.mqtts.enabled=true"], ["tls.existingSecret", "kubernetes.io/tls Secret"]),
    (["listeners.wss.enabled=true"], ["tls.existingSecret"]),
    (["vernemq.distribution.portRangeMin=9110", "vernemq.distribution.portRangeMax=9100"],
     ["vernemq.distribution.portRangeMin", "portRangeMin <= portRangeMax"]),
    (["vernemq.distribution.portRangeMin=9000", "vernemq.distribution.portRangeMax=9200"],
     ["vernemq.distribution.portRangeMax", "at most 64 ports"]),
    (["vernemq.distribution.portRangeMin=8880", "vernemq.distribution.portRangeMax=8890"],
     ["includes port 8888"]),
    (["discovery.kubernetes.enabled=false"], ["discovery.kubernetes.enabled", "replicaCount=1"]),
    (["rbac.create=false"], ["rbac.create", "get/list pods"]),
    (["statefulset.podManagementPolicy=OrderedReady"], ["statefulset.podManagementPolicy", "deadlock", "Parallel"]),
    (["readinessProbe.mode=fullCluster", "statefulset.podManagementPolicy=OrderedReady"], ["deadlock"]),
    (["service.loadBalancerSourceRanges={10.0.0.0/8}"], ["service.loadBalancerSourceRanges", "service.type=LoadBalancer"]),
    (["service.azure.enabled=true"], ["service.azure.enabled", "service.type=LoadBalancer"]),
    (["service.type=LoadBalancer", "service.azure.enabled=true", "service.externalTrafficPolicy=Cluster"],
     ["service.externalTrafficPolicy", "healthCheckNodePort"]),
    (["service.type=LoadBalancer", "service.azure.enabled=true", "service.azure.idleTimeoutMinutes=4",
      "mqtt.maxKeepaliveSeconds=600"], ["service.azure.idleTimeoutMinutes", "idleTimeoutMinutes >= 10"]),
    (["ingress.enabled=true", "ingress.timeoutSeconds=60"], ["ingress.timeoutSeconds", "ingress.timeoutSeconds >= 300"]),
    (["ingress.enabled=true", "listeners.ws.enabled=false"], ["ingress.enabled", "listeners.ws.enabled=true"]),
    (["ingress.enabled=true", "ingress.tls.enabled=true"], ["ingress.tls.secretName"]),
    # the cookie can only come from the generated Secret or an existing one: no way to set the image default
    (["vernemq.config.distributed_cookie=vmq"], ["vernemq.config.distributed_cookie", "erlangCookie.existingSecret"]),
    (["vernemq.extraEnv[0].name=DOCKER_VERNEMQ_DISTRIBUTED_COOKIE", "vernemq.extraEnv[0].value=vmq"],
     ["vernemq.extraEnv", "erlangCookie.existingSecret"]),
    (["vernemq.config.allow_anonymous=on"], ["vernemq.config.allow_anonymous", "vernemq.allowAnonymous"]),
]


def _error(renderer, sets, helm="helm4"):
    with pytest.raises(HelmError) as exc:
        renderer.text(None, sets=sets, helm=helm)
    return str(exc.value)


@pytest.mark.parametrize("sets,field", SCHEMA_CASES, ids=[";".join(s) for s, _ in SCHEMA_CASES])
def test_schema_rejects(renderer, sets, field):
    msg = _error(renderer, sets)
    assert "values don't meet the specifications of the schema" in msg
    # Helm 4 names the field as a JSON pointer (/service/type), Helm 3 with dots (service.type)
    assert field in msg or "/" + field.replace(".", "/") in msg, msg


@pytest.mark.parametrize("sets,field", SCHEMA_CASES[:6], ids=[";".join(s) for s, _ in SCHEMA_CASES[:6]])
def test_schema_rejects_with_helm3(renderer, sets, field):
    msg = _error(renderer, sets, helm="helm3")
    assert field in msg or "/" + field.replace(".", "/") in msg, msg


@pytest.mark.parametrize("sets,needles", RULE_CASES, ids=[";".join(s) for s, _ in RULE_CASES])
def test_cross_field_rules_reject(renderer, sets, needles):
    msg = _error(renderer, sets)
    assert "VALUES VALIDATION" in msg, msg
    for n in needles:
        assert n in msg, msg


@pytest.mark.parametrize("sets,needles", RULE_CASES[:4], ids=[";".join(s) for s, _ in RULE_CASES[:4]])
def test_cross_field_rules_reject_with_helm3(renderer, sets, needles):
    msg = _error(renderer, sets, helm="helm3")
    assert "VALUES VALIDATION" in msg and needles[0] in msg, msg


def test_all_problems_reported_at_once(renderer):
    msg = _error(renderer, ["listeners.mqtts.enabled=true", "statefulset.podManagementPolicy=OrderedReady"])
    assert "tls.existingSecret" in msg and "statefulset.podManagementPolicy" in msg


def test_rejected_values_render_nothing(renderer):
    """A bad combination fails the whole render: no object of a half-applied release comes out."""
    from .conftest import CHART, RELEASE, helm_tool
    import subprocess
    proc = subprocess.run([helm_tool("helm"), "template", RELEASE, str(CHART), "--set", "listeners.mqtts.enabled=true"],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "kind:" not in proc.stdout


@pytest.mark.parametrize("profile", PROFILES)
def test_good_profiles_pass(renderer, profile):
    assert renderer.docs(profile)


def test_boundary_values_pass(renderer):
    renderer.docs(None, sets=["service.type=LoadBalancer", "service.azure.enabled=true",
                              "service.azure.idleTimeoutMinutes=5", "mqtt.maxKeepaliveSeconds=300"])
    renderer.docs(None, sets=["ingress.enabled=true", "ingress.timeoutSeconds=300"])
    renderer.docs(None, sets=["replicaCount=1", "discovery.kubernetes.enabled=false"])
    renderer.docs(None, sets=["statefulset.podManagementPolicy=OrderedReady", "readinessProbe.mode=listeners"])
    renderer.docs(None, sets=["pdb.maxUnavailable=25%"])
