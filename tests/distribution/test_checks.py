"""DIST checks on hand-built facts: the shapes the lab cannot easily produce, and the wiring around them."""

from __future__ import annotations

import json
import os

import pytest

from validators.collect import distribution as coll
from validators.collect.targets import parse_targets
from validators.core.errors import InputError
from validators.core.model import Facts
from validators.core.registry import catalog
from validators.core.runner import run_checks
from validators.transports import netns as netns_mod

A, B = "VerneMQ@10.0.0.1", "VerneMQ@10.0.0.2"


def spec(transport="netns", n=2, **cluster):
    raw = {"cluster": {"transport": transport, **cluster},
           "nodes": [{"name": f"VerneMQ@10.0.0.{i + 1}", "host": f"10.0.0.{i + 1}", "netns": f"ns{i}"}
                     for i in range(n)]}
    return parse_targets(raw, env={"C": "unit-cookie-1234", "K": "unit-key-5678"}, need_cookie=False)


def facts(observations, views=None, cookie=True, pairs=((A, B), (B, A)), nodes=(A, B)):
    return Facts({"dist.cluster": {"nodes": list(nodes), "sources": list(nodes), "pairs": [list(p) for p in pairs],
                                   "dist_port_range": [9100, 9109], "epmd_port": 4369, "cluster_port": 44053,
                                   "transport": "netns", "cookie_given": cookie},
                  "dist.observations": observations,
                  "dist.views": views if views is not None else {
                      A: {"ok": True, "members": [[A, True], [B, True]]},
                      B: {"ok": True, "members": [[A, True], [B, True]]}}})


def run(f):
    specs = [c for c in catalog().values() if c.category == "distribution"]
    return {(r.check, r.status.value, r.subject): r for r in run_checks("distribution", specs, f).results}


def good(src, dst, port=9100, **hs):
    return [
        {"src": src, "dst": dst, "kind": "tcp", "port_name": "cluster", "port": 44053, "ok": True},
        {"src": src, "dst": dst, "kind": "epmd_names", "ok": True, "names": [["VerneMQ", port]]},
        {"src": src, "dst": dst, "kind": "port_please", "ok": True, "found": True, "port": port, "highest": 6,
         "lowest": 5},
        {"src": src, "dst": dst, "kind": "handshake", "port": port, "ok": True, "outcome": "ok",
         "peer_name": dst, **hs},
        wk(src, dst, "cookie_rejected", port)]


def wk(src, dst, outcome, port=9100):
    """The handshake with the well-known cookie `vmq` (DIST-008), as the probe reports it."""
    return {"src": src, "dst": dst, "kind": "well_known_cookie", "cookie": "vmq", "port": port,
            "ok": outcome == "ok", "outcome": outcome, "peer_name": dst,
            "stage": "done" if outcome == "ok" else "recv_challenge_ack"}


def findings(res):
    return {k for k, r in res.items() if r.is_finding()}


def test_catalog_has_eight_documented_checks():
    ids = sorted(c.id for c in catalog().values() if c.category == "distribution")
    assert ids == [f"DIST-00{i}" for i in range(1, 9)]
    assert catalog()["DIST-008"].severity.value == "critical"
    for cid in ids:
        c = catalog()[cid]
        assert c.doc and c.remedy and c.title


def test_all_good_passes():
    res = run(facts(good(A, B) + good(B, A)))
    assert findings(res) == set() and len(res) == 2 * 4 + 2 * 4
    assert res[("DIST-008", "pass", A)].evidence["ping"] == "pang"


def test_a_source_whose_probes_failed_is_unknown_for_its_pairs_only():
    obs = good(B, A) + [{"src": A, "kind": "transport_error", "ok": False, "detail": "exec refused"}]
    res = findings(run(facts(obs)))
    assert res == ({(c, "unknown", f"{A} -> {B}") for c in ("DIST-001", "DIST-004", "DIST-005", "DIST-006")}
                   | {("DIST-008", "unknown", B)})  # B's only prober was A; A itself was tried by B


def test_handshake_outcomes_other_than_cookie():
    hs_bad = good(A, B)
    hs_bad[3] = {**hs_bad[3], "ok": False, "outcome": "status_not_allowed", "detail": "peer answered 'not_allowed'"}
    hs_bad.pop()  # the probe tries no well-known cookie after a refusal at recv_status: DIST-008 skips B
    res = run(facts(hs_bad + good(B, A)))
    assert findings(res) == {("DIST-006", "fail", f"{A} -> {B}")}
    assert "not allowed" in res[("DIST-006", "fail", f"{A} -> {B}")].remedy


