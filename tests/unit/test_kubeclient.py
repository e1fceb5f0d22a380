"""kubeclient: explicit contexts only, and every API failure becomes a reason a person can act on."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from tests.fakekube import FakeKube
from validators.collect.kubeclient import connect, fetch
from validators.core.errors import InputError
from validators.core.model import Unavailable

NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "vmq"}}


def test_no_context_is_refused_never_the_current_one(tmp_path):
    with FakeKube([NS]) as kube:
        cfg = kube.write_kubeconfig(tmp_path / "kc", context="fake")
        with pytest.raises(InputError, match="--context"):
            connect(str(cfg), None)
        with pytest.raises(InputError, match="not in the kubeconfig"):
            connect(str(cfg), "other")


def test_get_json_reads_the_real_shape(tmp_path):
    with FakeKube([NS]) as kube:
        k = connect(str(kube.write_kubeconfig(tmp_path / "kc", context="fake")), "fake")
        doc = k.get_json("/api/v1/namespaces")
        assert [i["metadata"]["name"] for i in doc["items"]] == ["vmq"]


@pytest.mark.parametrize("fault, needle", [
    ({"status": 403}, "403 Forbidden"),
    ({"status": 500}, "HTTP 500"),
    ({"malformed": True}, "unexpected shape"),
    ({"delay": 3}, "did not answer in time"),
])
def test_faults_become_unavailable_with_reason(tmp_path, fault, needle):
    with FakeKube([NS]) as kube:
        k = connect(str(kube.write_kubeconfig(tmp_path / "kc", context="fake")), "fake", timeout=(1, 1))
        kube.fault("/api/v1/namespaces", **fault)
        got = fetch("namespaces", lambda: k.get_json("/api/v1/namespaces"))
        assert isinstance(got, Unavailable) and needle in got.reason, got


def test_wrong_token_is_401(tmp_path):
    with FakeKube([NS], token="right") as kube:
        k = connect(str(kube.write_kubeconfig(tmp_path / "kc", context="fake", token="wrong")), "fake")
        got = fetch("namespaces", lambda: k.get_json("/api/v1/namespaces"))
        assert isinstance(got, Unavailable) and "401" in got.reason


def test_connection_refused_is_not_called_a_timeout(tmp_path):
    with FakeKube([NS]) as kube:
        cfg = kube.write_kubeconfig(tmp_path / "kc", context="fake")
    # the server is stopped now; find a port nobody listens on and point the kubeconfig at it
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    text = re.sub(r"http://127\.0\.0\.1:\d+", f"http://127.0.0.1:{port}", Path(cfg).read_text())
    (tmp_path / "kc2").write_text(text)
    k = connect(str(tmp_path / "kc2"), "fake", timeout=(2, 2))
    got = fetch("namespaces", lambda: k.get_json("/api/v1/namespaces"))
    assert isinstance(got, Unavailable) and "cannot reach the API server" in got.reason, got
