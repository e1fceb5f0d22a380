"""DIST-008's evidence matches what a real VerneMQ 2.1.2 node on the cookie `vmq` did (phase 13 of the capture).

The capture pinged both nodes from a plain hidden Erlang node: `pong` with `vmq`, `pang` with another cookie, and
node1 logged the refused attempt. The facts here are built from those files (node names, distribution ports,
which cookie was accepted), run through the real checks, and the finding's wording is held against the transcript.
"""

from __future__ import annotations

import re

import pytest

from validators.core.registry import catalog
from validators.core.runner import run_checks
from validators.core.model import Facts

PING = re.compile(r"^ping (?P<node>\S+) with cookie (?P<cookie>\S+): (?P<result>pong|pang)$", re.M)


@pytest.fixture(scope="module")
def phase(vmq_fixtures):
    d = vmq_fixtures / "13_default_cookie_handshake"
    pings = {}
    for f in sorted(d.glob("ping_*.txt")):
        m = PING.search(f.read_text())
        assert m, f"{f.name}: no 'ping NODE with cookie C: pong|pang' line"
        pings[(m["node"], m["cookie"])] = m["result"]
    ports = {name: int(port) for name, port in
             re.findall(r"^name (\S+) at port (\d+)$", (d / "epmd_names.txt").read_text(), re.M)}
    log = (d / "node1_log_wrong_cookie.txt").read_text()
    return pings, ports, log


def _facts(pings, ports, accepted_for):
    nodes = sorted({n for n, _c in pings})
    obs = []
    for dst in nodes:
        port = ports[dst.split("@")[0]]
        outcome = "ok" if accepted_for(dst) else "cookie_rejected"
        obs.append({"src": "validator", "dst": dst, "kind": "well_known_cookie", "cookie": "vmq", "port": port,
                    "ok": outcome == "ok", "outcome": outcome, "peer_name": dst,
                    "stage": "done" if outcome == "ok" else "recv_challenge_ack"})
    return nodes, Facts({"dist.cluster": {"nodes": nodes, "sources": ["validator"],
                                          "pairs": [["validator", n] for n in nodes], "dist_port_range": [9110, 9119],
                                          "epmd_port": 4370, "cluster_port": 44053, "transport": "direct",
                                          "cookie_given": True, "well_known_cookies": ["vmq"]},
                         "dist.observations": obs, "dist.views": {}})


def _dist_008(facts):
    return {r.subject: r for r in run_checks("distribution", [catalog()["DIST-008"]], facts).results}


def test_the_capture_is_what_the_check_describes(phase):
    pings, ports, log = phase
    assert {r for (n, c), r in pings.items() if c == "vmq"} == {"pong"}
    assert {r for (n, c), r in pings.items() if c != "vmq"} == {"pang"}
    assert set(ports) == {"VerneMQ1", "VerneMQ2"}


def test_a_node_that_pongs_on_vmq_fails_dist_008_in_the_transcripts_words(phase):
    pings, ports, _log = phase
    nodes, facts = _facts(pings, ports, lambda dst: pings[(dst, "vmq")] == "pong")
    res = _dist_008(facts)
    for node in nodes:
        r = res[node]
        assert r.status.value == "fail" and r.severity.value == "critical"
        assert r.evidence["ping"] == pings[(node, "vmq")] == "pong"
        assert f"`{pings[(node, 'vmq')]}`" in r.message and node in r.message and "'vmq'" in r.message
        assert r.evidence["port"] == ports[node.split("@")[0]]


def test_a_node_that_refuses_is_described_as_the_capture_shows_a_refusal(phase):
    """A node on another cookie refuses `vmq` as the capture's nodes refused `not_the_cookie`: `pang`, and the log
    line the pass message quotes is the one node1 wrote."""
    pings, ports, log = phase
    nodes, facts = _facts(pings, ports, lambda dst: False)
    res = _dist_008(facts)
    other = {n: r for (n, c), r in pings.items() if c != "vmq"}
    for node in nodes:
        r = res[node]
        assert r.status.value == "pass" and r.evidence["ping"] == other[node] == "pang"
        assert f"`{other[node]}`" in r.message
        quoted = re.search(r'the node logs "(.+?)"', r.message).group(1)
        pattern = re.escape(quoted).replace(re.escape("..."), "'[^']+'")
        assert re.search(pattern, log), (quoted, log)
