"""The stand-in produces the cluster states of capture phases 07, 09, 10, 11 and 12 live, and each live shape
matches the capture: the same JSON keys and shapes, the same relation between the numbers, and the same
findings from `vmq-validate clients` / `preflight` as the replay of that phase (tests/clients/test_replay_phases.py).

A stand-in is used here because VerneMQ cannot run in the test environment (docs/standin.md); Mosquitto behind
it is real. The netsplit runs inside a network namespace of its own, cut with an nftables table of its own.
"""

from __future__ import annotations

import base64
import functools
import json
import urllib.error
import urllib.request

import paho.mqtt.client as mqtt
import pytest

from tests.lab.fixtures import require_lab
from tests.standin.lab import StandinLab, json_shape, wait_for
from tests.standin.netns import Netns
from validators.cli import execute
from validators.vernemq.parse import parse_metrics

CAPTURES = "tests/fixtures/vernemq/2.1.2"


def _get(url, key=None):
    req = urllib.request.Request(url)
    if key:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{key}:".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def _json(url, key=None):
    return json.loads(_get(url, key)[2])


#: these states take longer to settle than a single node's answers
_wait = functools.partial(wait_for, timeout=10.0, interval=0.1)


def _capture(vmq_fixtures, rel):
    return json.loads((vmq_fixtures / rel).read_bytes())


def _offline_sessions(node, prefix, n):
    """``n`` persistent sessions (clean_session=false, QoS 1 subscription), then disconnected: offline queues."""
    for i in range(n):
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{prefix}-{i + 1}", clean_session=False,
                        protocol=mqtt.MQTTv311)
        c.connect(node.addr, node.mqtt_port, keepalive=30)
        c.loop_start()
        _wait(c.is_connected, "connected")
        c.subscribe(f"test/offline/{prefix}/{i + 1}", qos=1)
        c.disconnect()
        c.loop_stop()


def _report(lab, tmp_path, command="clients", *extra):
    targets = lab.write_targets(tmp_path / "targets.yaml")
    args = [command, "--targets", str(targets), *extra]
    if command == "clients":
        args += ["--samples", "1"]
    return lab.net(execute, args)


def _findings(report):
    return {(r.check, r.subject): r.status.value for r in report.results if r.status.value not in ("pass", "skip")}


def _one(report, check, subject):
    (r,) = [r for r in report.results if r.check == check and r.subject == subject]
    return r


def _metric(node, name):
    return parse_metrics(_get(node.http_url + "/metrics")[2]).total("vernemq_" + name)


# ----------------------------------------------------------------------------------------------------- 07 + 10

def test_ghost_member_then_restart_with_restored_sessions(tmp_path, vmq_fixtures):
    with StandinLab(nodes=3) as lab:
        lab.wait_converged()
        n1, n2, n3 = lab.nodes
        _offline_sessions(n3, "n3-offline", 3)
        _wait(lambda: _json(n1.http_url + "/status.json")[0][n3.name]["num_offline"] == 3, "node3's queues")

        # 07: node3 stopped without leave
        lab.stop(2)
        _wait(lambda: _json(n1.http_url + "/status.json")[0][n1.name]["mystatus"][0][n3.name] is False,
              "node1 to see node3 gone")
        _wait(lambda: _json(n2.http_url + "/status.json")[0][n2.name]["mystatus"][0][n3.name] is False,
              "node2 to see node3 gone")
        status = _json(n1.http_url + "/status.json")
        real = _capture(vmq_fixtures, "07_member_gone_no_leave/node1_status.json")
        assert list(status[0]) == [n1.name, n2.name], "dropped from status.json, like the capture"
        assert len(real[0]) == 2 and json_shape(status) == json_shape(real)
        assert list(status[0][n1.name]["mystatus"][0].values()).count(False) == 1
        cluster = _json(n1.http_url + "/api/v1/cluster/show", lab.api_key)
        assert cluster["table"] == [{"Node": n1.name, "Running": True}, {"Node": n2.name, "Running": True},
                                    {"Node": n3.name, "Running": False}]
        assert json_shape(cluster) == json_shape(_capture(vmq_fixtures, "07_member_gone_no_leave/node1_api_v1_cluster_show.json"))
        code, _, body = _get(n1.http_url + "/health/listeners_full_cluster")
        assert (code, body) == (503, (vmq_fixtures / "07_member_gone_no_leave/node1_health_listeners_full_cluster.json")
                                .read_bytes())
        assert _get(n1.http_url + "/health")[0] == 200
        assert (_metric(n1, "netsplit_detected"), _metric(n1, "netsplit_resolved")) == (1, 0)

        report = _report(lab, tmp_path)
        assert _findings(report) == {("CLIENTS-003", n3.name): "fail", ("CLIENTS-006", n1.name): "fail",
                                     ("CLIENTS-006", n2.name): "fail", ("CLIENTS-007", n1.name): "fail",
                                     ("CLIENTS-007", n2.name): "fail"}
        ghost = _one(report, "CLIENTS-003", n3.name)
        assert ghost.evidence["member_not_running"] is True and ghost.evidence["running_false_in"] == [n1.name, n2.name]
        assert ghost.evidence["expected"] is True and "so it should come back" in ghost.remedy
        blocked = _report(lab, tmp_path, "preflight", "--interval", "0")
        assert {(r.check, r.subject) for r in blocked.findings_at_or_above("error")} == {
            ("PREFLIGHT-001", n1.name), ("PREFLIGHT-001", n2.name), ("PREFLIGHT-001", n3.name),
            ("PREFLIGHT-001", "cluster"), ("PREFLIGHT-002", n1.name), ("PREFLIGHT-002", n2.name)}

        # 10: node3 comes back with its data: its persistent sessions are restored, its counters start at 0
        lab.start(2)
        lab.wait_converged()
        _wait(lambda: _json(n1.http_url + "/status.json")[0].get(n3.name, {}).get("num_offline") == 3,
              "node3's sessions restored")
        entry = _json(n3.http_url + "/status.json")[0][n3.name]
        assert (entry["num_online"], entry["num_offline"]) == (0, 3)
        assert (_metric(n1, "netsplit_detected"), _metric(n1, "netsplit_resolved")) == (1, 1)
        assert (_metric(n3, "netsplit_detected"), _metric(n3, "socket_open")) == (0, 0)
        assert _metric(n3, "system_wallclock") < _metric(n1, "system_wallclock")
        rows = _json(n1.http_url + "/api/v1/session/show?--client_id&--node&--is_online", lab.api_key)["table"]
        assert sorted((r["client_id"], r["node"], r["is_online"]) for r in rows) == [
            (f"n3-offline-{i}", n3.name, False) for i in (1, 2, 3)]
        report = _report(lab, tmp_path)
        assert _findings(report) == {}
        assert _one(report, "CLIENTS-006", n1.name).evidence["restarted_peers"] == [n3.name]
        assert _one(report, "CLIENTS-006", n3.name).evidence["restarted"] is True


