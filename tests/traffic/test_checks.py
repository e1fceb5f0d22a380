"""Each traffic check passes on the correct fixture release and fails with its own ID on a mutated copy."""

from __future__ import annotations

import pytest

from validators.core.model import Status
from validators.core.registry import catalog

from .util import bad, find, load, mutated, statuses
from .util import plan as _plan

BASE = load()


def plan(objs, release="r", namespace="mqtt", policy=None):
    """The hand-written release keeps its ingress-nginx Ingress on purpose (TRAFFIC-008..010 need one), so the
    retirement warning TRAFFIC-024 is switched off here; test_gateway.py tests it."""
    pol = {"checks": {"TRAFFIC-024": {"enabled": False}}}
    for cid, conf in ((policy or {}).get("checks") or {}).items():
        pol["checks"][cid] = conf
    return _plan(objs, release, namespace, policy=pol)
SVC = "r-vernemq"


def svc(objs):
    return find(objs, "Service", SVC)


def ing(objs):
    return find(objs, "Ingress")


def netpol(objs):
    return find(objs, "NetworkPolicy")


def ann(obj):
    return obj["metadata"].setdefault("annotations", {})


def test_fixture_release_is_clean():
    report = plan(BASE)
    assert bad(report) == {}
    # the live-only checks skip in an offline plan, with the reason
    for cid in ("TRAFFIC-002", "TRAFFIC-006", "TRAFFIC-007"):
        (r,) = [r for r in report.results if r.check == cid]
        assert r.status is Status.SKIP and r.message.startswith("offline plan")
    passed_ids = {r.check for r in report.results if r.status is Status.PASS}
    assert passed_ids == {f"TRAFFIC-{n:03d}" for n in (1, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15)}




def cluster_policy(objs):
    svc(objs)["spec"]["externalTrafficPolicy"] = "Cluster"


def no_policy_field(objs):
    del svc(objs)["spec"]["externalTrafficPolicy"]


def no_idle_timeout(objs):
    del ann(svc(objs))["service.beta.kubernetes.io/azure-load-balancer-tcp-idle-timeout"]


def short_idle_timeout(objs):
    ann(svc(objs))["service.beta.kubernetes.io/azure-load-balancer-tcp-idle-timeout"] = "4"


def idle_timeout_out_of_range(objs):
    ann(svc(objs))["service.beta.kubernetes.io/azure-load-balancer-tcp-idle-timeout"] = "240"


def tcp_probe_on_1883(objs):
    cluster_policy(objs)
    # the WS port's probe is moved to the http status port, 1883 keeps Azure's default TCP probe
    a = ann(svc(objs))
    a["service.beta.kubernetes.io/port_8080_health-probe_protocol"] = "http"
    a["service.beta.kubernetes.io/port_8080_health-probe_port"] = "8888"
    svc(objs)["spec"]["ports"].append({"name": "http", "port": 8888, "targetPort": "http", "protocol": "TCP"})


def wrong_target_port(objs):
    svc(objs)["spec"]["ports"][0]["targetPort"] = 1884


def target_port_wrong_listener(objs):
    svc(objs)["spec"]["ports"][0]["targetPort"] = "ws"


def unknown_named_target(objs):
    find(objs, "Service", "r-vernemq-headless")["spec"]["ports"][0]["targetPort"] = "erlang-epmd"


def ingress_to_mqtt_port(objs):
    ing(objs)["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"] = {"number": 1883}


def ingress_wrong_path(objs):
    ing(objs)["spec"]["rules"][0]["http"]["paths"][0]["path"] = "/ws"


def ingress_without_timeouts(objs):
    a = ann(ing(objs))
    del a["nginx.ingress.kubernetes.io/proxy-read-timeout"]
    del a["nginx.ingress.kubernetes.io/proxy-send-timeout"]


def ingress_http10(objs):
    ann(ing(objs))["nginx.ingress.kubernetes.io/proxy-http-version"] = "1.0"


def ingress_without_tls(objs):
    del ing(objs)["spec"]["tls"]


def policy_blocks_4369(objs):
    netpol(objs)["spec"]["ingress"][1]["ports"] = [p for p in netpol(objs)["spec"]["ingress"][1]["ports"]
                                                   if p["port"] != "epmd"]


def egress_forgotten(objs):
    netpol(objs)["spec"]["egress"].pop(2)  # pod-to-pod egress rule


def policy_opens_9100_to_all(objs):
    netpol(objs)["spec"]["ingress"].append({"ports": [{"port": 9100}]})


