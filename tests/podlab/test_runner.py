"""The pod runner does what a kubelet does, checked on a small StatefulSet of its own (not the chart):
init containers first, kubelet-made emptyDirs, fieldRef/secretKeyRef env that never reaches a command line,
the securityContext, hostnames and the headless names, the ServiceAccount folder against the fake API
server's RBAC, probes feeding Ready back to the API, preStop before SIGTERM, SIGKILL after the grace
period, scale-down highest ordinal first, and NetworkPolicies enforced from the project's evaluator.

The image is the lab's Debian base (python3 serves the ports); real podman + runc, real nft.
"""

from __future__ import annotations

import base64
import json
import subprocess

import pytest

from tests.podlab.images import ensure_base
from tests.podlab.podman import podman
from tests.podlab.runner import PodError, PodRun

SECRET = "s3cr3t-value-for-the-runner-test"
SERVER = ("import os,signal,sys,socket,threading,time\n"
          "def term(*a):\n"
          "    if os.path.exists('/e/ignore-term'): return\n"
          "    open('/data/log','a').write('term\\n'); sys.exit(0)\n"
          "signal.signal(signal.SIGTERM, term)\n"
          "def serve(p):\n"
          "    s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('',p)); s.listen()\n"
          "    while True:\n"
          "        c,_=s.accept(); c.sendall(b'HTTP/1.0 200 OK\\r\\n\\r\\nok'); c.close()\n"
          "for p in (1883,4369,8888): threading.Thread(target=serve,args=(p,),daemon=True).start()\n"
          "while True: time.sleep(1)\n")


def manifests(replicas: int = 3, grace: int = 5) -> str:
    b64 = base64.b64encode(SECRET.encode()).decode()
    sts = {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "x"},
        "spec": {"serviceName": "x-h", "replicas": replicas, "podManagementPolicy": "Parallel",
                 "selector": {"matchLabels": {"app": "x"}},
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {}}],
                 "template": {"metadata": {"labels": {"app": "x"}}, "spec": {
                     "serviceAccountName": "sa", "terminationGracePeriodSeconds": grace,
                     "securityContext": {"runAsUser": 10000, "runAsGroup": 10000, "fsGroup": 10000,
                                         "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                     "initContainers": [{
                         "name": "seed", "image": "base",
                         "command": ["sh", "-c", "stat -c '%u %g %a' /e > /e/emptydir-stat; id -G > /e/groups"],
                         "volumeMounts": [{"name": "e", "mountPath": "/e"}],
                         "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                                             "capabilities": {"drop": ["ALL"]}}}],
                     "containers": [{
                         "name": "main", "image": "base", "command": ["python3", "-c", SERVER],
                         "env": [{"name": "MY_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                                 {"name": "MY_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                                 {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                                 {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "v"}}},
                                 {"name": "GREETING", "value": "hi-$(MY_POD_NAME)"}],
                         "readinessProbe": {"exec": {"command": ["test", "!", "-e", "/e/unready"]},
                                            "periodSeconds": 1, "failureThreshold": 1},
                         "livenessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 5},
                         "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "echo prestop >> /data/log"]}}},
                         "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                                             "capabilities": {"drop": ["ALL"]}},
                         "ports": [{"name": "mqtt", "containerPort": 1883}, {"name": "epmd", "containerPort": 4369},
                                   {"name": "http", "containerPort": 8888}],
                         "volumeMounts": [{"name": "e", "mountPath": "/e"}, {"name": "data", "mountPath": "/data"}]}],
                     "volumes": [{"name": "e", "emptyDir": {}}]}}}}
    objs = [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"v": b64}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r"},
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "r"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
         "subjects": [{"kind": "ServiceAccount", "name": "sa"}]},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np"},
         "spec": {"podSelector": {"matchLabels": {"app": "x"}}, "policyTypes": ["Ingress"],
                  "ingress": [{"ports": [{"port": 1883}]},
                              {"from": [{"podSelector": {"matchLabels": {"app": "x"}}}], "ports": [{"port": 4369}]}]}},
        sts,
    ]
    return "\n---\n".join(json.dumps(o) for o in objs)


@pytest.fixture(scope="module")
def run():
    base = ensure_base()
    r = PodRun(manifests(), namespace="lab", images={"base": base})
    try:
        r.start()
        r.wait_ready(timeout=90)
        yield r
    finally:
        r.close()


def sh(run, pod, script, **kw):
    return run.exec(pod, ["sh", "-c", script], **kw)


def test_init_container_and_the_kubelets_empty_dir(run):
    out = sh(run, "x-0", "cat /e/emptydir-stat /e/groups").stdout.split("\n")
    assert out[0] == "0 10000 2777"  # root-owned, group fsGroup, setgid, world-writable
    assert "10000" in out[1].split()


