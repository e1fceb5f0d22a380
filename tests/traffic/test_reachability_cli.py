"""`vmq-validate reachability`: one connection with its deciding policies, or the JSON matrix."""

from __future__ import annotations

import json

import pytest

from validators.cli import main

from .util import RELEASE

BASE = ["reachability", "-f", str(RELEASE), "-n", "mqtt"]


def run(capsys, *argv):
    code = main(BASE + list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_allowed_pod_to_pod_names_the_rules(capsys):
    code, out, _ = run(capsys, "--from", "mqtt/r-vernemq-0", "--to", "mqtt/r-vernemq-2", "--port", "9105")
    assert code == 0 and out.startswith("ALLOWED")
    assert "mqtt/r-vernemq (egress[2])" in out and "mqtt/r-vernemq (ingress[1])" in out


def test_denied_exits_1_and_says_which_policy_isolates(capsys):
    code, out, _ = run(capsys, "--from", "mqtt/sensor-gateway", "--to", "r-vernemq-1", "--port", "44053")
    assert code == 1 and out.startswith("DENIED: mqtt/sensor-gateway-0 -> mqtt/r-vernemq-1 44053/TCP")
    assert "isolated by mqtt/r-vernemq" in out


def test_external_address_and_json(capsys):
    code, out, _ = run(capsys, "--from", "198.51.100.0/24", "--to", "mqtt/r-vernemq-0", "--port", "8080/tcp",
                       "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["allowed"] is True and doc["from"] == "198.51.100.1"
    assert doc["ingress"]["allowed_by"] == ["mqtt/r-vernemq (ingress[0])"]
    code, out, _ = run(capsys, "--from", "mqtt/r-vernemq-0", "--to", "8.8.8.8", "--port", "53/UDP", "--format", "json")
    assert code == 1 and json.loads(out)["egress"]["isolated_by"] == ["mqtt/r-vernemq"]


def test_matrix_lists_every_pair_per_port(capsys):
    code, out, _ = run(capsys, "--matrix", "--port", "4369", "--port", "1883")
    doc = json.loads(out)
    assert code == 0 and doc["ports"] == ["4369/TCP", "1883/TCP"]
    epmd = doc["allowed"]["4369/TCP"]
    assert epmd["mqtt/r-vernemq-0"] == ["mqtt/r-vernemq-1", "mqtt/r-vernemq-2"]
    assert epmd["mqtt/sensor-gateway-0"] == []
    assert doc["allowed"]["1883/TCP"]["mqtt/sensor-gateway-0"] == [f"mqtt/r-vernemq-{i}" for i in range(3)]


@pytest.mark.parametrize("argv,needle", [
    (["--from", "mqtt/nope", "--to", "mqtt/r-vernemq-0", "--port", "1"], "--from"),
    (["--from", "mqtt/r-vernemq-0", "--to", "mqtt/r-vernemq-1", "--port", "http"], "--port"),
    (["--from", "mqtt/r-vernemq-0", "--to", "mqtt/r-vernemq-1"], "exactly one --port"),
    (["--matrix", "--from", "mqtt/r-vernemq-0"], "--matrix"),
])
def test_bad_arguments_exit_2(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2 and needle in err and "Fix:" in err