def test_without_a_cookie_the_handshake_is_skipped():
    obs = [o for o in good(A, B) + good(B, A) if o["kind"] != "handshake"]
    res = run(facts(obs, cookie=False))
    assert {k[1] for k in res if k[0] == "DIST-006"} == {"skip"}
    assert {k[1] for k in res if k[0] == "DIST-004"} == {"skip"}


def test_views_missing_member_unexpected_member_and_unreadable():
    views = {A: {"ok": True, "members": [[A, True], ["VerneMQ@10.9.9.9", True]]},
             B: {"ok": False, "reason": "GET http://10.0.0.2:8888/api/v1/cluster/show: HTTP 401"}}
    res = run(facts(good(A, B) + good(B, A), views=views))
    assert findings(res) == {("DIST-007", "fail", f"{A} -> {B}"), ("DIST-007", "fail", f"{A} -> VerneMQ@10.9.9.9"),
                             ("DIST-007", "unknown", B)}
    assert res[("DIST-007", "fail", f"{A} -> {B}")].evidence["missing"] == [B]


def test_plan_pairs_for_each_transport():
    assert coll.plan(spec("direct"))[1] == [("validator", A), ("validator", B)]
    assert coll.plan(spec("netns"))[1] == [(A, B), (B, A)]
    assert coll.plan(spec("netns", n=1))[1] == [(A, A)]


def test_jobs_carry_the_secrets_only_towards_the_transport():
    s = spec("netns", cookie_env="C", api_key_env="K")
    jobs = coll.build_jobs(s, timeout=2, concurrency=3)
    assert [j["source"] for j in jobs] == [A, B]
    assert jobs[0]["targets"] == [{"name": B, "host": "10.0.0.2", "well_known": True}] and jobs[0]["netns"] == "ns0"
    assert jobs[0]["cookie"] == "unit-cookie-1234" and jobs[0]["view"]["api_key"] == "unit-key-5678"
    direct = coll.build_jobs(spec("direct", cookie_env="C"))
    assert [j["source"] for j in direct] == ["validator", A, B]  # the validator probes; each node's view


def test_the_well_known_cookies_are_tried_once_per_node_spread_over_the_sources():
    nodes = [f"VerneMQ@10.0.0.{i + 1}" for i in range(4)]
    jobs = coll.build_jobs(spec("netns", n=4, cookie_env="C"))
    tries = sorted((j["source"], t["name"]) for j in jobs for t in j["targets"] if t["well_known"])
    # each node is tried by exactly one source, the next one in the list, so every source tries one node
    assert tries == sorted((nodes[(i + 1) % 4], nodes[i]) for i in range(4))
    direct = coll.build_jobs(spec("direct", n=4, cookie_env="C"), views=False)
    assert [t["well_known"] for t in direct[0]["targets"]] == [True] * 4  # the validator is the only source
    (single,) = coll.build_jobs(spec("netns", n=1, cookie_env="C"), views=False)
    assert single["targets"] == [{"name": "VerneMQ@10.0.0.1", "host": "10.0.0.1", "well_known": True}]


class _Recorder(netns_mod.Transport):
    """A transport that answers from a table and records the jobs it was given."""

    def __init__(self, answer):
        super().__init__(4)
        self.answer, self.jobs = answer, []

    def run_one(self, job):
        self.jobs.append(job)
        return [o for t in job["targets"] for o in self.answer(job["source"], t)]