def cluster_ports_from_namespace(objs):
    # the classic mistake: namespaceSelector and podSelector as TWO peers (OR) instead of one (AND)
    rule = netpol(objs)["spec"]["ingress"][1]
    rule["from"] = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mqtt"}}},
                    {"podSelector": rule["from"][0]["podSelector"]}]


def clients_blocked(objs):
    netpol(objs)["spec"]["ingress"].pop(0)


def ws_blocked(objs):
    netpol(objs)["spec"]["ingress"][0]["ports"] = [{"port": "mqtt"}]


def dns_forgotten(objs):
    netpol(objs)["spec"]["egress"].pop(0)


def api_forgotten(objs):
    netpol(objs)["spec"]["egress"].pop(1)


def ingress_class_other(objs):
    ing(objs)["spec"]["ingressClassName"] = "traefik"


MUTATIONS = [
    # (mutation, check that must fail, other checks allowed to fail with it)
    (cluster_policy, "TRAFFIC-001", {"TRAFFIC-004"}),
    (no_policy_field, "TRAFFIC-001", {"TRAFFIC-004"}),
    (no_idle_timeout, "TRAFFIC-003", set()),
    (short_idle_timeout, "TRAFFIC-003", set()),
    (idle_timeout_out_of_range, "TRAFFIC-003", set()),
    (tcp_probe_on_1883, "TRAFFIC-004", {"TRAFFIC-001"}),
    (wrong_target_port, "TRAFFIC-005", set()),
    (target_port_wrong_listener, "TRAFFIC-005", set()),
    (unknown_named_target, "TRAFFIC-005", set()),
    (ingress_to_mqtt_port, "TRAFFIC-008", set()),
    (ingress_wrong_path, "TRAFFIC-008", set()),
    (ingress_without_timeouts, "TRAFFIC-009", set()),
    (ingress_http10, "TRAFFIC-009", set()),
    (ingress_without_tls, "TRAFFIC-010", set()),
    (clients_blocked, "TRAFFIC-011", set()),
    (ws_blocked, "TRAFFIC-011", set()),
    (policy_blocks_4369, "TRAFFIC-012", set()),
    (egress_forgotten, "TRAFFIC-012", set()),
    (policy_opens_9100_to_all, "TRAFFIC-013", set()),
    (cluster_ports_from_namespace, "TRAFFIC-013", set()),
    (dns_forgotten, "TRAFFIC-014", set()),
    (api_forgotten, "TRAFFIC-014", set()),
]


@pytest.mark.parametrize("mutation,check_id,also", MUTATIONS, ids=[m[0].__name__ for m in MUTATIONS])
def test_mutation_fails_with_its_own_id(mutation, check_id, also):
    report = plan(mutated(BASE, mutation))
    found = bad(report)
    assert check_id in found, f"{mutation.__name__} should make {check_id} report a finding; got {found}"
    assert set(found) <= {check_id} | also, f"unexpected findings {found}"
    r = next(r for r in report.results if r.check == check_id and r.status is not Status.PASS)
    assert r.remedy and r.evidence, "a finding carries evidence and a remedy"


def test_every_traffic_check_is_covered_by_a_mutation_or_live_test():
    gateway = {f"TRAFFIC-0{n}" for n in range(16, 25)}  # tests/traffic/test_gateway.py
    covered = {m[1] for m in MUTATIONS} | {"TRAFFIC-002", "TRAFFIC-006", "TRAFFIC-007", "TRAFFIC-015"} | gateway
    assert {c for c in catalog() if c.startswith("TRAFFIC-")} == covered


def test_warning_check_warns_and_counts_only_from_fail_on_warning():
    report = plan(mutated(BASE, policy_opens_9100_to_all))
    assert Status.WARN in statuses(report, "TRAFFIC-013")
    assert report.exit_code("error") == 0 and report.exit_code("warning") == 1


def test_per_port_probe_annotation_on_every_client_port_satisfies_the_probe_check():
    def fn(objs):
        tcp_probe_on_1883(objs)
        a = ann(svc(objs))
        a["service.beta.kubernetes.io/port_1883_health-probe_protocol"] = "http"
        a["service.beta.kubernetes.io/port_1883_health-probe_port"] = "http"
    report = plan(mutated(BASE, fn))
    assert statuses(report, "TRAFFIC-004") == [Status.PASS, Status.PASS]
    assert "TRAFFIC-001" in bad(report), "Cluster policy is still reported by its own check"


