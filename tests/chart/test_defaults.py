"""Assertions on the objects the chart renders with its defaults (and the profiles that switch a default)."""

from __future__ import annotations

import base64
import re

import pytest

from .conftest import FULLNAME, NAMESPACE, RELEASE, container, env_of, find, find_all

SELECTOR = {"app.kubernetes.io/name": "vernemq", "app.kubernetes.io/instance": RELEASE}
CLUSTER_PORTS = {4369, 44053, 8888}


def sts_of(docs):
    return find(docs, "StatefulSet", FULLNAME)


# ---- StatefulSet, discovery, RBAC -------------------------------------------------------------------------

def test_statefulset_discovery_and_labels(default_docs):
    sts = sts_of(default_docs)
    spec = sts["spec"]
    assert spec["replicas"] == 3
    assert spec["serviceName"] == f"{FULLNAME}-headless"
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["selector"]["matchLabels"] == SELECTOR
    labels = spec["template"]["metadata"]["labels"]
    assert SELECTOR.items() <= labels.items()
    env = env_of(container(sts))
    assert env["DOCKER_VERNEMQ_DISCOVERY_KUBERNETES"]["value"] == "1"
    assert env["DOCKER_VERNEMQ_KUBERNETES_LABEL_SELECTOR"]["value"] == \
        f"app.kubernetes.io/name=vernemq,app.kubernetes.io/instance={RELEASE}"
    assert env["DOCKER_VERNEMQ_KUBERNETES_SUBDOMAIN"]["value"] == f"{FULLNAME}-headless"
    assert env["DOCKER_VERNEMQ_KUBERNETES_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["MY_POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_every_object_is_namespaced_and_labelled(default_docs):
    for d in default_docs:
        md = d["metadata"]
        assert md.get("namespace") == NAMESPACE, f"{d['kind']}/{md['name']} has no namespace"
        assert md["labels"]["app.kubernetes.io/instance"] == RELEASE
        expected = "vernemq-test" if md["labels"].get("app.kubernetes.io/component") == "test" and d["kind"] == "Pod" \
            else "vernemq"
        assert md["labels"]["app.kubernetes.io/name"] == expected


def test_rbac_is_minimal_and_namespaced(default_docs):
    role = find(default_docs, "Role", FULLNAME)
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): sorted(r["verbs"]) for r in role["rules"]}
    assert rules == {(("",), ("pods",)): ["get", "list"], (("apps",), ("statefulsets",)): ["get"]}
    assert not find_all(default_docs, "ClusterRole") and not find_all(default_docs, "ClusterRoleBinding")
    rb = find(default_docs, "RoleBinding", FULLNAME)
    assert rb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": FULLNAME}
    assert rb["subjects"] == [{"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}]


def test_token_mounted_only_for_discovery(renderer, default_docs):
    sa = find(default_docs, "ServiceAccount", FULLNAME)
    assert sa["automountServiceAccountToken"] is False
    assert sts_of(default_docs)["spec"]["template"]["spec"]["automountServiceAccountToken"] is True
    single = renderer.docs("00-default", sets=["replicaCount=1", "discovery.kubernetes.enabled=false"])
    assert sts_of(single)["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    assert not find_all(single, "Role") and not find_all(single, "RoleBinding")
    assert "DOCKER_VERNEMQ_DISCOVERY_KUBERNETES" not in env_of(container(sts_of(single)))


# ---- Services ----------------------------------------------------------------------------------------------

def test_headless_service_ports_and_not_ready_addresses(default_docs):
    svc = find(default_docs, "Service", f"{FULLNAME}-headless")
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["publishNotReadyAddresses"] is True
    assert svc["spec"]["selector"] == SELECTOR
    ports = {p["name"]: p["port"] for p in svc["spec"]["ports"]}
    assert ports["epmd"] == 4369 and ports["cluster"] == 44053 and ports["http"] == 8888
    assert {v for k, v in ports.items() if k.startswith("dist-")} == set(range(9100, 9110))
    for p in svc["spec"]["ports"]:
        assert len(p["name"]) <= 15 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", p["name"])


def test_distribution_range_reaches_the_image(default_docs, renderer):
    sts = sts_of(default_docs)
    env = env_of(container(sts))
    assert env["DOCKER_VERNEMQ_ERLANG__DISTRIBUTION__PORT_RANGE__MINIMUM"]["value"] == "9100"
    assert env["DOCKER_VERNEMQ_ERLANG__DISTRIBUTION__PORT_RANGE__MAXIMUM"]["value"] == "9109"
    assert sts["spec"]["template"]["metadata"]["annotations"]["vernemq-toolkit/dist-port-range"] == "9100-9109"
    other = renderer.docs("00-default", sets=["vernemq.distribution.portRangeMin=9200",
                                             "vernemq.distribution.portRangeMax=9203"])
    s2 = sts_of(other)
    assert s2["spec"]["template"]["metadata"]["annotations"]["vernemq-toolkit/dist-port-range"] == "9200-9203"
    hl = find(other, "Service", f"{FULLNAME}-headless")
    assert sorted(p["port"] for p in hl["spec"]["ports"] if p["name"].startswith("dist-")) == [9200, 9201, 9202, 9203]
    np = find(other, "NetworkPolicy", FULLNAME)
    assert any(p.get("port") == 9200 and p.get("endPort") == 9203 for r in np["spec"]["ingress"] for p in r["ports"])


def test_container_port_names_follow_the_contract(renderer):
    docs = renderer.docs("40-tls")
    ports = {p["name"]: p["containerPort"] for p in container(sts_of(docs))["ports"]}
    assert {k: ports[k] for k in ("mqtt", "mqtts", "ws", "wss", "http", "epmd", "cluster")} == {
        "mqtt": 1883, "mqtts": 8883, "ws": 8080, "wss": 8443, "http": 8888, "epmd": 4369, "cluster": 44053}


def test_client_service_is_clusterip_with_keepalive_annotation(default_docs):
    svc = find(default_docs, "Service", FULLNAME)
    assert svc["spec"]["type"] == "ClusterIP"
    assert "externalTrafficPolicy" not in svc["spec"]
    assert svc["metadata"]["annotations"]["vernemq-toolkit/mqtt-keepalive-seconds"] == "300"
    assert {p["name"]: (p["port"], p["targetPort"]) for p in svc["spec"]["ports"]} == {
        "mqtt": (1883, "mqtt"), "ws": (8080, "ws")}
    assert svc["spec"]["selector"] == SELECTOR


@pytest.mark.parametrize("profile,stype", [("10-aks", "LoadBalancer"), ("20-generic-nodeport-metallb", "NodePort"),
                                           ("21-generic-metallb", "LoadBalancer"), ("40-tls", "LoadBalancer")])
def test_external_services_use_local_traffic_policy(renderer, profile, stype):
    svc = find(renderer.docs(profile), "Service", FULLNAME)
    assert svc["spec"]["type"] == stype
    assert svc["spec"]["externalTrafficPolicy"] == "Local"


def test_nodeport_profile_pins_node_ports(renderer):
    svc = find(renderer.docs("20-generic-nodeport-metallb"), "Service", FULLNAME)
    assert {p["name"]: p.get("nodePort") for p in svc["spec"]["ports"]} == {"mqtt": 31883, "ws": 31080}


def test_aks_profile_annotations(renderer):
    svc = find(renderer.docs("10-aks"), "Service", FULLNAME)
    ann = svc["metadata"]["annotations"]
    keepalive = int(ann["vernemq-toolkit/mqtt-keepalive-seconds"])
    idle = int(ann["service.beta.kubernetes.io/azure-load-balancer-tcp-idle-timeout"])
    assert 4 <= idle <= 100 and idle * 60 >= keepalive
    assert "service.beta.kubernetes.io/azure-load-balancer-internal" not in ann
    assert svc["spec"]["loadBalancerSourceRanges"] == ["203.0.113.0/24", "198.51.100.0/24"]
    # no TCP probe on any MQTT port: HTTP on kube-proxy's /healthz, for the Service and for every client port
    assert ann["service.beta.kubernetes.io/azure-load-balancer-health-probe-protocol"] == "http"
    assert ann["service.beta.kubernetes.io/azure-load-balancer-health-probe-request-path"] == "/healthz"
    assert svc["spec"]["externalTrafficPolicy"] == "Local"
    for p in svc["spec"]["ports"]:
        assert ann[f"service.beta.kubernetes.io/port_{p['port']}_health-probe_protocol"] == "http"
        assert ann[f"service.beta.kubernetes.io/port_{p['port']}_health-probe_request-path"] == "/healthz"
    assert not any(v.lower() == "tcp" for k, v in ann.items() if "health-probe" in k)


def test_aks_internal_profile(renderer):
    ann = find(renderer.docs("11-aks-internal"), "Service", FULLNAME)["metadata"]["annotations"]
    assert ann["service.beta.kubernetes.io/azure-load-balancer-internal"] == "true"
    assert ann["service.beta.kubernetes.io/azure-load-balancer-internal-subnet"] == "mqtt-subnet"


def test_azure_annotations_absent_by_default(default_docs):
    for svc in find_all(default_docs, "Service"):
        assert not any("azure" in k for k in svc["metadata"].get("annotations", {}))


# ---- Ingress -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("profile,hosts", [("30-ingress-nginx", ["mqtt.example.com"]),
                                           ("31-ingress-nginx-nohosts", [None])])
def test_ws_ingress(renderer, profile, hosts):
    ing = find(renderer.docs(profile), "Ingress", f"{FULLNAME}-ws")
    ann = ing["metadata"]["annotations"]
    keepalive = int(ann["vernemq-toolkit/mqtt-keepalive-seconds"])
    assert int(ann["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= keepalive
    assert int(ann["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= keepalive
    assert ann["nginx.ingress.kubernetes.io/proxy-http-version"] == "1.1"
    assert ing["spec"]["ingressClassName"] == "nginx"
    assert [r.get("host") for r in ing["spec"]["rules"]] == hosts
    for rule in ing["spec"]["rules"]:
        (path,) = rule["http"]["paths"]
        assert path["path"] == "/mqtt"
        assert path["backend"]["service"] == {"name": FULLNAME, "port": {"name": "ws"}}


def test_ingress_tls_and_passthrough_annotations(renderer):
    ing = find(renderer.docs("30-ingress-nginx"), "Ingress", f"{FULLNAME}-ws")
    assert ing["spec"]["tls"] == [{"secretName": "mqtt-example-com-tls", "hosts": ["mqtt.example.com"]}]
    other = renderer.docs("31-ingress-nginx-nohosts", sets=["ingress.nginx=false", "ingress.className=traefik",
                                                           "ingress.annotations.traefik\\.ingress\\.kubernetes\\.io/router\\.entrypoints=websecure"])
    ann = find(other, "Ingress", f"{FULLNAME}-ws")["metadata"]["annotations"]
    assert ann["traefik.ingress.kubernetes.io/router.entrypoints"] == "websecure"
    assert not any(k.startswith("nginx.ingress") for k in ann)
    assert "vernemq-toolkit/mqtt-keepalive-seconds" in ann


def test_no_ingress_by_default(default_docs):
    assert not find_all(default_docs, "Ingress")


# ---- NetworkPolicy -----------------------------------------------------------------------------------------

def _rule_ports(rule):
    return {(p["port"], p.get("endPort")) for p in rule.get("ports", [])}


def test_networkpolicy_ingress(default_docs):
    np = find(default_docs, "NetworkPolicy", FULLNAME)
    spec = np["spec"]
    assert spec["podSelector"]["matchLabels"] == SELECTOR
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    rules = spec["ingress"]
    client = [r for r in rules if _rule_ports(r) & {(1883, None)}]
    assert len(client) == 1 and "from" not in client[0]  # default: anywhere
    assert _rule_ports(client[0]) == {(1883, None), (8080, None)}
    # cluster ports only from pods of the same release
    for port in (4369, 44053):
        allowed = [r for r in rules if (port, None) in _rule_ports(r)]
        assert allowed and all(r["from"] == [{"podSelector": {"matchLabels": SELECTOR}}] for r in allowed)
    dist = [r for r in rules if (9100, 9109) in _rule_ports(r)]
    assert dist and all(r["from"] == [{"podSelector": {"matchLabels": SELECTOR}}] for r in dist)
    http = [r for r in rules if (8888, None) in _rule_ports(r)]
    sources = [f for r in http for f in r["from"]]
    assert {"podSelector": {"matchLabels": SELECTOR}} in sources
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}} in sources
    # nothing reaches a cluster port from anywhere
    for r in rules:
        if "from" not in r:
            assert not {p for p, _ in _rule_ports(r)} & (CLUSTER_PORTS | {9100})


def test_networkpolicy_egress(default_docs):
    egress = find(default_docs, "NetworkPolicy", FULLNAME)["spec"]["egress"]
    dns = [r for r in egress if {(p["port"], p["protocol"]) for p in r["ports"]} == {(53, "UDP"), (53, "TCP")}]
    assert len(dns) == 1
    api = [r for r in egress if _rule_ports(r) == {(443, None), (6443, None)}]
    assert len(api) == 1
    peers = [r for r in egress if r.get("to") == [{"podSelector": {"matchLabels": SELECTOR}}]]
    assert len(peers) == 1 and {(4369, None), (9100, 9109), (44053, None), (8888, None)} <= _rule_ports(peers[0])
    assert len(egress) == 3


def test_networkpolicy_client_sources_restrict(renderer):
    np = find(renderer.docs("11-aks-internal"), "NetworkPolicy", FULLNAME)
    client = [r for r in np["spec"]["ingress"] if (1883, None) in _rule_ports(r) and "ipBlock" in str(r)]
    assert client and client[0]["from"] == [{"ipBlock": {"cidr": "10.0.0.0/8"}}]
    # every rule that opens 1883 has a source (the helm test client is allowed by its label)
    for r in np["spec"]["ingress"]:
        if (1883, None) in _rule_ports(r):
            assert r.get("from")


def test_tls_profile_opens_only_tls_ports(renderer):
    docs = renderer.docs("40-tls")
    svc = find(docs, "Service", FULLNAME)
    assert {p["name"] for p in svc["spec"]["ports"]} == {"mqtts", "wss"}
    np = find(docs, "NetworkPolicy", FULLNAME)
    open_rule = [r for r in np["spec"]["ingress"] if "from" not in r]
    assert len(open_rule) == 1 and _rule_ports(open_rule[0]) == {(8883, None), (8443, None)}
    env = env_of(container(sts_of(docs)))
    assert env["DOCKER_VERNEMQ_LISTENER__SSL__DEFAULT"]["value"] == "$(MY_POD_IP):8883"
    assert env["DOCKER_VERNEMQ_LISTENER__WSS__DEFAULT"]["value"] == "$(MY_POD_IP):8443"
    assert env["DOCKER_VERNEMQ_LISTENER__SSL__CERTFILE"]["value"] == "/etc/ssl/vernemq/tls.crt"
    vols = {v["name"]: v for v in sts_of(docs)["spec"]["template"]["spec"]["volumes"]}
    assert vols["tls"]["secret"]["secretName"] == "vernemq-tls"


# ---- availability ------------------------------------------------------------------------------------------

def test_pdb_on_with_max_unavailable_one(default_docs):
    pdb = find(default_docs, "PodDisruptionBudget", FULLNAME)
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": SELECTOR}}


def test_anti_affinity_and_zone_spread(default_docs):
    pod = sts_of(default_docs)["spec"]["template"]["spec"]
    (pref,) = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert pref["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert pref["podAffinityTerm"]["labelSelector"]["matchLabels"] == SELECTOR
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in pod["affinity"]["podAntiAffinity"]
    (tsc,) = pod["topologySpreadConstraints"]
    assert tsc["topologyKey"] == "topology.kubernetes.io/zone" and tsc["maxSkew"] == 1
    assert tsc["whenUnsatisfiable"] == "ScheduleAnyway"


def test_probes(default_docs, renderer):
    c = container(sts_of(default_docs))
    assert c["livenessProbe"]["httpGet"] == {"path": "/health/ping", "port": "http"}
    script = c["readinessProbe"]["exec"]["command"][2]
    assert "/health/listeners" in script and "/status.json" in script and "-ge 2" in script
    # both HTTP calls together fit in the probe timeout
    timeouts = [int(t) for t in re.findall(r"curl [^|;]*?-m (\d+)", script)]
    assert len(timeouts) == 2 and sum(timeouts) < c["readinessProbe"]["timeoutSeconds"]
    one = container(sts_of(renderer.docs("00-default", sets=["replicaCount=1"])))
    assert one["readinessProbe"]["httpGet"]["path"] == "/health/listeners"
    full = container(sts_of(renderer.docs("00-default", sets=["readinessProbe.mode=fullCluster"])))
    assert full["readinessProbe"]["httpGet"]["path"] == "/health/listeners_full_cluster"


def test_termination_grace(default_docs):
    assert sts_of(default_docs)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 60


# ---- security ----------------------------------------------------------------------------------------------

def test_pod_and_container_security(default_docs):
    pod = sts_of(default_docs)["spec"]["template"]["spec"]
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 10000
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in pod["containers"] + pod["initContainers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["privileged"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
        assert c["resources"]["limits"]["memory"]


def test_writable_paths_are_volumes(default_docs):
    sts = sts_of(default_docs)
    pod = sts["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in container(sts)["volumeMounts"]}
    assert {"/vernemq/etc", "/vernemq/data", "/vernemq/log", "/tmp"} <= set(mounts)
    vols = {v["name"]: v for v in pod["volumes"]}
    for path in ("/vernemq/etc", "/vernemq/log", "/tmp"):
        assert "emptyDir" in vols[mounts[path]]
    # data is a PVC by default
    assert [t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]] == ["data"]
    # the init container seeds /vernemq/etc from the image
    (init,) = pod["initContainers"]
    assert init["image"] == container(sts)["image"]
    assert "/vernemq/etc/." in init["command"][-1]
    # ... and HOME (the cookie file, tests/chart/test_runtime_defaults.py)
    assert {m["name"] for m in init["volumeMounts"]} == {mounts["/vernemq/etc"], mounts["/vernemq/home"]}


def test_image_pinned_with_optional_digest(default_docs, renderer):
    c = container(sts_of(default_docs))
    assert re.fullmatch(r"vernemq/vernemq:2\.1\.\d+", c["image"])
    digest = "sha256:" + "a" * 64
    c2 = container(sts_of(renderer.docs("00-default", sets=[f"image.digest={digest}"])))
    assert c2["image"] == f"vernemq/vernemq:2.1.2@{digest}"


def test_eula_only_when_accepted(default_docs, renderer):
    assert "DOCKER_VERNEMQ_ACCEPT_EULA" not in env_of(container(sts_of(default_docs)))
    env = env_of(container(sts_of(renderer.docs("10-aks"))))
    assert env["DOCKER_VERNEMQ_ACCEPT_EULA"]["value"] == "yes"


def test_anonymous_off_and_netsplit_availability(default_docs):
    env = env_of(container(sts_of(default_docs)))
    assert env["DOCKER_VERNEMQ_ALLOW_ANONYMOUS"]["value"] == "off"
    for k in ("REGISTER", "PUBLISH", "SUBSCRIBE", "UNSUBSCRIBE"):
        assert env[f"DOCKER_VERNEMQ_ALLOW_{k}_DURING_NETSPLIT"]["value"] == "on"


def test_vernemq_config_map_to_env(renderer):
    docs = renderer.docs("00-default", sets=["vernemq.config.max_online_messages=5000",
                                            "vernemq.config.listener\\.tcp\\.allowed_protocol_versions=3\\,4\\,5"])
    env = env_of(container(sts_of(docs)))
    assert env["DOCKER_VERNEMQ_MAX_ONLINE_MESSAGES"]["value"] == "5000"
    assert env["DOCKER_VERNEMQ_LISTENER__TCP__ALLOWED_PROTOCOL_VERSIONS"]["value"] == "3,4,5"


# ---- secrets -----------------------------------------------------------------------------------------------

def _secret_value(docs, label):
    (s,) = [d for d in find_all(docs, "Secret") if d["metadata"]["labels"].get("vernemq-toolkit/secret") == label]
    return s, {k: base64.b64decode(v).decode() for k, v in s["data"].items()}


def test_cookie_is_random_strong_and_wired_by_secret_ref(renderer, default_docs):
    secret, data = _secret_value(default_docs, "erlang-cookie")
    cookie = data["cookie"]
    assert len(cookie) >= 32 and cookie.isalnum() and cookie != "vmq"
    assert secret["metadata"]["name"] == f"{FULLNAME}-erlang-cookie"
    env = env_of(container(sts_of(default_docs)))
    assert env["DOCKER_VERNEMQ_DISTRIBUTED_COOKIE"]["valueFrom"]["secretKeyRef"] == {
        "name": f"{FULLNAME}-erlang-cookie", "key": "cookie"}
    assert "value" not in env["DOCKER_VERNEMQ_DISTRIBUTED_COOKIE"]
    # every install (no Secret to reuse) draws a new cookie
    other = renderer.docs("00-default", cache=False)
    assert _secret_value(other, "erlang-cookie")[1]["cookie"] != cookie


def test_api_key_is_random_and_wired(default_docs):
    secret, data = _secret_value(default_docs, "api-key")
    assert len(data["api-key"]) >= 32 and data["api-key"].isalnum()
    env = env_of(container(sts_of(default_docs)))
    assert env["API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": secret["metadata"]["name"], "key": "api-key"}


def test_existing_secrets(renderer):
    docs = renderer.docs("60-existing-secrets")
    assert not find_all(docs, "Secret")
    c = container(sts_of(docs))
    env = env_of(c)
    assert env["DOCKER_VERNEMQ_DISTRIBUTED_COOKIE"]["valueFrom"]["secretKeyRef"] == {
        "name": "my-erlang-cookie", "key": "erlang-cookie"}
    assert env["API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "my-api-key", "key": "api-key"}
    assert c["envFrom"] == [{"prefix": "DOCKER_VERNEMQ_USER_", "secretRef": {"name": "vernemq-users"}}]


@pytest.mark.parametrize("profile", ["00-default", "10-aks", "20-generic-nodeport-metallb", "30-ingress-nginx",
                                     "40-tls", "50-monitoring", "60-existing-secrets"])
def test_default_cookie_never_rendered(renderer, profile):
    docs = renderer.docs(profile)
    for d in docs:
        if d["kind"] == "Secret":
            assert "vmq" not in {base64.b64decode(v).decode() for v in d["data"].values()}
        for c in d.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            cookie = env_of(c).get("DOCKER_VERNEMQ_DISTRIBUTED_COOKIE")
            assert cookie and "value" not in cookie and cookie["valueFrom"]["secretKeyRef"]["name"]
    assert not re.search(r"(?<![\w.-])vmq(?![\w.-])", renderer.text(profile))


def test_chart_sources_never_name_the_default_cookie():
    from .conftest import CHART
    for path in CHART.rglob("*"):
        if path.is_file() and path.suffix in {".yaml", ".tpl", ".txt", ".json"}:
            assert not re.search(r"(?<![\w.-])vmq(?![\w.-])", path.read_text()), path


# ---- helm test ---------------------------------------------------------------------------------------------

def test_helm_test_pod_round_trip(default_docs):
    pods = [d for d in find_all(default_docs, "Pod") if d["metadata"]["annotations"].get("helm.sh/hook") == "test"]
    (pod,) = pods
    (c,) = pod["spec"]["containers"]
    assert re.fullmatch(r"eclipse-mosquitto:\d+\.\d+\.\d+", c["image"])
    env = env_of(c)
    assert env["MQTT_HOST"]["value"] == f"{FULLNAME}.{NAMESPACE}.svc"
    assert env["MQTT_PORT"]["value"] == "1883"
    script = c["command"][-1]
    assert "mosquitto_sub" in script and "mosquitto_pub" in script
    assert re.search(r"mosquitto_sub .*-C 1 -W", script)
    assert '"$(cat "$out")" = "$payload"' in script
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["readOnlyRootFilesystem"] is True


def test_helm_test_pod_network_policy(default_docs):
    np = find(default_docs, "NetworkPolicy", f"{FULLNAME}-test")
    (pod,) = find_all(default_docs, "Pod")
    assert np["spec"]["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert np["spec"]["ingress"] == []
    to_broker = [r for r in np["spec"]["egress"] if r.get("to")]
    assert to_broker == [{"to": [{"podSelector": {"matchLabels": SELECTOR}}], "ports": [{"port": 1883, "protocol": "TCP"}]}]


def test_helm_test_credentials(renderer):
    (pod,) = [d for d in find_all(renderer.docs("60-existing-secrets"), "Pod")]
    env = env_of(pod["spec"]["containers"][0])
    assert env["MQTT_USERNAME"]["valueFrom"]["secretKeyRef"] == {"name": "vernemq-test-client", "key": "username"}
    assert env["MQTT_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "vernemq-test-client", "key": "password"}


def test_helm_test_pod_is_not_selected_as_a_broker(default_docs):
    (pod,) = [d for d in find_all(default_docs, "Pod") if d["metadata"]["annotations"].get("helm.sh/hook") == "test"]
    labels = pod["metadata"]["labels"]
    assert not SELECTOR.items() <= labels.items()
    for svc in find_all(default_docs, "Service"):
        assert not svc["spec"]["selector"].items() <= labels.items(), svc["metadata"]["name"]


def test_client_sources_annotation_mirrors_the_networkpolicy(renderer, default_docs):
    svc = find(default_docs, "Service", FULLNAME)
    assert "vernemq-toolkit/client-sources" not in svc["metadata"]["annotations"]  # anywhere
    docs = renderer.docs("11-aks-internal", sets=[
        "networkPolicy.clientSources[1].podSelector.matchLabels.app=sensor",
        "networkPolicy.clientSources[2].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=iot",
        "networkPolicy.clientSources[3].podSelector.matchLabels.a=1",
        "networkPolicy.clientSources[3].podSelector.matchLabels.b=2"])
    ann = find(docs, "Service", FULLNAME)["metadata"]["annotations"]
    # sources are separated by ';' so a selector with several labels keeps its ','
    assert ann["vernemq-toolkit/client-sources"] == f"10.0.0.0/8;{NAMESPACE}/app=sensor;iot/;{NAMESPACE}/a=1,b=2"


def test_ingress_controller_allowed_when_clients_are_restricted(renderer):
    docs = renderer.docs("30-ingress-nginx", sets=["networkPolicy.clientSources[0].ipBlock.cidr=10.0.0.0/8"])
    rules = find(docs, "NetworkPolicy", FULLNAME)["spec"]["ingress"]
    ctrl = [r for r in rules if any("namespaceSelector" in f and "podSelector" in f for f in r.get("from", []))]
    assert len(ctrl) == 1 and _rule_ports(ctrl[0]) == {(8080, None)}
    assert ctrl[0]["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
                                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}}}]
    # unrestricted clients: no separate rule needed
    rules = find(renderer.docs("30-ingress-nginx"), "NetworkPolicy", FULLNAME)["spec"]["ingress"]
    assert not [r for r in rules if any("podSelector" in f and "namespaceSelector" in f for f in r.get("from", []))]


def test_helm_test_uses_mqtts_when_plain_mqtt_is_off(renderer):
    docs = renderer.docs("40-tls")
    (pod,) = find_all(docs, "Pod")
    c = pod["spec"]["containers"][0]
    env = env_of(c)
    assert env["MQTT_PORT"]["value"] == "8883"
    assert env["MQTT_TLS_ARGS"]["value"] == "--cafile /etc/vernemq-tls/ca.crt --insecure"
    vols = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert vols["tls-ca"]["secret"] == {"secretName": "vernemq-tls", "items": [{"key": "ca.crt", "path": "ca.crt"}]}
    np = find(docs, "NetworkPolicy", f"{FULLNAME}-test")
    assert [p["port"] for r in np["spec"]["egress"] if r.get("to") for p in r["ports"]] == [8883]
