"""The `helm test` pod's script, run for real against a local Mosquitto broker (the pod image cannot run here)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

from .conftest import find_all


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def script(default_docs) -> str:
    (pod,) = [d for d in find_all(default_docs, "Pod") if d["metadata"]["annotations"].get("helm.sh/hook") == "test"]
    command = pod["spec"]["containers"][0]["command"]
    assert command[:2] == ["sh", "-c"]
    return command[2]


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    if not (shutil.which("mosquitto") and shutil.which("mosquitto_pub")):
        pytest.skip("mosquitto / mosquitto-clients are not installed (scripts/bootstrap.sh)")
    d = tmp_path_factory.mktemp("mosquitto")
    port = _free_port()
    conf = d / "mosquitto.conf"
    text = f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {d / 'passwd'}\n"
    if os.geteuid() == 0:
        text += "user root\n"  # else mosquitto drops to its own user, which cannot read the pytest tmp dir
    conf.write_text(text)
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(d / "passwd"), "tester", "s3cret"], check=True)
    (d / "passwd").chmod(0o600)
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 10
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("mosquitto did not start: " + proc.stderr.read().decode())
    yield port
    proc.terminate()
    proc.wait(timeout=10)


def run(script, tmp_path, port, **env):
    full = {**os.environ, "MQTT_HOST": "127.0.0.1", "MQTT_PORT": str(port), "TIMEOUT": "5", "TMPDIR": str(tmp_path),
            **env}
    return subprocess.run(["sh", "-c", script], env=full, capture_output=True, text=True, timeout=30)


def test_round_trip_succeeds(script, broker, tmp_path):
    proc = run(script, tmp_path, broker, MQTT_USERNAME="tester", MQTT_PASSWORD="s3cret")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"MQTT round trip OK via 127.0.0.1:{broker}" in proc.stdout


def test_round_trip_fails_without_credentials(script, broker, tmp_path):
    proc = run(script, tmp_path, broker)
    assert proc.returncode != 0
    assert "set tests.credentialsSecret" in proc.stdout


def test_round_trip_fails_without_broker(script, tmp_path):
    if not shutil.which("mosquitto_pub"):
        pytest.skip("mosquitto-clients are not installed")
    proc = run(script, tmp_path, _free_port())
    assert proc.returncode != 0