# ----------------------------------------------------------------------------------------------------- 11

def test_upgraded_websockets_stay_and_plain_ones_close_like_cowboy(tmp_path, vmq_fixtures):
    # Cowboy's request timeout is 5 s (the default of the stand-in too); 1.5 s here keeps the test short
    with StandinLab(nodes=2, ws_request_timeout=1.5) as lab:
        lab.wait_converged()
        n1 = lab.nodes[0]
        _offline_sessions(n1, "n1-offline", 3)  # as in the capture: 3 queues on node1
        upgraded = lab.ws_upgraded_sockets(0, 4)
        plain = lab.bare_sockets(0, "ws", 3)
        try:
            entry = _json(n1.http_url + "/status.json")[0][n1.name]
            real = _capture(vmq_fixtures, "11_ws_idle_and_upgraded/t02s/node1_status.json")[0]["VerneMQ1@127.0.0.1"]
            assert (entry["num_online"], entry["num_offline"]) == (real["num_online"], real["num_offline"]) == (7, -4)
            # the metrics relation of the capture: 7 WS connections, socket_open counts the 4 upgraded ones
            # (and the 3 TCP sessions made before), socket_close the 3 TCP disconnects
            got = {k: _metric(n1, k) for k in ("active_mqttws_connections", "total_active_connections",
                                               "socket_open", "socket_close")}
            assert got == {"active_mqttws_connections": 7, "total_active_connections": 7, "socket_open": 7,
                           "socket_close": 3}
            listeners = {r["type"]: r for r in _json(n1.http_url + "/api/v1/listener/show", lab.api_key)["table"]}
            assert (listeners["mqttws"]["active_conns"], listeners["mqttws"]["all_conns"]) == (7, 7)
            first = _report(lab, tmp_path)
            kinds = {c["kind"]: c["sockets"] for c in _one(first, "CLIENTS-001", n1.name).evidence["likely_causes"]}
            assert kinds == {"ws_upgraded": 4, "ws_plain": 3}

            # the plain ones are closed by the server, the upgraded ones stay
            _wait(lambda: _json(n1.http_url + "/status.json")[0][n1.name]["num_online"] == 4, "the plain ones closed")
            assert all(s.recv(1) == b"" for s in plain), "closed by the server"
            entry = _json(n1.http_url + "/status.json")[0][n1.name]
            assert (entry["num_online"], entry["num_offline"]) == (4, -1)
            assert (_metric(n1, "socket_close"), _metric(n1, "socket_close_timeout")) == (3, 0), "not counted"
            later = _report(lab, tmp_path)
            r = _one(later, "CLIENTS-001", n1.name)
            assert {c["kind"]: c["sockets"] for c in r.evidence["likely_causes"]} == {"ws_upgraded": 4}
            assert r.remedy.startswith("Find the peers")
        finally:
            for s in upgraded + plain:
                s.close()


# ----------------------------------------------------------------------------------------------------- 12

