"""NetworkPolicy semantics, case by case from the Kubernetes NetworkPolicy documentation, and the
bitset matrix held to the per-connection evaluator by a property test."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from validators.core.errors import InputError
from validators.netpol import Endpoint, Evaluator, parse_policy
from validators.netpol.model import NS_NAME_LABEL
from validators.netpol.workloads import expand

NS = {"prod": {"env": "prod"}, "dev": {"env": "dev"}, "other": {}}


def pod(ns, name, labels, ports=None, ip=None, host_network=False):
    nsl = dict(NS.get(ns, {}))
    nsl[NS_NAME_LABEL] = ns
    import ipaddress
    return Endpoint(kind="pod", namespace=ns, name=name, labels=labels, ns_labels=nsl,
                    ip=ipaddress.ip_address(ip) if ip else None, named_ports=ports or {}, host_network=host_network)


DB = pod("prod", "db", {"app": "db", "tier": "data"}, {"pg": [(5432, "TCP")]})
WEB = pod("prod", "web", {"app": "web", "role": "frontend"}, {"http": [(8080, "TCP")]})
API = pod("prod", "api", {"app": "api"})
DEV_WEB = pod("dev", "web", {"app": "web"})
DEV_OTHER = pod("dev", "other", {"app": "other"})
X = pod("other", "x", {"app": "x"})
NODEAGENT = pod("prod", "agent", {"app": "db"}, host_network=True)
INTERNET = Endpoint.external("203.0.113.5")
TEN = Endpoint.external("10.2.3.4")
TEN_EXCEPT = Endpoint.external("10.1.2.3")
PODS = [DB, WEB, API, DEV_WEB, DEV_OTHER, X]


def np(name, ns="prod", selector=None, ingress=None, egress=None, types=None):
    spec = {"podSelector": selector if selector is not None else {}}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    if types is not None:
        spec["policyTypes"] = types
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


DB_SEL = {"matchLabels": {"app": "db"}}
DENY_IN = np("deny-in", types=["Ingress"])
DENY_OUT = np("deny-out", types=["Egress"])
FROM_WEB = np("from-web", selector=DB_SEL, ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}])
FROM_DEV_NS = np("from-dev", selector=DB_SEL, ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"env": "dev"}}}]}])
AND_PEER = np("and", selector=DB_SEL, ingress=[{"from": [
    {"namespaceSelector": {"matchLabels": {"env": "dev"}}, "podSelector": {"matchLabels": {"app": "web"}}}]}])
OR_PEERS = np("or", selector=DB_SEL, ingress=[{"from": [
    {"namespaceSelector": {"matchLabels": {"env": "dev"}}}, {"podSelector": {"matchLabels": {"app": "web"}}}]}])
ALL_NS = np("all-ns", selector=DB_SEL, ingress=[{"from": [{"namespaceSelector": {}}]}])
EXPR = np("expr", selector={"matchExpressions": [{"key": "tier", "operator": "In", "values": ["data", "cache"]}]},
          ingress=[{"from": [{"podSelector": {"matchExpressions": [
              {"key": "role", "operator": "Exists"}, {"key": "app", "operator": "NotIn", "values": ["api"]}]}}]}])
NOT_LABELLED = np("no-role", selector=DB_SEL, ingress=[{"from": [{"podSelector": {"matchExpressions": [
    {"key": "role", "operator": "DoesNotExist"}]}}]}])
IPBLOCK = np("ipblock", selector=DB_SEL, ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}])
NAMED = np("named", selector=DB_SEL, ingress=[{"ports": [{"port": "pg"}]}])
RANGE = np("range", selector=DB_SEL, ingress=[{"ports": [{"port": 9100, "endPort": 9109}]}])
UDP_ONLY = np("udp", selector=DB_SEL, ingress=[{"ports": [{"port": 53, "protocol": "UDP"}]}])
PROTO_ALL_PORTS = np("tcp-any", selector=DB_SEL, ingress=[{"ports": [{"protocol": "TCP"}]}])
ALLOW_ALL_RULE = np("allow-all", selector=DB_SEL, ingress=[{}])
EMPTY_INGRESS = np("empty-ingress", selector=DB_SEL, ingress=[], types=["Ingress"])
EGRESS_RULES_NO_TYPES = np("egress-implied", selector={"matchLabels": {"app": "web"}},
                           egress=[{"to": [{"podSelector": DB_SEL}]}])
INGRESS_ONLY_NO_TYPES = np("ingress-implied", selector={"matchLabels": {"app": "web"}}, ingress=[{}])
EGRESS_EMPTY_LIST_NO_TYPES = np("egress-empty", selector={"matchLabels": {"app": "web"}}, ingress=[{}], egress=[])
EGRESS_NAMED = np("egress-named", selector={"matchLabels": {"app": "web"}}, types=["Egress"],
                  egress=[{"ports": [{"port": "pg"}]}])
FROM_API = np("from-api", selector=DB_SEL, ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "api"}}}]}])
DEV_DENY = np("deny", ns="dev", types=["Ingress"])
# the classic: policyTypes lists Egress (copied from an example) but only ingress rules were written
EGRESS_FORGOTTEN = np("egress-forgotten", selector={"matchLabels": {"app": "web"}}, types=["Ingress", "Egress"],
                      ingress=[{}])

CASES = [
    # (doc bullet, policies, src, dst, port, proto, allowed)
    ("no policy selects a pod: open", [], WEB, DB, 5432, "TCP", True),
    ("no policy: external sources too", [], INTERNET, DB, 1, "TCP", True),
    ("default deny ingress with empty podSelector", [DENY_IN], WEB, DB, 5432, "TCP", False),
    ("empty podSelector selects only its own namespace", [DENY_IN], DEV_WEB, X, 80, "TCP", True),
    ("default deny ingress leaves egress open", [DENY_IN], DB, X, 80, "TCP", True),
    ("default deny egress", [DENY_OUT], WEB, DEV_WEB, 80, "TCP", False),
    ("default deny egress does not isolate ingress", [DENY_OUT], DEV_WEB, WEB, 80, "TCP", True),
    ("egress rules without policyTypes imply Egress", [EGRESS_RULES_NO_TYPES], WEB, X, 80, "TCP", False),
    ("... and allow what they list", [EGRESS_RULES_NO_TYPES], WEB, DB, 5432, "TCP", True),
    ("ingress-only policy without policyTypes: egress not isolated", [INGRESS_ONLY_NO_TYPES], WEB, X, 80, "TCP", True),
    ("egress: [] without policyTypes does not imply Egress", [EGRESS_EMPTY_LIST_NO_TYPES], WEB, X, 80, "TCP", True),
    ("podSelector peer: same namespace", [FROM_WEB], WEB, DB, 5432, "TCP", True),
    ("podSelector peer: not other namespaces", [FROM_WEB], DEV_WEB, DB, 5432, "TCP", False),
    ("namespaceSelector peer", [FROM_DEV_NS], DEV_OTHER, DB, 5432, "TCP", True),
    ("namespaceSelector peer excludes own namespace", [FROM_DEV_NS], WEB, DB, 5432, "TCP", False),
    ("pod+namespace in ONE peer: AND", [AND_PEER], DEV_WEB, DB, 5432, "TCP", True),
    ("one peer AND: wrong pod in right namespace", [AND_PEER], DEV_OTHER, DB, 5432, "TCP", False),
    ("one peer AND: right pod in wrong namespace", [AND_PEER], WEB, DB, 5432, "TCP", False),
    ("TWO peers: OR, any pod of the namespace", [OR_PEERS], DEV_OTHER, DB, 5432, "TCP", True),
    ("TWO peers: OR, the pod selector in the policy namespace", [OR_PEERS], WEB, DB, 5432, "TCP", True),
    ("namespaceSelector {} = every namespace", [ALL_NS], X, DB, 5432, "TCP", True),
    ("namespaceSelector {} is not outside the cluster", [ALL_NS], INTERNET, DB, 5432, "TCP", False),
    ("matchExpressions In/Exists/NotIn", [EXPR], WEB, DB, 5432, "TCP", True),
    ("matchExpressions NotIn excludes", [EXPR], API, DB, 5432, "TCP", False),
    ("matchExpressions DoesNotExist", [NOT_LABELLED], API, DB, 5432, "TCP", True),
    ("matchExpressions DoesNotExist excludes", [NOT_LABELLED], WEB, DB, 5432, "TCP", False),
    ("ipBlock cidr", [IPBLOCK], TEN, DB, 5432, "TCP", True),
    ("ipBlock except", [IPBLOCK], TEN_EXCEPT, DB, 5432, "TCP", False),
    ("ipBlock does not match a pod without a known IP", [IPBLOCK], WEB, DB, 5432, "TCP", False),
    ("ipBlock outside the cidr", [IPBLOCK], INTERNET, DB, 5432, "TCP", False),
    ("named port resolves on the destination", [NAMED], INTERNET, DB, 5432, "TCP", True),
    ("named port: other numbers denied", [NAMED], INTERNET, DB, 5433, "TCP", False),
    ("endPort range, inside", [RANGE], WEB, DB, 9105, "TCP", True),
    ("endPort range, upper bound inclusive", [RANGE], WEB, DB, 9109, "TCP", True),
    ("endPort range, outside", [RANGE], WEB, DB, 9110, "TCP", False),
    ("protocol must match (UDP rule, TCP traffic)", [UDP_ONLY], WEB, DB, 53, "TCP", False),
    ("protocol UDP", [UDP_ONLY], WEB, DB, 53, "UDP", True),
    ("port omitted: every port of the protocol", [PROTO_ALL_PORTS], INTERNET, DB, 31337, "TCP", True),
    ("port omitted: other protocols still denied", [PROTO_ALL_PORTS], INTERNET, DB, 31337, "SCTP", False),
    ("ingress: [{}] allows everything", [ALLOW_ALL_RULE], INTERNET, DB, 1, "UDP", True),
    ("ingress: [] with policyTypes Ingress denies everything", [EMPTY_INGRESS], WEB, DB, 5432, "TCP", False),
    ("policies are a union", [FROM_WEB, FROM_API], API, DB, 5432, "TCP", True),
    ("union: still denied for the rest", [FROM_WEB, FROM_API], DEV_WEB, DB, 5432, "TCP", False),
    ("both sides needed: egress denies although ingress allows", [DENY_OUT, FROM_WEB], WEB, DB, 5432, "TCP", False),
    ("both sides needed: ingress denies although egress allows", [EGRESS_RULES_NO_TYPES, DENY_IN], WEB, DB, 5432,
     "TCP", False),
    ("egress named port resolves on the destination pod", [EGRESS_NAMED], WEB, DB, 5432, "TCP", True),
    ("egress named port to an address: cannot resolve", [EGRESS_NAMED], WEB, INTERNET, 5432, "TCP", False),
    ("a policy never selects pods of another namespace", [DEV_DENY], WEB, DB, 5432, "TCP", True),
    ("hostNetwork pods are not selected", [DENY_IN], WEB, NODEAGENT, 5432, "TCP", True),
    ("egress forgotten: Egress in policyTypes without rules cuts DNS", [EGRESS_FORGOTTEN], WEB,
     pod("kube-system", "coredns", {"k8s-app": "kube-dns"}), 53, "UDP", False),
    ("egress forgotten: ingress still works", [EGRESS_FORGOTTEN], INTERNET, WEB, 8080, "TCP", True),
]


@pytest.mark.parametrize("doc,policies,src,dst,port,proto,allowed", CASES, ids=[c[0] for c in CASES])
def test_semantics(doc, policies, src, dst, port, proto, allowed):
    ev = Evaluator([parse_policy(p) for p in policies], PODS)
    verdict = ev.check(src, dst, port, proto)
    assert verdict.allowed is allowed, "\n".join([verdict.egress.explain(), verdict.ingress.explain()])


def test_verdict_names_the_deciding_policies():
    ev = Evaluator([parse_policy(p) for p in (FROM_WEB, FROM_API, DENY_OUT)], PODS)
    v = ev.check(WEB, DB, 5432)
    assert not v.allowed
    assert v.egress.selected_by == ["prod/deny-out"] and not v.egress.allowed_by
    assert v.ingress.allowed_by == ["prod/from-web (ingress[0])"]
    assert v.deciding_policies() == ["prod/deny-out", "prod/from-web"]
    assert "DENIED" in v.egress.explain() and "prod/deny-out" in v.egress.explain()


@pytest.mark.parametrize("spec,field", [
    ({"podSelector": {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]}}, "operator"),
    ({"podSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}, "values"),
    ({"podSelector": {}, "ingress": [{"from": [{}]}]}, "from[0]"),
    ({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]}, "from[0]"),
    ({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["192.168.0.0/16"]}}]}]},
     "except[0]"),
    ({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.300/8"}}]}]}, "cidr"),
    ({"podSelector": {}, "ingress": [{"ports": [{"port": "mqtt", "endPort": 9109}]}]}, "endPort"),
    ({"podSelector": {}, "ingress": [{"ports": [{"port": 9100, "endPort": 9000}]}]}, "endPort"),
    ({"podSelector": {}, "ingress": [{"ports": [{"port": 70000}]}]}, "port"),
    ({"podSelector": {}, "ingress": [{"ports": [{"port": 1, "protocol": "ICMP"}]}]}, "protocol"),
    ({"podSelector": {}, "policyTypes": ["Inbound"]}, "policyTypes"),
    ({"podSelector": {"matchLabels": {"a": 1}}}, "matchLabels.a"),
    ({}, "podSelector"),
])
def test_malformed_policies_are_input_errors_naming_the_field(spec, field):
    obj = {"kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": "prod"}, "spec": spec}
    with pytest.raises(InputError) as exc:
        parse_policy(obj, source="f.yaml document 2: ")
    assert field in exc.value.field and "f.yaml document 2" in exc.value.field and exc.value.fix


def test_workloads_expand_to_pods():
    tmpl = {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s", "namespace": "n"},
           "spec": {"replicas": 3, "template": tmpl}}
    assert [p["metadata"]["name"] for p in expand(sts)] == ["s-0", "s-1", "s-2"]
    assert expand({**sts, "spec": {"replicas": 0, "template": tmpl}}) == []
    for kind in ("Deployment", "DaemonSet", "Job"):
        (p,) = expand({"kind": kind, "metadata": {"name": "d", "namespace": "n"}, "spec": {"template": tmpl}})
        assert p["metadata"]["labels"] == {"app": "a"} and p["metadata"]["namespace"] == "n"
    cron = {"kind": "CronJob", "metadata": {"name": "c", "namespace": "n"},
            "spec": {"jobTemplate": {"spec": {"template": tmpl}}}}
    assert [p["metadata"]["name"] for p in expand(cron)] == ["c-0"]


# -- the matrix (bitsets) and the single-connection evaluator agree -------------------------------

LABELS = st.dictionaries(st.sampled_from(["app", "role", "tier"]), st.sampled_from(["a", "b", "c"]), max_size=2)
SELECTOR = st.one_of(
    st.just({}),
    LABELS.map(lambda d: {"matchLabels": d}),
    st.tuples(st.sampled_from(["app", "role"]), st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]))
    .map(lambda t: {"matchExpressions": [{"key": t[0], "operator": t[1],
                                          **({"values": ["a", "b"]} if t[1] in ("In", "NotIn") else {})}]}),
)
PEER = st.one_of(
    SELECTOR.map(lambda s: {"podSelector": s}),
    SELECTOR.map(lambda s: {"namespaceSelector": s}),
    st.tuples(SELECTOR, SELECTOR).map(lambda t: {"podSelector": t[0], "namespaceSelector": t[1]}),
    st.sampled_from(["10.0.0.0/8", "10.0.0.0/30", "0.0.0.0/0"]).map(lambda c: {"ipBlock": {"cidr": c}}),
)
PORT = st.one_of(
    st.sampled_from([80, 81, 5432]).map(lambda p: {"port": p}),
    st.just({"port": "pg"}),
    st.just({"port": 80, "endPort": 85}),
    st.just({"protocol": "UDP"}),
)
RULE = st.fixed_dictionaries({}, optional={"peers": st.lists(PEER, max_size=2), "ports": st.lists(PORT, max_size=2)})
POLICY = st.fixed_dictionaries({
    "ns": st.sampled_from(["prod", "dev"]), "sel": SELECTOR,
    "ingress": st.one_of(st.none(), st.lists(RULE, max_size=2)),
    "egress": st.one_of(st.none(), st.lists(RULE, max_size=2)),
    "types": st.one_of(st.none(), st.sampled_from([["Ingress"], ["Egress"], ["Ingress", "Egress"]])),
})
POD = st.tuples(st.sampled_from(["prod", "dev", "other"]), LABELS, st.booleans(), st.booleans())


def _rules(rules, key):
    if rules is None:
        return None
    return [{**({key: r["peers"]} if r.get("peers") else {}), **({"ports": r["ports"]} if r.get("ports") else {})}
            for r in rules]


@settings(max_examples=150, deadline=None)
@given(st.lists(POLICY, max_size=4), st.lists(POD, min_size=1, max_size=7))
def test_matrix_agrees_with_check(policies, pods):
    pols = [parse_policy(np(f"p{i}", p["ns"], p["sel"], _rules(p["ingress"], "from"), _rules(p["egress"], "to"),
                            p["types"])) for i, p in enumerate(policies)]
    eps = [pod(ns, f"p{i}", labels, {"pg": [(5432, "TCP")]} if pg else {}, ip=f"10.0.0.{i + 1}" if has_ip else None)
           for i, (ns, labels, pg, has_ip) in enumerate(pods)]
    ev = Evaluator(pols, eps)
    ports = [(80, "TCP"), (5432, "TCP"), (53, "UDP")]
    matrix = ev.matrix(ports)
    for port, proto in ports:
        for s, src in enumerate(eps):
            for d, dst in enumerate(eps):
                if s == d:
                    continue
                want = ev.check(src, dst, port, proto).allowed
                got = bool((matrix[(port, proto)][s] >> d) & 1)
                assert got == want, (src.id, dst.id, port, proto)


LABEL = st.sampled_from(["app", "tier", NS_NAME_LABEL])
VALUE = st.sampled_from(["a", "b", "mqtt"])


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(LABEL, VALUE, max_size=2),
       st.lists(st.tuples(LABEL, st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]),
                          st.lists(VALUE, max_size=2)), max_size=3),
       st.dictionaries(LABEL, VALUE, max_size=3))
def test_a_live_selector_read_leniently_matches_as_the_parsed_one(match_labels, exprs, labels):
    from validators.netpol.model import Selector, parse_selector
    raw = {"matchLabels": match_labels,
           "matchExpressions": [{"key": k, "operator": op, **({"values": v} if op in ("In", "NotIn") else {})}
                                for k, op, v in exprs if op not in ("In", "NotIn") or v]}
    assert Selector.of(raw).matches(labels) == parse_selector(raw, "t").matches(labels)


def test_a_live_selector_part_of_another_shape_constrains_nothing():
    from validators.netpol.model import Selector
    assert Selector.of({"matchLabels": "app=x", "matchExpressions": [{"key": "app", "operator": "In",
                                                                       "values": [1, {"x": 1}]}, "junk"]}) \
        .matches({"app": "1"}) is False  # a non-string value never equals a label value
    assert Selector.of(None).matches({"app": "x"}) and Selector.of({"matchExpressions": "x"}).matches({})