def test_a_second_round_asks_another_source_when_the_chosen_one_did_not_reach_the_challenge():
    s = spec("netns", n=3, cookie_env="C")
    n1, n2, n3 = (n.name for n in s.nodes)
    cut = {(n3, n2), (n2, n3)}  # n3 (the source chosen for n2) and n2 cannot reach each other

    def answer(src, t):
        if (src, t["name"]) in cut:
            return [{"src": src, "dst": t["name"], "kind": "handshake", "ok": False, "outcome": "connect_failed"}]
        obs = good(src, t["name"])
        return obs if t["well_known"] else obs[:-1]
    tr = _Recorder(answer)
    f = coll.collect(s, tr, views=False)
    first, second = tr.jobs[:3], tr.jobs[3:]
    assert [(j["source"], [t["name"] for t in j["targets"]]) for j in second] == [(n1, [n2])]
    wk_obs = sorted((o["src"], o["dst"]) for o in f["dist.observations"] if o["kind"] == "well_known_cookie")
    assert wk_obs == [(n1, n2), (n1, n3), (n2, n1)]  # n3 -> n2 never got there; n1 tried n2 instead
    # the second round adds only its well-known answers: one observation per (kind, src, dst) stays
    keys = [(o["kind"], o["src"], o["dst"]) for o in f["dist.observations"]]
    assert len(keys) == len(set(keys))
    res = run(Facts({**{k: f[k] for k in ("dist.cluster", "dist.observations")},
                     "dist.views": {n: {"ok": True, "members": [[m, True] for m in (n1, n2, n3)]}
                                    for n in (n1, n2, n3)}}))
    assert res[("DIST-008", "pass", n2)].evidence["refused_by"] == [n1]
    assert not coll.well_known_retry_jobs(s, f["dist.observations"])  # nothing left to ask


def test_no_second_round_when_no_source_reached_the_node():
    s = spec("netns", n=3, cookie_env="C")
    n3 = s.nodes[2].name

    def answer(src, t):
        if n3 in (src, t["name"]):
            return [{"src": src, "dst": t["name"], "kind": "handshake", "ok": False, "outcome": "connect_failed"}]
        obs = good(src, t["name"])
        return obs if t["well_known"] else obs[:-1]
    tr = _Recorder(answer)
    coll.collect(s, tr, views=False)
    # n1's chosen source (n2) answered; n2's (n3) is cut off, so n1 asks n2; nobody reached n3: no job for it
    assert [(j["source"], [t["name"] for t in j["targets"]]) for j in tr.jobs[3:]] == [(s.nodes[0].name,
                                                                                       [s.nodes[1].name])]


def test_netns_transport_starts_no_process_and_names_a_namespace_it_cannot_enter(monkeypatch):
    def no_process(*a, **kw):
        raise AssertionError("the netns transport must not start a process")
    monkeypatch.setattr(netns_mod.subprocess, "Popen", no_process)
    monkeypatch.setattr(netns_mod.subprocess, "run", no_process)
    s = spec("netns", cookie_env="C", api_key_env="K")
    jobs = coll.build_jobs(s)
    jobs[0]["netns"] = "vmq-no-such-netns-%d" % os.getpid()
    jobs[1]["netns"] = "../etc"
    obs = netns_mod.NetnsTransport().run(jobs)
    assert [o["kind"] for o in obs] == ["transport_error", "transport_error"]
    assert "vmq-no-such-netns" in obs[0]["detail"] and "not a network namespace name" in obs[1]["detail"]
    assert "unit-cookie-1234" not in json.dumps(obs)


@pytest.mark.parametrize("raw,field", [
    ({"cluster": {"transport": "kube-exec"}, "nodes": [{"name": A, "host": "10.0.0.1"}]}, "nodes[0].pod"),
    ({"cluster": {"transport": "kube-exec"}, "nodes": [{"name": A, "host": "10.0.0.1", "pod": "p"}]},
     "nodes[0].namespace"),
    ({"cluster": {"transport": "netns-shell"}, "nodes": [{"name": A, "host": "10.0.0.1"}]}, "nodes[0].netns"),
    ({"cluster": {"transport": "ssh"}, "nodes": [{"name": A, "host": "10.0.0.1"}]}, "cluster.transport"),
])
def test_targets_errors_name_the_field(raw, field):
    with pytest.raises(InputError) as e:
        parse_targets(raw, source="t.yaml", env={}, need_cookie=False)
    assert e.value.field == f"t.yaml: {field}"


def test_cli_input_errors_are_messages_not_tracebacks(tmp_path, capsys):
    from validators.cli import main
    p = tmp_path / "t.yaml"
    p.write_text("cluster: {cookie_env: NOPE_NOT_SET}\nnodes: [{name: VerneMQ@10.0.0.1, host: 10.0.0.1}]\n")
    assert main(["distribution", "--targets", str(p)]) == 2
    err = capsys.readouterr().err
    assert "NOPE_NOT_SET" in err and "Traceback" not in err
    assert main(["distribution", "--targets", str(p), "--timeout", "0"]) == 2
    assert "--timeout" in capsys.readouterr().err