def test_api_key_added_on_one_node_only(tmp_path, vmq_fixtures):
    with StandinLab(nodes=2, api_key_on=[]) as lab:
        lab.wait_converged()
        n1, n2 = lab.nodes
        before = "12_api_key_window/before_key_added"
        code, headers, body = _get(n1.http_url + "/api/v1/cluster/show", lab.api_key)
        real_headers = (vmq_fixtures / before / "node1_api_v1_cluster_show_KEY.headers.txt").read_text()
        assert (code, body, headers["content-length"]) == (401, b"", "0")
        assert real_headers.startswith("HTTP/1.1 401") and f"www-authenticate: {headers['www-authenticate']}" \
            in real_headers
        assert _get(n1.http_url + "/status.json")[0] == 200, "status.json needs no key"
        report = _report(lab, tmp_path)
        assert report.exit_code() == 1
        assert {_one(report, "CLIENTS-013", n).status.value for n in (n1.name, n2.name)} == {"fail"}
        assert "every node" in _one(report, "CLIENTS-002", n1.name).message

        lab.add_api_key(0)  # `vmq-admin api-key add` on node1 only
        code, _, body = _get(n1.http_url + "/api/v1/cluster/show", lab.api_key)
        real = _capture(vmq_fixtures, "12_api_key_window/after_key_added/node1_api_v1_cluster_show_KEY.json")
        assert code == 200 and json_shape(json.loads(body)) == json_shape(real)
        assert _get(n2.http_url + "/api/v1/cluster/show", lab.api_key)[0] == 401
        report = _report(lab, tmp_path)
        assert _one(report, "CLIENTS-013", n1.name).status.value == "pass"
        refused = _one(report, "CLIENTS-013", n2.name)
        assert refused.status.value == "fail" and refused.evidence["accepted_on"] == [n1.name]
        # session/show came from node1, which accepts the key: the session checks run
        assert _one(report, "CLIENTS-002", n2.name).status.value == "pass"

        lab.add_api_key(1)
        report = _report(lab, tmp_path)
        assert {r.status.value for r in report.results if r.check == "CLIENTS-013"} == {"pass"}


# ----------------------------------------------------------------------------------------------------- 09

@pytest.mark.lab
def test_netsplit_and_heal_with_nftables_in_a_namespace_of_our_own(tmp_path, vmq_fixtures):
    require_lab()
    with Netns() as ns, StandinLab(nodes=2, netns=ns) as lab:
        lab.wait_converged()
        n1, n2 = lab.nodes
        for n in lab.nodes:
            lab.net(_offline_sessions, n, f"{n.name[:8].lower()}-offline", 3)
        table = lab.split(0, 1)
        assert table.startswith("vmq_standin_split_")

        def both_cut():
            views = [lab.net(_json, n.http_url + "/status.json")[0] for n in (n1, n2)]
            return all(list(v) == [n.name] and list(v[n.name]["mystatus"][0].values()).count(False) == 1
                       for v, n in zip(views, (n1, n2))) and views
        views = _wait(both_cut, "each side to see only itself", timeout=15)
        real = _capture(vmq_fixtures, "09_netsplit_and_heal/during/node2_status.json")[0]
        assert json_shape(views[1]) == json_shape(real)
        assert views[0][n1.name]["mystatus"][0] == {n2.name: False, n1.name: True}
        assert (views[0][n1.name]["num_online"], views[0][n1.name]["num_offline"]) == (0, 3)
        code, _, body = lab.net(_get, n2.http_url + "/health/listeners_full_cluster")
        assert (code, body) == (503, (vmq_fixtures / "09_netsplit_and_heal/during/node2_health_listeners_full_cluster"
                                      ".json").read_bytes())
        assert [lab.net(_metric, n, "netsplit_detected") for n in (n1, n2)] == [1, 1]

        during = _report(lab, tmp_path)
        for me, other in ((n1, n2), (n2, n1)):
            split = _one(during, "CLIENTS-006", me.name)
            assert split.status.value == "fail" and split.evidence["sees_not_running"] == [other.name]
            assert "a network partition" in split.message
            assert _one(during, "CLIENTS-003", me.name).status.value == "skip"
            # session/show from each side: each node's sessions counted from its own side
            counted = _one(during, "CLIENTS-002", me.name)
            assert counted.status.value == "pass" and counted.evidence["sessions_from"] == me.name
            assert counted.evidence["sessions_offline"] == 3
        blocked = _report(lab, tmp_path, "preflight", "--interval", "0")
        assert {(r.check, r.subject) for r in blocked.findings_at_or_above("error")} == {
            ("PREFLIGHT-001", n1.name), ("PREFLIGHT-001", n2.name), ("PREFLIGHT-002", n1.name),
            ("PREFLIGHT-002", n2.name)}

        lab.heal()
        lab.wait_converged(timeout=15)
        _wait(lambda: [lab.net(_metric, n, "netsplit_resolved") for n in (n1, n2)] == [1, 1], "both resolved")
        healed = _report(lab, tmp_path)
        assert _findings(healed) == {("CLIENTS-006", n1.name): "warn", ("CLIENTS-006", n2.name): "warn"}
        assert healed.exit_code() == 0
        after = _report(lab, tmp_path, "preflight", "--interval", "0.2")
        assert after.findings_at_or_above("warning") == [], [r.message for r in after.findings_at_or_above("warning")]
