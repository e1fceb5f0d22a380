"""The validators image builds from a local base, runs as non-root with a read-only root filesystem, has no
compilers (and no pip) in its final stage, and runs `vmq-validate --version` and one `watch` run in it.

The watch run reaches a replayed 20-node cluster (captured VerneMQ 2.1.2 answers, tests/watch/replay.py)
on the host's loopback (--network host)."""

from __future__ import annotations

import json
import secrets
import socket

import pytest

from tests.image.validator_image import ensure_validator_image
from tests.podlab.podman import podman

SECURE = ["--read-only", "--cap-drop=ALL", "--security-opt", "no-new-privileges"]


@pytest.fixture(scope="module")
def image():
    return ensure_validator_image()


def run(image, *args, entrypoint=None, network="none", extra=()):
    argv = ["run", "--rm", "--name", f"vmqv-{secrets.token_hex(4)}", *SECURE, "--network", network, *extra]
    if entrypoint:
        argv += ["--entrypoint", entrypoint]
    return podman(*argv, image, *args, check=False, timeout=120)


def test_second_build_is_cached(image):
    assert ensure_validator_image() == image


def test_version_as_non_root_on_a_read_only_root(image):
    from validators import __version__

    proc = run(image, "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"vmq-validate {__version__}"
    cfg = json.loads(podman("image", "inspect", image).stdout)[0]["Config"]
    assert cfg["User"] == "10001:10001" and cfg["Entrypoint"] == ["vmq-validate"]
    proc = run(image, "-c", "id -u; id -g; touch /probe 2>/dev/null && echo writable || echo read-only",
               entrypoint="/bin/sh")
    assert proc.stdout.split() == ["10001", "10001", "read-only"], proc.stdout + proc.stderr


def test_no_compilers_and_no_pip_in_the_final_stage(image):
    proc = run(image, "-c", "for t in gcc cc c++ g++ clang make pip pip3; do command -v $t; done; "
               "ls /opt/vmq-validators/lib/python3*/site-packages | grep -i '^pip' || true", entrypoint="/bin/sh")
    assert proc.returncode == 0 and proc.stdout.strip() == "", proc.stdout


def test_one_watch_run_in_the_image(image, tmp_path):
    from tests.watch.replay import ReplayCluster

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with ReplayCluster(20) as rc:
        targets = rc.targets()
        targets["cluster"]["api_key_file"] = "/cfg/api-key"
        (tmp_path / "api-key").write_text(rc.api_key)
        (tmp_path / "api-key").chmod(0o644)
        import yaml
        (tmp_path / "targets.yaml").write_text(yaml.safe_dump(targets))
        (tmp_path / "targets.yaml").chmod(0o644)
        tmp_path.chmod(0o755)  # the container's user 10001 reads them through the bind mount
        proc = run(image, "watch", "--targets", "/cfg/targets.yaml", "--commands", "clients,preflight",
                   "--clients-args", "--samples 1", "--preflight-args", "--interval 0", "--cycles", "1",
                   "--listen", f"127.0.0.1:{port}", network="host", extra=["-v", f"{tmp_path}:/cfg:ro,Z"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "clients,preflight every 60s" in proc.stderr and "error" not in proc.stderr
    assert rc.api_key not in proc.stdout + proc.stderr