def test_without_a_cookie_the_pods_own_cookie_results_still_count():
    """kube-exec without a readable Secret: the script used each pod's own cookie."""
    obs = good(A, B, detail="challenge_ack received (not verified: the pod's own cookie was used)") + good(B, A)
    obs[-2] = {**obs[-2], "ok": False, "outcome": "cookie_rejected", "stage": "recv_challenge_ack"}
    res = run(facts(obs, cookie=False))
    assert findings(res) == {("DIST-006", "fail", f"{B} -> {A}")}
    assert "own cookie" in res[("DIST-006", "fail", f"{B} -> {A}")].message
    assert "not verified" in res[("DIST-006", "pass", f"{A} -> {B}")].message


def test_a_node_that_accepts_the_well_known_cookie_fails_critical_naming_it_whatever_the_configured_cookie():
    """B runs on `vmq` (the image's vm.args), the configured cookie is the Secret's: DIST-006 says why, and
    DIST-008 fails for B only, at severity critical; the report names `vmq` but never the configured cookie."""
    from validators.core import redact
    from validators.report import json_report
    s_ = spec("netns", cookie_env="C")  # registers the configured cookie with the redactor
    obs = good(B, A) + good(A, B)
    obs[-2] = {**obs[-2], "ok": False, "outcome": "cookie_rejected", "stage": "recv_challenge_ack"}  # A -> B
    obs[-1] = wk(A, B, "ok")
    report = run_checks("distribution", [c for c in catalog().values() if c.category == "distribution"], facts(obs))
    res = {(r.check, r.status.value, r.subject): r for r in report.results}
    assert findings(res) == {("DIST-006", "fail", f"{A} -> {B}"), ("DIST-008", "fail", B)}
    r = res[("DIST-008", "fail", B)]
    assert r.severity.value == "critical" and B in r.message and "'vmq'" in r.message and "pong" in r.message
    assert r.evidence["accepted_by"] == [A] and r.evidence["cookies_accepted"] == ["vmq"]
    assert "-setcookie" in r.remedy and "erlangCookie.existingSecret" in r.remedy
    assert "DOCKER_VERNEMQ_DISTRIBUTED_COOKIE" in r.remedy
    d6 = res[("DIST-006", "fail", f"{A} -> {B}")]
    assert "well-known cookie 'vmq'" in d6.message and "DIST-008" in d6.message and d6.remedy == r.remedy
    assert res[("DIST-008", "pass", A)].evidence["refused_by"] == [B]
    out = json_report.render(report)
    assert "vmq" in out and s_.cookie.reveal() not in out and "unit-cookie-1234" not in out
    assert report.exit_code("critical") == 1
    redact.clear()


def test_the_well_known_cookie_is_named_even_when_it_is_the_configured_one():
    from validators.core import redact
    from validators.report import text
    redact.register("vmq")
    redact.register("vmqvmq-but-secret")  # a real secret that merely starts like it is still masked
    obs = good(A, B) + good(B, A)
    obs[4], obs[9] = wk(A, B, "ok"), wk(B, A, "ok")
    report = run_checks("distribution", [c for c in catalog().values() if c.category == "distribution"], facts(obs))
    out = redact.scrub(text.render(report) + " vmqvmq-but-secret")
    assert "accepts the well-known cookie 'vmq'" in out and "vmqvmq-but-secret" not in out
    redact.clear()


def test_well_known_cookie_unfinished_or_not_reached():
    obs = good(A, B) + good(B, A)
    obs[4] = {**wk(A, B, "timeout"), "stage": "recv_challenge_ack"}
    obs = [o for o in obs if not (o["kind"] == "well_known_cookie" and o["dst"] == A)]
    res = run(facts(obs))
    assert findings(res) == {("DIST-008", "unknown", B)}
    assert "timeout" in res[("DIST-008", "unknown", B)].message
    assert "not tried" in res[("DIST-008", "skip", A)].message


def test_explain_dist_008_says_how_the_image_takes_its_cookie(capsys):
    from validators.cli import main
    assert main(["explain", "DIST-008"]) == 0
    out = capsys.readouterr().out
    assert "severity: critical" in out and "-setcookie" in out and "distributed_cookie" in out
    assert "erlangCookie.existingSecret" in out and "pong" in out
    assert main(["checks"]) == 0 and "DIST-008" in capsys.readouterr().out
