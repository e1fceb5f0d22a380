"""Values that would fight the chart are refused at render, naming the value and what to set instead:
`vernemq.extraEnv` redefining an env var the chart sets (Kubernetes keeps the last definition, so the
chart, its NetworkPolicy and `vmq-validate plan` would describe another broker than the one running),
names that are not DNS-1123 labels, and reserved `vernemq-toolkit/*` annotation keys in user maps.
And `plan` itself reads the effective env (last definition wins), not the annotation, for manifests
that carry such a redefinition anyway (another chart, a hand edit)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from .conftest import NAMESPACE, ROOT, HelmError, find

EXTRA_ENV_CASES = [
    ("DOCKER_VERNEMQ_ALLOW_ANONYMOUS", "on", "vernemq.allowAnonymous"),
    ("DOCKER_VERNEMQ_ERLANG__DISTRIBUTION__PORT_RANGE__MINIMUM", "9200", "vernemq.distribution.portRangeMin"),
    ("DOCKER_VERNEMQ_ERLANG__DISTRIBUTION__PORT_RANGE__MAXIMUM", "9209", "vernemq.distribution.portRangeMax"),
    ("DOCKER_VERNEMQ_ACCEPT_EULA", "no", "vernemq.acceptEula"),
    ("DOCKER_VERNEMQ_ALLOW_PUBLISH_DURING_NETSPLIT", "off", "vernemq.allowDuringNetsplit"),
    ("DOCKER_VERNEMQ_DISCOVERY_KUBERNETES", "0", "discovery.kubernetes.enabled"),
    ("MY_POD_IP", "1.2.3.4", "nothing"),
]


def _error(renderer, sets):
    with pytest.raises(HelmError) as exc:
        renderer.text(None, sets=sets)
    msg = str(exc.value)
    assert "VALUES VALIDATION" in msg, msg
    return msg


@pytest.mark.parametrize("name,value,instead", EXTRA_ENV_CASES, ids=[c[0] for c in EXTRA_ENV_CASES])
def test_extra_env_may_not_redefine_what_the_chart_sets(renderer, name, value, instead):
    msg = _error(renderer, [f"vernemq.extraEnv[0].name={name}", f"vernemq.extraEnv[0].value={value}"])
    assert f"vernemq.extraEnv[0]: {name} is set by the chart" in msg and f"set {instead}" in msg, msg


def test_extra_env_may_not_redefine_a_config_key(renderer):
    msg = _error(renderer, ["vernemq.config.max_online_messages=500",
                            "vernemq.extraEnv[0].name=DOCKER_VERNEMQ_MAX_ONLINE_MESSAGES",
                            "vernemq.extraEnv[0].value=5"])
    assert "DOCKER_VERNEMQ_MAX_ONLINE_MESSAGES" in msg and "vernemq.config.max_online_messages" in msg, msg


def test_extra_env_of_its_own_renders_last(renderer):
    docs = renderer.docs(None, sets=["vernemq.extraEnv[0].name=DOCKER_VERNEMQ_MAX_ONLINE_MESSAGES",
                                     "vernemq.extraEnv[0].value=5"])
    env = find(docs, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[-1]["name"] == "DOCKER_VERNEMQ_MAX_ONLINE_MESSAGES" and str(env[-1]["value"]) == "5"


@pytest.mark.parametrize("field,value", [
    ("nameOverride", "my vernemq"), ("nameOverride", "VerneMQ"), ("nameOverride", "a" * 64),
    ("nameOverride", "mqtt-"), ("fullnameOverride", "prod_mqtt"), ("fullnameOverride", "b" * 53),
])
def test_name_overrides_are_dns_labels(renderer, field, value):
    msg = _error(renderer, [f"{field}={value}"])
    assert f"{field}: " in msg and "DNS-1123" in msg, msg


def test_good_name_overrides_render(renderer):
    docs = renderer.docs(None, sets=["nameOverride=mqtt", "fullnameOverride=prod-mqtt"])
    assert find(docs, "StatefulSet")["metadata"]["name"] == "prod-mqtt"


@pytest.mark.parametrize("field", ["statefulset.podAnnotations", "statefulset.annotations", "service.annotations",
                                   "ingress.annotations", "serviceAccount.annotations", "persistence.annotations"])
def test_reserved_annotation_keys_are_refused(renderer, field):
    key = "vernemq-toolkit/dist-port-range" if field == "statefulset.podAnnotations" else "vernemq-toolkit/anything"
    msg = _error(renderer, [f"{field}.{key.replace('.', '[.]').replace('/', '/')}=1-2"])
    assert f"{field}: {key} is reserved" in msg, msg


def test_other_annotations_pass(renderer):
    docs = renderer.docs(None, sets=["statefulset.podAnnotations.example\\.com/team=mqtt"])
    ann = find(docs, "StatefulSet")["spec"]["template"]["metadata"]["annotations"]
    assert ann["example.com/team"] == "mqtt" and ann["vernemq-toolkit/dist-port-range"] == "9100-9109"


def test_plan_reads_the_effective_env_not_the_annotation(renderer, tmp_path):
    """Manifests where a later env entry moves the range to 9200-9209 (rendered by another chart, or edited):
    the annotation still says 9100-9109 and the NetworkPolicy opens only that, so TRAFFIC-012 must fail for
    the distribution ports the broker really uses."""
    docs = renderer.docs(None)
    sts = find(docs, "StatefulSet")
    env = sts["spec"]["template"]["spec"]["containers"][0]["env"]
    env += [{"name": "DOCKER_VERNEMQ_ERLANG__DISTRIBUTION__PORT_RANGE__MINIMUM", "value": "9200"},
            {"name": "DOCKER_VERNEMQ_ERLANG__DISTRIBUTION__PORT_RANGE__MAXIMUM", "value": "9209"}]
    assert sts["spec"]["template"]["metadata"]["annotations"]["vernemq-toolkit/dist-port-range"] == "9100-9109"
    f = tmp_path / "edited.yaml"
    f.write_text(yaml.safe_dump_all(docs))

    def plan(path):
        cp = subprocess.run([sys.executable, "-m", "validators", "plan", "-f", str(path), "-n", NAMESPACE,
                             "--format", "json", "--fail-on", "never"], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
        assert cp.returncode == 0, cp.stderr
        return [r for r in json.loads(cp.stdout)["results"] if r["check"] == "TRAFFIC-012"]
    edited = plan(f)
    dist = [r for r in edited if "9200" in r["subject"] or "9200" in json.dumps(r["evidence"])]
    assert dist and all(r["status"] == "fail" for r in dist), edited
    # control: the same manifests without the redefinition pass
    g = tmp_path / "plain.yaml"
    g.write_text(renderer.text(None))
    assert all(r["status"] == "pass" for r in plan(g))


def _chart_env_names(renderer) -> dict[str, str]:
    """Every env name the chart itself sets on the vernemq container, over all profiles -> one profile setting it."""
    names: dict[str, str] = {}
    for path in sorted((ROOT / "charts" / "vernemq" / "ci").glob("*-values.yaml")):
        profile = path.name[: -len("-values.yaml")]
        sts = find(renderer.docs(profile), "StatefulSet")
        for c in sts["spec"]["template"]["spec"]["containers"]:
            if c["name"] == "vernemq":
                for e in c.get("env", []):
                    names.setdefault(e["name"], profile)
    return names


def test_every_env_name_the_chart_sets_is_refused_in_extra_env(renderer):
    """The refusal list in _validate.tpl is written by hand; this keeps it in step with what the chart renders,
    so a new env var in statefulset.yaml cannot be silently overridden through vernemq.extraEnv."""
    names = _chart_env_names(renderer)
    assert "HOME" in names and "DOCKER_VERNEMQ_DISTRIBUTED_COOKIE" in names, names
    missed = []
    for name, profile in names.items():
        try:
            renderer.text(profile, sets=[f"vernemq.extraEnv[0].name={name}", "vernemq.extraEnv[0].value=x"])
        except HelmError as exc:
            assert f"{name} is set by the chart" in str(exc), str(exc)
            continue
        missed.append(f"{name} (profile {profile})")
    assert not missed, f"vernemq.extraEnv may redefine: {missed}; add them to $chartEnv in _validate.tpl"