def test_env_from_fields_and_secrets_never_on_a_command_line(run):
    env = dict(line.split("=", 1) for line in sh(run, "x-1", "env").stdout.splitlines() if "=" in line)
    assert env["MY_POD_NAME"] == "x-1" and env["NS"] == "lab" and env["GREETING"] == "hi-x-1"
    assert env["MY_POD_IP"] == run.pods["x-1"].ip and env["TOKEN"] == SECRET
    host_ps = subprocess.run(["ps", "axww", "-o", "args"], capture_output=True, text=True).stdout
    assert SECRET not in host_ps
    for cname in run.pods["x-1"].containers.values():
        cfg = json.loads(podman("inspect", cname).stdout)[0]
        assert SECRET not in json.dumps([cfg.get("Args"), cfg["Config"].get("Cmd"), cfg["Config"].get("Entrypoint")])
    assert not list(run.workdir.glob(".env-*")), "env files must be gone once the container exists"


def test_security_context_read_only_root_user_and_no_caps(run):
    out = sh(run, "x-0", "id -u; id -g; touch /rootfs-write 2>&1; grep -E '^(CapEff|NoNewPrivs|Seccomp):' "
                         "/proc/self/status").stdout
    assert out.splitlines()[:2] == ["10000", "10000"]
    assert "Read-only file system" in out
    assert "CapEff:\t0000000000000000" in out and "NoNewPrivs:\t1" in out and "Seccomp:\t2" in out


def test_hostnames_and_the_service_account_folder_against_rbac(run):
    out = sh(run, "x-0", "hostname; getent hosts x-2.x-h.lab.svc.cluster.local").stdout.split()
    assert out[0] == "x-0" and out[1] == run.pods["x-2"].ip
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    curl = (f'curl -sS -o /dev/null -w "%{{http_code}} " --cacert {sa}/ca.crt -H "Authorization: Bearer $(cat {sa}/token)" '
            "https://kubernetes.default.svc.cluster.local")
    codes = sh(run, "x-0", f"cat {sa}/namespace; echo; {curl}/api/v1/namespaces/lab/pods/x-1; "
                           f"{curl}/api/v1/namespaces/lab/secrets").stdout.split()
    assert codes == ["lab", "200", "403"]


def test_readiness_is_fed_back_to_the_api(run):
    def ready(name):
        pod = run.kube.answer("GET", f"/api/v1/namespaces/lab/pods/{name}", {}, f"Bearer {run.admin_token}")[1]
        return {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Ready"]

    assert ready("x-2") == "True"
    sh(run, "x-2", "touch /e/unready")
    run_until(lambda: ready("x-2") == "False", "x-2 Ready=False after its readiness probe failed")
    sh(run, "x-2", "rm /e/unready")
    run.wait_ready(["x-2"], timeout=30)
    assert ready("x-2") == "True"


def test_network_policy_default_deny_from_the_evaluator(run):
    base = ensure_base()
    ip = run.pods["x-0"].ip
    probe = "; ".join(f"timeout 2 bash -c 'echo > /dev/tcp/{ip}/{p}' 2>/dev/null && echo {p}:open || echo {p}:closed"
                      for p in (1883, 4369, 8888))
    outside = run.run_outsider(base, ["bash", "-c", probe]).stdout.split()
    assert outside == ["1883:open", "4369:closed", "8888:closed"]
    peer = sh(run, "x-1", probe).stdout.split()
    assert peer == ["1883:open", "4369:open", "8888:closed"]


def test_delete_runs_prestop_then_sigterm_and_comes_back_with_the_same_name(run):
    first_uid = run.pods["x-1"].manifest["metadata"]["uid"]
    run.delete_pod("x-1")
    assert run.pods["x-1"].manifest["metadata"]["uid"] != first_uid
    assert (run.workdir / "pvc" / "data-x-1" / "log").read_text() == "prestop\nterm\n"
    run.wait_ready(["x-1"], timeout=60)


def test_sigkill_after_the_grace_period(run):
    pod = run.pods["x-2"]
    cname = pod.containers["main"]
    pod.spec["terminationGracePeriodSeconds"] = 2
    sh(run, "x-2", "touch /e/ignore-term")  # from now on the main process ignores SIGTERM
    run.delete_pod("x-2", recreate=False)
    assert "x-2" not in run.pods
    assert podman("container", "exists", cname, check=False).returncode != 0
    assert any("x-2: containers stopped" in e and "'main': '137'" in e for e in run.events), run.events[-5:]


def test_scale_down_goes_highest_ordinal_first(run):
    run.scale("x", 3)  # x-2 back
    run.scale("x", 1)
    deletes = [e.split()[1].rstrip(":") for e in run.events if ": deleting" in e]
    assert deletes[-2:] == ["x-2", "x-1"]
    assert sorted(run.pods) == ["x-0"]
    sts = run.kube.answer("GET", "/apis/apps/v1/namespaces/lab/statefulsets/x", {}, f"Bearer {run.admin_token}")[1]
    assert sts["spec"]["replicas"] == 1 and sts["status"]["replicas"] == 1


def test_run_as_non_root_refuses_root():
    bad = manifests(replicas=1).replace('"runAsUser": 10000', '"runAsUser": 0')
    r = PodRun(bad, namespace="lab", images={"base": ensure_base()}, enforce_netpol=False)
    try:
        r.start(create_pods=False)
        with pytest.raises(PodError, match="runAsNonRoot"):
            r.create_sts_pod("x", 0)
    finally:
        r.close()


def run_until(cond, what, timeout=30.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.3)
    raise AssertionError(f"not within {timeout:g}s: {what}")