def test_keepalive_annotation_drives_the_idle_timeout_and_nginx_timeouts():
    def fn(objs):
        ann(svc(objs))["vernemq-toolkit/mqtt-keepalive-seconds"] = "3000"   # 50 min > 30 min idle timeout
        ann(ing(objs))["vernemq-toolkit/mqtt-keepalive-seconds"] = "7200"   # > 3600 s proxy timeouts
    found = bad(plan(mutated(BASE, fn)))
    assert set(found) == {"TRAFFIC-003", "TRAFFIC-009"}


def test_keepalive_policy_option_is_the_fallback():
    def fn(objs):
        del ann(svc(objs))["vernemq-toolkit/mqtt-keepalive-seconds"]
    objs = mutated(BASE, fn)
    assert bad(plan(objs)) == {}
    found = bad(plan(objs, policy={"checks": {"TRAFFIC-003": {"options": {"keepalive_seconds": 1900}}}}))
    assert set(found) == {"TRAFFIC-003"}


def test_non_azure_load_balancer_skips_the_azure_checks():
    def fn(objs):
        a = ann(svc(objs))
        for key in [k for k in a if k.startswith("service.beta.kubernetes.io/")]:
            del a[key]
    report = plan(mutated(BASE, fn))
    assert statuses(report, "TRAFFIC-003") == [Status.SKIP] and statuses(report, "TRAFFIC-004") == [Status.SKIP]
    forced = plan(mutated(BASE, fn), policy={"checks": {"TRAFFIC-003": {"options": {"cloud": "azure"}}}})
    assert statuses(forced, "TRAFFIC-003") == [Status.FAIL]


def test_other_ingress_controller_is_skipped_not_passed():
    report = plan(mutated(BASE, lambda o: (ingress_class_other(o), ingress_without_timeouts(o))))
    assert statuses(report, "TRAFFIC-009") == [Status.SKIP]


def test_wrong_release_name_fails_instead_of_skipping_everything():
    report = plan(BASE, release="typo")
    assert bad(report) == {"TRAFFIC-015": ["release"]}
    r = next(r for r in report.results if r.check == "TRAFFIC-015")
    assert r.evidence["instances_seen"] == ["r"]
    assert report.exit_code("error") == 1


def test_configured_client_sources_annotation_replaces_anywhere():
    def fn(objs):
        netpol(objs)["spec"]["ingress"][0]["from"] = [
            {"ipBlock": {"cidr": "10.0.0.0/8"}},
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}]
    restricted = mutated(BASE, fn)
    assert "TRAFFIC-011" in bad(plan(restricted))
    ann(svc(restricted))["vernemq-toolkit/client-sources"] = "10.20.0.0/16; 10.1.2.3"
    assert bad(plan(restricted)) == {}
    ann(svc(restricted))["vernemq-toolkit/client-sources"] = "192.168.0.0/16"
    assert "TRAFFIC-011" in bad(plan(restricted))


def test_client_source_with_several_labels_needs_all_of_them_admitted():
    def fn(objs):
        netpol(objs)["spec"]["ingress"][0]["from"] = [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "iot"}},
             "podSelector": {"matchLabels": {"app": "sensor", "tier": "edge"}}},
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}]
    restricted = mutated(BASE, fn)
    ann(svc(restricted))["vernemq-toolkit/client-sources"] = "iot/app=sensor,tier=edge;10.0.0.0/8"
    assert set(bad(plan(restricted))) == {"TRAFFIC-011"}, "the CIDR source is not admitted"
    ann(svc(restricted))["vernemq-toolkit/client-sources"] = "iot/app=sensor,tier=edge"
    assert bad(plan(restricted)) == {}, "a pod with both labels is admitted"
    ann(svc(restricted))["vernemq-toolkit/client-sources"] = "iot/app=sensor"
    assert set(bad(plan(restricted))) == {"TRAFFIC-011"}, "a pod with one of the two labels is not"


def test_ingress_controller_namespace_must_be_allowed_for_ws_when_clients_are_restricted():
    def fn(objs):
        netpol(objs)["spec"]["ingress"][0]["from"] = [{"ipBlock": {"cidr": "203.0.113.0/24"}}]
    found = bad(plan(mutated(BASE, fn)))
    assert found == {"TRAFFIC-011": ["ingress-nginx/app.kubernetes.io/name=ingress-nginx -> ws 8080/TCP"]}


def test_probe_remedy_names_the_concrete_annotations_for_the_failing_port():
    report = plan(mutated(BASE, tcp_probe_on_1883))
    (r,) = [r for r in report.results if r.check == "TRAFFIC-004" and r.status is Status.FAIL]
    assert r.subject.endswith("port 1883")
    assert "port_1883_health-probe_port: \"8888\"" in r.remedy and "port_1883_health-probe_protocol: http" in r.remedy
