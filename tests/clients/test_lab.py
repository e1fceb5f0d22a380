"""The stand-in inside the distribution lab's network namespaces: real Erlang membership, real kill.

Each lab pod runs the lab's Erlang node `VerneMQ@<addr>` (cluster/show from real Erlang state on port
8889) and a stand-in node on VerneMQ's ports (1883, 8080, 8888) that answers /api/v1/cluster/show from
that Erlang node; Mosquitto runs on the lab bridge's host address, reachable from every pod.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.request

import pytest

from tests.lab.fixtures import require_lab
from tests.standin.lab import ROOT, StandinLab, lab_standin_argv
from validators.cli import main

pytestmark = pytest.mark.lab


def _get_json(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def _wait(pred, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def cluster():
    require_lab()
    from tests.lab import Lab

    with Lab(n=2, http_port=8889) as lab:
        bridge = str(list(lab.subnet.hosts())[-1])
        with StandinLab(nodes=0, broker_addr=bridge) as broker:
            tcp, ws = broker.broker_ports
            procs = []
            for i, node in enumerate(lab.nodes):
                argv = lab_standin_argv(node, lab.nodes, f"{bridge}:{tcp}", f"{bridge}:{ws}", lab.api_key_file)
                procs.append(lab.spawn(i, argv, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
                                       log=f"standin-n{i}.log"))
            for node in lab.nodes:
                _wait(lambda: len(_get_json(f"http://{node.addr}:8888/status.json")[0]) == 2,
                      f"the stand-in on {node.name} to see both nodes")
            targets = {"cluster": {"api_key_file": str(lab.api_key_file)},
                       "nodes": [{"name": n.name, "host": n.addr, "http": f"http://{n.addr}:8888",
                                  "mqtt": f"tcp://{n.addr}:1883", "ws": f"ws://{n.addr}:8080/mqtt"}
                                 for n in lab.nodes]}
            yield lab, procs, targets


def _report(tmp_path, targets, *extra):
    import yaml

    path = tmp_path / "targets.yaml"
    path.write_text(yaml.safe_dump(targets))
    out = tmp_path / "r.json"
    code = main(["clients", "--targets", str(path), "--samples", "1", "--report-json", str(out),
                 "--format", "json", *extra])
    doc = json.loads(out.read_text())
    return code, {(r["check"], r["subject"]): r for r in doc["results"]}


def test_lab_bare_sockets_and_canaries(cluster, tmp_path, capsys):
    import socket

    lab, _procs, targets = cluster
    n0 = lab.nodes[0]
    code, res = _report(tmp_path, targets, "--canary")
    assert code == 0, [r["message"] for r in res.values() if r["status"] in ("fail", "unknown")]
    assert res[("CLIENTS-011", f"{n0.name} ws")]["evidence"]["while_connected"]["online_on"] == [n0.name]
    socks = [socket.create_connection((n0.addr, 1883), timeout=2) for _ in range(5)]
    try:
        _wait(lambda: _get_json(f"http://{n0.addr}:8888/status.json")[0][n0.name]["num_online"] == 5, "5 sockets")
        code, res = _report(tmp_path, targets)
    finally:
        for s in socks:
            s.close()
    ghost = res[("CLIENTS-001", n0.name)]
    assert code == 1 and ghost["status"] == "fail"
    assert (ghost["evidence"]["num_online"], ghost["evidence"]["num_offline"]) == (5, -5)
    assert lab.api_key not in capsys.readouterr().out


def test_lab_killed_node_seen_by_real_erlang_membership(cluster, tmp_path):
    lab, procs, targets = cluster
    n0, n1 = lab.nodes
    os.killpg(procs[1].pid, signal.SIGKILL)  # the whole "VerneMQ" of pod 1: its stand-in ...
    procs[1].wait(10)
    with lab.killed(1):                      # ... and its Erlang VM (lab waits until node 0 sees it down)
        _wait(lambda: _get_json(f"http://{n0.addr}:8888/status.json")[0][n0.name]["mystatus"][0][n1.name] is False
              and lab.cluster_view(0).get(n1.name) is False, "node 0 to see node 1 down")
        code, res = _report(tmp_path, targets)
    missing = res[("CLIENTS-003", n1.name)]
    assert code == 1 and missing["status"] == "fail"
    assert missing["evidence"]["running_false_in"] == [n0.name], "Running=false comes from the Erlang view"
    assert missing["evidence"]["missing_from_status_of"] == [n0.name]
    assert "cannot connect" in missing["evidence"]["http"]
    assert res[("CLIENTS-007", n0.name)]["status"] == "fail"
