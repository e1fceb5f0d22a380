"""The one node HTTP client against hostile servers on loopback (tests/hostile.py; real sockets)."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.hostile import HostileServer
from validators.vernemq.http import (HttpBadBody, HttpBadStatus, HttpConnectError, HttpFailure, HttpRedirect,
                                     HttpTimeout, HttpTooLarge, JsonError, NodeHttp, host_port, loads, url)

KEY = "hostile-test-key-0123456789"


def _timed(fn):
    t0 = time.monotonic()
    try:
        fn()
    except HttpFailure as exc:
        return exc, time.monotonic() - t0
    raise AssertionError("no HttpFailure")


def test_silent_server_hits_the_deadline():
    with HostileServer("silent") as srv:
        exc, took = _timed(lambda: NodeHttp(srv.url, timeout=0.5).get("/status.json"))
    assert isinstance(exc, HttpTimeout) and "no complete answer within 0.5s" in exc.reason and srv.url in exc.reason
    assert took < 3


def test_trickle_hits_the_overall_deadline_not_a_per_recv_timeout():
    with HostileServer("trickle") as srv:
        # one byte per second never lets a 1.5 s per-recv timeout fire; the overall deadline does
        exc, took = _timed(lambda: NodeHttp(srv.url, timeout=1.5).get("/metrics"))
        assert isinstance(exc, HttpTimeout) and took < 5
        stream = NodeHttp(srv.url, timeout=1.5, stream_timeout=2.0).stream("/api/v1/session/show")
        exc, took = _timed(lambda: list(stream))
    assert isinstance(exc, HttpTimeout) and "2s" in exc.reason and took < 6


def test_endless_body_hits_the_size_cap():
    with HostileServer("endless") as srv:
        exc, _ = _timed(lambda: NodeHttp(srv.url, timeout=10, max_bytes=3 << 20).get("/status.json"))
        assert isinstance(exc, HttpTooLarge) and str(3 << 20) in exc.reason
        exc, _ = _timed(lambda: list(NodeHttp(srv.url, timeout=10, stream_max_bytes=5 << 20).stream("/x")))
        assert isinstance(exc, HttpTooLarge) and str(5 << 20) in exc.reason


def test_deeply_nested_json_is_a_bad_body():
    with pytest.raises(JsonError, match="nested too deeply"):
        loads(b"[" * 100_000)
    with HostileServer("nested") as srv:
        exc, _ = _timed(lambda: NodeHttp(srv.url, timeout=5).get_json("/status.json"))
    assert isinstance(exc, HttpBadBody) and "nested too deeply" in exc.reason


@pytest.mark.parametrize("key_header", [False, True])
def test_redirect_is_not_followed_and_the_key_goes_nowhere_else(key_header):
    with HostileServer("redirect") as srv:
        client = NodeHttp(srv.url, api_key=KEY, timeout=2, key_header=key_header)
        exc, _ = _timed(lambda: client.get_json("/api/v1/cluster/show", auth=True))
        time.sleep(0.2)
        assert isinstance(exc, HttpRedirect) and exc.status == 302
        assert exc.location_host == f"127.0.0.2:{srv.target.port}" and exc.location_host in exc.reason
        assert srv.target.requests == [] and srv.leaked_keys == []
        # the first server did get the key (it is the URL given): the header is really sent
        sent = srv.requests[0].lower()
        assert ("x-api-key: " + KEY.lower()) in sent if key_header else "authorization: basic" in sent
    assert KEY not in exc.reason and KEY not in repr(client)


def test_refused_and_bad_status_are_typed():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    exc, _ = _timed(lambda: NodeHttp(f"http://127.0.0.1:{port}", timeout=2).get("/"))
    assert isinstance(exc, HttpConnectError) and "refused" in exc.reason

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):  # noqa: N802
            body = json.dumps({"ok": self.path}).encode()
            self.send_response(401 if self.path == "/api" else 200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        client = NodeHttp(f"http://127.0.0.1:{srv.server_port}", timeout=2)
        exc, _ = _timed(lambda: client.get("/api", auth=True))
        assert isinstance(exc, HttpBadStatus) and exc.status == 401 and "401 Unauthorized" in exc.reason
        assert client.get_json("/status.json") == {"ok": "/status.json"}
        assert b"".join(client.stream("/s")) == b'{"ok": "/s"}'
        # a cap below the announced length fails before reading
        exc, _ = _timed(lambda: NodeHttp(client.base_url, max_bytes=4).get("/status.json"))
        assert isinstance(exc, HttpTooLarge)
    finally:
        srv.shutdown()
        srv.server_close()


def test_ipv6_hosts_get_brackets():
    assert host_port("fd00::1", 8888) == "[fd00::1]:8888" and host_port("[fd00::1]", 1) == "[fd00::1]:1"
    assert host_port("10.0.0.1", 8888) == "10.0.0.1:8888" and host_port("::1") == "[::1]"
    assert url("http", "fd00::1", 8888, "/x") == "http://[fd00::1]:8888/x"
    client = NodeHttp("http://[::1]:8888")
    assert client._host == "::1" and client._port == 8888


def _kube_at(url: str, timeout=(1, 1)):
    """A real kubernetes ApiClient whose API server *is* the hostile server (so pod-proxy paths reach it)."""
    from kubernetes import client

    from validators.collect.kubeclient import Kube

    cfg = client.Configuration()
    cfg.host = url
    cfg.api_key = {"authorization": "Bearer fake-token"}
    return Kube(client.ApiClient(cfg), "hostile", timeout)


def test_pod_proxy_client_keeps_the_same_rules():
    from validators.collect.clients import PodProxyHttp

    with HostileServer("redirect") as srv:
        http = PodProxyHttp(_kube_at(srv.url), "ns", "pod-0", 8888, api_key=KEY)
        exc, _ = _timed(lambda: http.get_json("/api/v1/cluster/show", auth=True))
        time.sleep(0.2)
        assert isinstance(exc, HttpRedirect) and exc.status == 302 and "redirect to 127.0.0.2" in exc.reason
        assert srv.target.requests == [] and srv.leaked_keys == []
        assert "x-api-key: " + KEY.lower() in srv.requests[0].lower()
    with HostileServer("trickle") as srv:
        http = PodProxyHttp(_kube_at(srv.url, (1, 1.5)), "ns", "pod-0", 8888)  # overall: 2.5 s
        exc, took = _timed(lambda: http.get("/metrics"))
        assert isinstance(exc, HttpTimeout) and took < 6
    with HostileServer("endless") as srv:
        http = PodProxyHttp(_kube_at(srv.url, (1, 10)), "ns", "pod-0", 8888, max_bytes=3 << 20)
        exc, _ = _timed(lambda: http.get("/status.json"))
        assert isinstance(exc, HttpTooLarge)
    with HostileServer("nested") as srv:
        exc, _ = _timed(lambda: PodProxyHttp(_kube_at(srv.url), "ns", "pod-0", 8888).get_json("/status.json"))
        assert isinstance(exc, HttpBadBody) and "nested too deeply" in exc.reason
    assert KEY not in exc.reason


def test_https_handshake_against_a_trickled_tls_record_hits_the_deadline():
    with HostileServer("tls-trickle") as srv:
        exc, took = _timed(lambda: NodeHttp(f"https://127.0.0.1:{srv.port}", timeout=1.5).get("/status.json"))
    assert isinstance(exc, HttpTimeout) and "within 1.5s" in exc.reason and took < 5


def test_https_against_a_real_tls_server(tmp_path, monkeypatch):
    """The non-blocking handshake completes: trusted CA -> the answer; untrusted -> a typed TLS failure."""
    import datetime
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"[]")

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"https://127.0.0.1:{srv.server_port}"
    try:
        exc, _ = _timed(lambda: NodeHttp(base, timeout=3).get("/status.json"))
        assert isinstance(exc, HttpConnectError) and "CERTIFICATE_VERIFY_FAILED" in exc.reason
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "c.pem"))  # OpenSSL's default trust store
        assert NodeHttp(base, timeout=3).get_json("/status.json") == []
    finally:
        srv.shutdown()
        srv.server_close()
