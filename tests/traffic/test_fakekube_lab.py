"""What the pod lab adds to tests/fakekube.py: TLS with its own CA, ServiceAccount tokens authorized by the
served Role/RoleBinding (403 otherwise), pods/exec over WebSocket (v4 and v5) and pods/proxy.

The exec backend here runs the command locally (no container needed); tests/podlab runs it in podman.
Clients are the real ones: the `kubernetes` Python client (WebSocket exec, TLS) and curl.
"""

from __future__ import annotations

import http.server
import shutil
import subprocess
import threading

import pytest

from tests.fakekube import FakeKube
from validators.collect.kubeclient import connect
from validators.transports.kubeexec import kube_exec

NS = "mqtt"
ROLE = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r", "namespace": NS},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
                  {"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": ["get"],
                   "resourceNames": ["r-vernemq"]}]}
BINDING = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
           "metadata": {"name": "r", "namespace": NS},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
           "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": NS}]}
POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p-0", "namespace": NS, "labels": {"a": "b"}},
       "status": {"podIP": "127.0.0.1"}}
STS = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "r-vernemq", "namespace": NS},
       "spec": {"replicas": 3}}
OTHER_STS = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "other", "namespace": NS},
             "spec": {"replicas": 1}}


@pytest.fixture
def kube(tmp_path):
    k = FakeKube([ROLE, BINDING, POD, STS, OTHER_STS], tls=True, san=("kubernetes.default.svc",))
    k.exec_backend = lambda ns, pod, container, argv: list(argv)
    with k:
        (tmp_path / "ca.crt").write_bytes(k.ca_pem)
        yield k


def _curl(kube, tmp_path, path, token):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    out = subprocess.run(["curl", "-sS", "--cacert", str(tmp_path / "ca.crt"), "-o", "/dev/null", "-w", "%{http_code}",
                          "-H", f"Authorization: Bearer {token}", kube.url + path],
                         capture_output=True, text=True, timeout=20)
    return out.stdout.strip()


def test_tls_and_rbac_of_a_serviceaccount_token(kube, tmp_path):
    tok = kube.sa_token(NS, "sa")
    assert _curl(kube, tmp_path, f"/api/v1/namespaces/{NS}/pods/p-0", tok) == "200"
    assert _curl(kube, tmp_path, f"/api/v1/namespaces/{NS}/pods?labelSelector=a%3Db", tok) == "200"
    assert _curl(kube, tmp_path, f"/apis/apps/v1/namespaces/{NS}/statefulsets/r-vernemq", tok) == "200"
    # resourceNames: only that StatefulSet; no list of StatefulSets; no Secrets; not another namespace
    assert _curl(kube, tmp_path, f"/apis/apps/v1/namespaces/{NS}/statefulsets/other", tok) == "403"
    assert _curl(kube, tmp_path, f"/apis/apps/v1/namespaces/{NS}/statefulsets", tok) == "403"
    assert _curl(kube, tmp_path, f"/api/v1/namespaces/{NS}/secrets", tok) == "403"
    assert _curl(kube, tmp_path, "/api/v1/namespaces/other/pods", tok) == "403"
    assert _curl(kube, tmp_path, f"/api/v1/namespaces/{NS}/pods", "not-a-token") == "401"
    # the main token may do everything
    assert _curl(kube, tmp_path, f"/api/v1/namespaces/{NS}/secrets", kube.token) == "200"
    # a wrong CA is refused by the client
    with FakeKube(tls=True) as other:
        (tmp_path / "ca.crt").write_bytes(other.ca_pem)
    assert _curl(kube, tmp_path, "/version", kube.token) == "000"


def test_exec_over_websocket_with_the_kubernetes_client(kube, tmp_path):
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    cfg = kube.write_kubeconfig(tmp_path / "kubeconfig", context="fake", namespace=NS)
    run = kube_exec(connect(str(cfg), "fake"))
    out, err = run(NS, "p-0", None, ["bash", "-s"], 'read -r x; echo "got $x"; echo oops >&2; exit 0\nhello\n', 10)
    assert out == "got hello\n" and err == "oops\n"
    # the script goes on stdin, not on the exec's command line
    paths = [p for (_m, p, _q) in kube.requests if p.endswith("/exec")]
    assert paths == [f"/api/v1/namespaces/{NS}/pods/p-0/exec"]


def test_exec_is_create_on_pods_exec(kube, tmp_path):
    cfg = kube.write_kubeconfig(tmp_path / "kubeconfig", context="fake", namespace=NS, token=kube.sa_token(NS, "sa"))
    run = kube_exec(connect(str(cfg), "fake"))
    with pytest.raises(Exception) as exc:
        run(NS, "p-0", None, ["true"], "", 10)
    assert getattr(exc.value, "status", None) == 403 or "403" in str(exc.value)


def test_pod_proxy_relays_path_query_and_key(kube, tmp_path):
    seen = []

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            seen.append((self.path, self.headers.get("x-api-key")))
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        kube.proxy_backend = lambda ns, pod, port: ("127.0.0.1", srv.server_address[1]) if pod == "p-0" else None
        k = connect(str(kube.write_kubeconfig(tmp_path / "kc", context="fake", namespace=NS)), "fake")
        body = k.get_raw(f"/api/v1/namespaces/{NS}/pods/p-0:8888/proxy/api/v1/session/show?--client_id&--limit=5")
        assert body == b'{"ok": true}'
        assert seen[0][0] == "/api/v1/session/show?--client_id&--limit=5"
    finally:
        srv.shutdown()
        srv.server_close()
