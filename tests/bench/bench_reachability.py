"""NetworkPolicy reachability matrix: 500 pods x 200 policies x 5 ports (issue 3).

Measured in this same run:
  matrix   = Evaluator.matrix over every ordered pod pair and port (bitsets)
  baseline = Evaluator.check, one connection at a time, on a random sample of pairs (same answers;
             a property test in tests/traffic/test_netpol.py holds the two together), per pair
Row: check() cost per pair / matrix cost per pair, i.e. the matrix's speed-up (goal > 1: the matrix must
beat asking pair by pair); the detail gives the matrix wall time and the cost per pair.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def synthetic(n_pods: int, n_policies: int, seed: int = 7):
    sys.path.insert(0, str(ROOT))
    from validators.netpol import Endpoint, parse_policy
    from validators.netpol.model import NS_NAME_LABEL

    rnd = random.Random(seed)
    namespaces = [f"ns{i}" for i in range(10)]
    apps = [f"app{i}" for i in range(40)]
    pods = []
    for i in range(n_pods):
        ns = namespaces[i % len(namespaces)]
        pods.append(Endpoint(kind="pod", namespace=ns, name=f"pod{i}",
                             labels={"app": rnd.choice(apps), "tier": rnd.choice(["web", "db", "cache", "mq"]),
                                     **({"canary": "true"} if rnd.random() < 0.1 else {})},
                             ns_labels={NS_NAME_LABEL: ns, "team": f"t{namespaces.index(ns) % 3}"},
                             named_ports={"mqtt": [(1883, "TCP")], "metrics": [(8888, "TCP")]}))

    def sel():
        r = rnd.random()
        if r < 0.15:
            return {}
        if r < 0.7:
            return {"matchLabels": {"app": rnd.choice(apps)}}
        return {"matchExpressions": [{"key": "tier", "operator": rnd.choice(["In", "NotIn"]),
                                      "values": rnd.sample(["web", "db", "cache", "mq"], 2)}]}

    def peer():
        r = rnd.random()
        if r < 0.4:
            return {"podSelector": sel()}
        if r < 0.6:
            return {"namespaceSelector": {"matchLabels": {"team": f"t{rnd.randrange(3)}"}}}
        if r < 0.85:
            return {"namespaceSelector": {"matchLabels": {"team": f"t{rnd.randrange(3)}"}}, "podSelector": sel()}
        return {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}

    def port():
        return rnd.choice([{"port": 1883}, {"port": "mqtt"}, {"port": 9100, "endPort": 9109}, {"port": 4369},
                           {"protocol": "UDP", "port": 53}, {"port": "metrics"}])

    def rules(key):
        return [{**({key: [peer() for _ in range(rnd.randint(1, 3))]} if rnd.random() < 0.9 else {}),
                 **({"ports": [port() for _ in range(rnd.randint(1, 3))]} if rnd.random() < 0.8 else {})}
                for _ in range(rnd.randint(0, 3))]

    policies = []
    for i in range(n_policies):
        types = rnd.choice([["Ingress"], ["Egress"], ["Ingress", "Egress"]])
        spec = {"podSelector": sel(), "policyTypes": types}
        if "Ingress" in types:
            spec["ingress"] = rules("from")
        if "Egress" in types:
            spec["egress"] = rules("to")
        policies.append(parse_policy({"kind": "NetworkPolicy", "metadata": {"name": f"np{i}",
                                                                             "namespace": rnd.choice(namespaces)},
                                      "spec": spec}))
    return policies, pods


PORTS = [(1883, "TCP"), (8888, "TCP"), (4369, "TCP"), (9105, "TCP"), (53, "UDP")]


def main(argv: list[str]) -> list[dict]:
    from validators.netpol import Evaluator

    n_pods, n_pol = 500, 200
    for a in argv:
        if a.startswith("--pods="):
            n_pods = int(a.split("=", 1)[1])
        if a.startswith("--policies="):
            n_pol = int(a.split("=", 1)[1])
    policies, pods = synthetic(n_pods, n_pol)
    ev = Evaluator(policies, pods)
    t0 = time.perf_counter()
    m = ev.matrix(PORTS)
    t_matrix = time.perf_counter() - t0
    pairs = n_pods * (n_pods - 1) * len(PORTS)
    allowed = sum(bin(row).count("1") for rows in m.values() for row in rows)

    rnd = random.Random(1)
    sample = [(rnd.randrange(n_pods), rnd.randrange(n_pods), rnd.choice(PORTS)) for _ in range(4000)]
    sample = [(s, d, p) for s, d, p in sample if s != d]
    t0 = time.perf_counter()
    agree = 0
    for s, d, (port, proto) in sample:
        agree += ev.check(pods[s], pods[d], port, proto).allowed == bool((m[(port, proto)][s] >> d) & 1)
    t_check = (time.perf_counter() - t0) / len(sample)
    per_pair = t_matrix / pairs
    detail = (f"{n_pods} pods x {n_pol} policies x {len(PORTS)} ports = {pairs} pairs in {t_matrix:.2f} s "
              f"({per_pair * 1e6:.2f} us/pair, {allowed} allowed); check(): {t_check * 1e6:.1f} us/pair "
              f"(sample {len(sample)}, {agree} agree)")
    return [
        {"name": "speed-up of the matrix over check() per pair", "ratio": t_check / per_pair, "goal": "> 1",
         "unit": "x", "detail": detail},
    ]
