"""The VerneMQ-shaped image (tests/podlab/image) and the chart's runtime fixes, in real containers (podman + runc).

Containers here are started with plain `podman run`, with what a kubelet would give them: emptyDirs made as the
kubelet makes them (root-owned, group fsGroup, mode 2777), uid/gid 10000, read-only root, all capabilities
dropped, no-new-privileges. The whole-release scenarios (discovery through the API, probes, NetworkPolicies)
run through the pod runner in the other test files. Handshakes use the validators' own Erlang distribution
client (validators.erldist) against the real Erlang node in the container.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from tests.podlab import images
from tests.podlab.podman import ROOT, podman
from validators.erldist import epmd
from validators.erldist.handshake import handshake

HELM = ROOT / ".tools" / "bin" / "helm"
SHARED_VM_ARGS = ROOT.parent / "shared" / "vernemq" / "image" / "files" / "vm.args"
SECURE = ["--read-only", "--user", "10000:10000", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
RUN = secrets.token_hex(3)


@pytest.fixture(scope="module")
def image() -> str:
    return images.ensure_vernemq()


@pytest.fixture(scope="module")
def source_image() -> str:
    return images.ensure_vernemq(flavor="source")


@pytest.fixture(scope="module")
def network():
    name = f"podlab-img-{RUN}"
    podman("network", "create", name)
    yield name
    podman("network", "rm", "-f", name, check=False)


class Containers:
    """Containers and kubelet-like emptyDirs of one test; all removed at the end."""

    def __init__(self, network: str):
        self.network = network
        self.names: list[str] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="podlab-img-", dir="/var/tmp"))

    def empty_dir(self, name: str) -> Path:
        """As a kubelet makes an emptyDir for a pod with fsGroup 10000: root-owned, group 10000, mode 2777."""
        d = self.tmp / name
        d.mkdir()
        os.chown(d, 0, 10000)
        os.chmod(d, 0o2777)
        return d

    def env_file(self, env: dict[str, str]) -> Path:
        """Env goes through a 0600 file, never podman's argv (cookies and keys must not show in `ps`)."""
        f = self.tmp / f"env-{secrets.token_hex(4)}"
        f.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        os.chmod(f, 0o600)
        return f

    def run(self, image: str, *args: str, env: dict[str, str] | None = None, mounts: dict[Path, str] | None = None,
            detach: bool = True, secure: bool = True, timeout: float = 120) -> subprocess.CompletedProcess | str:
        name = f"podlab-img-{RUN}-{secrets.token_hex(3)}"
        cmd = ["run", "--name", name, "--network", self.network, "--hostname", name]
        cmd += SECURE if secure else []
        for host, path in (mounts or {}).items():
            cmd += ["-v", f"{host}:{path}"]
        if env:
            cmd += ["--env-file", str(self.env_file(env))]
        self.names.append(name)
        if detach:
            podman(*cmd, "-d", image, *args)
            return name
        return podman(*cmd, image, *args, check=False, timeout=timeout)

    def ip(self, name: str) -> str:
        out = podman("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name).stdout
        return out.strip()

    def logs(self, name: str) -> str:
        p = podman("logs", name, check=False)
        return p.stdout + p.stderr

    def exec(self, name: str, script: str, check: bool = False) -> subprocess.CompletedProcess:
        return podman("exec", name, "sh", "-c", script, check=check, timeout=120)

    def close(self) -> None:
        for n in self.names:
            podman("rm", "-f", "-v", "-t", "2", n, check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture
def boxes(network):
    c = Containers(network)
    yield c
    c.close()


def wait_for(what: str, fn, timeout: float = 60.0, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - keep polling; the last error is reported
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def dist_port(ip: str) -> int:
    """The node's distribution port, from the container's real EPMD."""
    def lookup():
        info = epmd.port_please2(ip, "VerneMQ", timeout=2)
        return info.port if info else None
    return wait_for(f"VerneMQ registered in epmd on {ip}", lookup)


def chart_pod(extra_sets: tuple[str, ...] = ()) -> dict:
    """The StatefulSet's pod template as `helm template` renders it with default values."""
    proc = subprocess.run([str(HELM), "template", "lab", str(ROOT / "charts" / "vernemq"), "--set",
                           "vernemq.acceptEula=true", *[a for s in extra_sets for a in ("--set", s)]],
                          capture_output=True, text=True, timeout=60, check=True)
    sts = next(d for d in yaml.safe_load_all(proc.stdout) if d and d["kind"] == "StatefulSet")
    return sts["spec"]["template"]["spec"]


# ------------------------------------------------------------------------------------------- the image

def test_image_builds_once_then_is_cached(image, monkeypatch):
    calls = []
    real = images.podman

    def spy(*args, **kw):
        calls.append(args[:2])
        return real(*args, **kw)

    monkeypatch.setattr(images, "podman", spy)
    assert images.ensure_vernemq() == image
    assert calls and all(c == ("image", "exists") for c in calls), calls  # nothing built the second time
    # a second tag of the same image, for upgrades: same content, its own label and image id
    r1 = images.ensure_vernemq(tag="2.1.2-r1")
    labels = json.loads(podman("image", "inspect", r1, "--format", "{{json .Labels}}").stdout)
    assert labels["io.podlab.tag"] == "2.1.2-r1"
    ids = {podman("image", "inspect", ref, "--format", "{{.Id}}").stdout.strip() for ref in (image, r1)}
    assert len(ids) == 2


def test_official_layout_and_user(image, boxes):
    script = ("id -u; id -g; echo $HOME; pwd; echo $PATH; readlink /etc/vernemq /var/lib/vernemq /var/log/vernemq; "
              "stat -c '%u:%g %n' /vernemq /vernemq/bin /vernemq/etc /vernemq/data /vernemq/log; "
              "for c in start_vernemq vmq-admin vernemq curl jq; do command -v $c; done")
    out = boxes.run(image, "sh", "-c", script, detach=False).stdout.split("\n")
    assert out[0:3] == ["10000", "10000", "/vernemq"]
    assert out[3] == "/vernemq" and out[4].startswith("/vernemq/bin:")
    assert out[5:8] == ["/vernemq/etc", "/vernemq/data", "/vernemq/log"]
    assert all(line.startswith("10000:10000 ") for line in out[8:13]), out[8:13]
    assert out[13:18] == ["/usr/sbin/start_vernemq", "/vernemq/bin/vmq-admin", "/vernemq/bin/vernemq",
                          "/usr/bin/curl", "/usr/bin/jq"]
    cfg = json.loads(podman("image", "inspect", image, "--format", "{{json .Config}}").stdout)
    assert cfg["User"] == "vernemq" and cfg["WorkingDir"] == "/vernemq" and cfg["Cmd"] == ["start_vernemq"]
    assert set(cfg["Volumes"]) == {"/vernemq/log", "/vernemq/data", "/vernemq/etc"}
    assert "DOCKER_VERNEMQ_KUBERNETES_LABEL_SELECTOR=app=vernemq" in cfg["Env"]
    vm_args = boxes.run(image, "cat", "/vernemq/etc/vm.args", detach=False).stdout
    assert vm_args == (ROOT / "tests/podlab/image/files/vm.args").read_text()
    if SHARED_VM_ARGS.is_file():  # the copy is still the official image's file
        assert vm_args == SHARED_VM_ARGS.read_text()


# ------------------------------------------------------------------------------------------- start_vernemq

def test_start_script_refuses_without_writable_vm_args(image, boxes):
    empty = boxes.empty_dir("etc-empty")
    p = boxes.run(image, env={"DOCKER_VERNEMQ_ACCEPT_EULA": "yes"}, mounts={empty: "/vernemq/etc"}, detach=False)
    assert p.returncode == 1 and "vm.args must exist, be writable and not be empty" in p.stdout + p.stderr
    ro = boxes.empty_dir("etc-ro")
    shutil.copy(ROOT / "tests/podlab/image/files/vm.args", ro / "vm.args")
    os.chmod(ro / "vm.args", 0o444)
    p = boxes.run(image, env={"DOCKER_VERNEMQ_ACCEPT_EULA": "yes"}, mounts={ro: "/vernemq/etc"}, detach=False)
    assert p.returncode == 1 and "must exist, be writable" in p.stdout + p.stderr


def test_config_check_knows_accept_eula_only_in_the_official_build(image, source_image, boxes):
    # a build from source: DOCKER_VERNEMQ_ACCEPT_EULA=yes is an unknown variable, the pod stops
    p = boxes.run(source_image, env={"DOCKER_VERNEMQ_ACCEPT_EULA": "yes"}, detach=False)
    assert p.returncode != 0
    assert "unknown variable: accept_eula" in p.stdout and "configuration error, exit" in p.stdout
    # any unknown DOCKER_VERNEMQ_* setting stops it the same way
    p = boxes.run(image, env={"DOCKER_VERNEMQ_ACCEPT_EULA": "yes", "DOCKER_VERNEMQ_NO_SUCH__SETTING": "1"},
                  detach=False)
    assert p.returncode != 0 and "unknown variable: no_such.setting" in p.stdout
    # the official build without the EULA accepted refuses too
    p = boxes.run(image, detach=False)
    assert p.returncode != 0 and "EULA" in p.stdout
    # ... and each starts when given what it knows
    for img, env in ((source_image, {}), (image, {"DOCKER_VERNEMQ_ACCEPT_EULA": "yes"})):
        name = boxes.run(img, env=env)
        dist_port(boxes.ip(name))


def test_start_script_writes_the_conf_and_edits_vm_args(image, boxes):
    etc, data, log, tmp = (boxes.empty_dir(n) for n in ("etc", "data", "log", "tmp"))
    seeded = boxes.run(image, "sh", "-c", "cp -R /vernemq/etc/. /seed/", mounts={etc: "/seed"}, detach=False)
    assert seeded.returncode == 0, seeded.stderr
    env = {"DOCKER_VERNEMQ_ACCEPT_EULA": "yes", "DOCKER_VERNEMQ_MAX_ONLINE_MESSAGES": "1000",
           "DOCKER_VERNEMQ_LISTENER__TCP__ALLOWED_PROTOCOL_VERSIONS": "3,4,5",
           "DOCKER_VERNEMQ_KUBERNETES_NAMESPACE": "ns", "DOCKER_VERNEMQ_DISCOVERY_NODE": "127.0.0.1",
           "DOCKER_VERNEMQ_USER_ALICE": "pw-" + secrets.token_hex(4), "DOCKER_VERNEMQ_ERLANG__MAX_PORTS": "300000"}
    name = boxes.run(image, env=env, mounts={etc: "/vernemq/etc", data: "/vernemq/data", log: "/vernemq/log",
                                             tmp: "/tmp"})
    ip = boxes.ip(name)
    dist_port(ip)
    conf = (etc / "vernemq.conf").read_text()
    section = conf[conf.index("########## Start ##########"):conf.index("########## End ##########")]
    lines = set(section.splitlines())
    assert {"accept_eula=yes", "max_online_messages=1000", "listener.tcp.allowed_protocol_versions=3,4,5",
            "log.console=console", "vmq_passwd.password_file = /vernemq/etc/vmq.passwd",
            f"listener.tcp.default = {ip}:1883", f"listener.ws.default = {ip}:8080",
            f"listener.vmq.clustering = {ip}:44053", f"listener.http.default = {ip}:8888",
            "erlang.distribution.port_range.minimum = 9100",
            "erlang.distribution.port_range.maximum = 9109"} <= lines, section
    for excluded in ("kubernetes", "discovery_node", "user_alice", "pw-"):
        assert excluded not in section.lower()
    assert (etc / "vmq.passwd").read_text().startswith("alice:")
    vm_args = (etc / "vm.args").read_text()
    assert f"-name VerneMQ@{ip}" in vm_args and "+Q 300000" in vm_args
    assert "-eval \"vmq_server_cmd:node_join('VerneMQ@127.0.0.1')\"" in vm_args
    assert (etc / "vm.args.bak").is_file()  # sed -i.bak, as the official script
    assert 9100 <= dist_port(ip) <= 9109  # the distribution range from the conf reached the real node


# ------------------------------------------------------------------------------------------- the cookie

def test_image_defaults_use_the_well_known_cookie_and_vmq_admin_dies_on_a_read_only_root(image, boxes):
    """What the issue measured on the real image: with vm.args' `-setcookie vmq` the node answers the
    well-known cookie, not the one in DOCKER_VERNEMQ_DISTRIBUTED_COOKIE, and vmq-admin cannot create
    $HOME/.erlang.cookie on a read-only root."""
    secret = secrets.token_urlsafe(24)
    name = boxes.run(image, env={"DOCKER_VERNEMQ_ACCEPT_EULA": "yes", "DOCKER_VERNEMQ_DISTRIBUTED_COOKIE": secret})
    ip = boxes.ip(name)
    port = dist_port(ip)
    assert handshake(ip, port, "vmq").ok
    refused = handshake(ip, port, secret)
    assert refused.outcome == "cookie_rejected", refused
    admin = boxes.exec(name, "vmq-admin cluster show")
    assert admin.returncode != 0 and "/vernemq/.erlang.cookie" in admin.stdout + admin.stderr
    assert "erofs" in admin.stdout + admin.stderr


def test_chart_seed_etc_and_cookie_on_kubelet_empty_dirs(image, boxes):
    """The chart's own seed-etc script and HOME, taken from `helm template`, on kubelet-like emptyDirs as uid
    10000 with all capabilities dropped: the node answers only the Secret's cookie, the cookie is in no argv
    and no log, and vmq-admin works on the read-only root."""
    pod = chart_pod()
    (init,) = pod["initContainers"]
    main = pod["containers"][0]
    assert init["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    home_path = next(e["value"] for e in main["env"] if e["name"] == "HOME")
    cookie = secrets.token_urlsafe(36)
    vols = {n: boxes.empty_dir(n) for n in ("etc", "home", "data", "log", "tmp")}

    # the old seed step fails on such a directory, as the issue says
    old = boxes.run(image, "sh", "-c", "cp -a /vernemq/etc/. /seed/etc/", mounts={vols["tmp"]: "/seed/etc"},
                    detach=False)
    assert old.returncode == 1 and "preserving times for '/seed/etc/.': Operation not permitted" in old.stderr

    init_mounts = {vols[m["name"]]: m["mountPath"] for m in init["volumeMounts"]}
    seeded = boxes.run(image, *init["command"], env={"ERLANG_COOKIE": cookie}, mounts=init_mounts, detach=False)
    assert seeded.returncode == 0, seeded.stderr
    assert "-setcookie" not in (vols["etc"] / "vm.args").read_text()
    cookie_file = vols["home"] / ".erlang.cookie"
    assert cookie_file.read_text() == cookie and cookie_file.stat().st_mode & 0o777 == 0o400
    assert cookie_file.stat().st_uid == 10000

    main_mounts = {vols[m["name"]]: m["mountPath"] for m in main["volumeMounts"] if m["name"] in vols}
    api_key = secrets.token_urlsafe(18)
    name = boxes.run(image, env={"HOME": home_path, "DOCKER_VERNEMQ_ACCEPT_EULA": "yes",
                                 "DOCKER_VERNEMQ_DISTRIBUTED_COOKIE": cookie, "API_KEY": api_key,
                                 "VMQLAB_API_KEY_DELAY": "1"}, mounts=main_mounts)
    ip = boxes.ip(name)
    port = dist_port(ip)
    assert handshake(ip, port, cookie).ok
    assert handshake(ip, port, "vmq").outcome == "cookie_rejected"

    admin = boxes.exec(name, "vmq-admin cluster show")
    assert admin.returncode == 0, admin.stdout + admin.stderr
    assert f"VerneMQ@{ip}" in admin.stdout and "true" in admin.stdout
    # the image's API-key step (vmq-admin under the read-only root) worked
    wait_for("the API key", lambda: boxes.exec(
        name, f"curl -fsS -H @/dev/stdin http://{ip}:8888/api/v1/cluster/show <<'EOF'\nx-api-key: {api_key}\nEOF"
    ).returncode == 0, timeout=30)

    ps = boxes.exec(name, "ps -eo args", check=True).stdout
    # erl expands -args_file into beam.smp's argv: a -setcookie in vm.args would show here
    assert "beam.smp" in ps and "-name VerneMQ@" in ps
    assert cookie not in ps and "-setcookie" not in ps
    assert cookie not in boxes.logs(name)


def test_leave_hands_sessions_over_and_removes_the_member(image, boxes):
    """`vmq-admin cluster leave node=<self> -k` (the chart's preStop on a scale-down): the node stops taking
    clients, its persistent session moves to the remaining node, it leaves the membership and stops."""
    env = {"DOCKER_VERNEMQ_ACCEPT_EULA": "yes", "DOCKER_VERNEMQ_ALLOW_ANONYMOUS": "on"}
    a = boxes.run(image, env=env, secure=False)  # vmq-admin needs a writable HOME (see the cookie tests)
    ip_a = boxes.ip(a)
    dist_port(ip_a)
    b = boxes.run(image, env={**env, "DOCKER_VERNEMQ_DISCOVERY_NODE": ip_a}, secure=False)
    ip_b = boxes.ip(b)
    dist_port(ip_b)
    wait_for("a two-node cluster", lambda: boxes.exec(a, "vmq-admin cluster show").stdout.count("true") == 2)

    cid = f"persist-{RUN}"
    sub = subprocess.run(["mosquitto_sub", "-h", ip_b, "-p", "1883", "-i", cid, "-c", "-q", "1", "-t", "lab/t",
                          "-W", "1"], capture_output=True, text=True)
    assert sub.returncode in (0, 27), sub.stderr  # 27: -W timeout, the session stays behind (clean=0)
    leave = boxes.exec(b, f"vmq-admin cluster leave node=VerneMQ@{ip_b} -k")
    assert leave.returncode == 0 and "handed over 1 persistent session(s)" in leave.stdout, leave.stdout
    shown = wait_for("b gone from the membership", lambda: (lambda s: s if f"VerneMQ@{ip_b}" not in s else None)(
        boxes.exec(a, "vmq-admin cluster show").stdout), timeout=20)
    assert f"VerneMQ@{ip_a}" in shown
    wait_for("b stopped", lambda: podman("inspect", "-f", "{{.State.Running}}", b).stdout.strip() == "false",
             timeout=30)
    # the session lives on a: a message published now is queued for it and delivered on reconnect
    subprocess.run(["mosquitto_pub", "-h", ip_a, "-p", "1883", "-t", "lab/t", "-q", "1", "-m", "kept"], check=True,
                   timeout=10)
    got = subprocess.run(["mosquitto_sub", "-h", ip_a, "-p", "1883", "-i", cid, "-c", "-q", "1", "-t", "lab/t",
                          "-C", "1", "-W", "10"], capture_output=True, text=True)
    assert got.stdout.strip() == "kept", got


def test_image_inputs_are_hashed_not_timed():
    """The stamp key covers every file of the build context, and the context holds every file the Containerfile
    copies in: changing one byte of any of them (the image's own, the stand-in's, the lab node's) changes the key."""
    files = images.build_context()
    assert {"image/start_vernemq", "image/erl/vmq_lab_node.erl", "standin/node.py", "lab/vmqlabnode.erl"} <= set(files)
    for line in (images.IMAGE_DIR / "Containerfile").read_text().splitlines():
        if line.startswith("COPY "):
            *sources, _dest = [a for a in line.split()[1:] if not a.startswith("--")]
            for src in sources:
                assert any(rel == src or rel.startswith(src.rstrip("/") + "/") for rel in files), (
                    f"the Containerfile copies {src}, which the build context (and so the cache key) lacks")
    key = images.context_key("base", "official", "t", files)
    assert images.context_key("base", "official", "t", dict(files)) == key
    tmp = Path(tempfile.mkdtemp(prefix="podlab-hash-"))
    try:
        for rel in ("image/start_vernemq", "standin/node.py", "lab/vmqlabnode.erl"):
            changed = tmp / rel
            changed.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(files[rel], changed)
            changed.write_bytes(changed.read_bytes() + b"\n")
            assert images.context_key("base", "official", "t", {**files, rel: changed}) != key, rel
    finally:
        shutil.rmtree(tmp)
    assert re.fullmatch(r"localhost/podlab/vernemq-source:2\.1\.2", images.image_ref("source"))


def test_chart_pod_survives_a_container_restart(image):
    """A container restart (crash, liveness kill) keeps the pod's emptyDirs. The image's start script edits
    vm.args in place, and on a second run its Kubernetes rename cut the earlier join line in half: the node died
    in do_boot and the container crash-looped. The chart starts every run from the seeded vm.args."""
    from tests.podlab.runner import PodRun, render

    rendered = render(ROOT / "charts" / "vernemq", "rs", "lab", set_values=[
        "replicaCount=2", "vernemq.acceptEula=true", "vernemq.allowAnonymous=true", "tests.enabled=false"])
    run = PodRun(rendered, namespace="lab", images={"vernemq/vernemq:2.1.2": image})
    try:
        run.start()
        pods = ["rs-vernemq-0", "rs-vernemq-1"]
        run.wait_ready(pods, timeout=180)
        pod = run.pods[pods[0]]
        podman("kill", pod.containers["vernemq"])
        wait_for("the restart", lambda: pod.restarts.get("vernemq", 0) >= 1, timeout=60)
        wait_for("Ready again after the restart", lambda: pod.ready and pod.restarts["vernemq"] == 1, timeout=120)
        shown = run.exec(pods[0], ["vmq-admin", "cluster", "show"])
        assert shown.returncode == 0 and shown.stdout.count("true") == 2, shown.stdout + shown.stderr
        vm_args = run.exec(pods[0], ["cat", "/vernemq/etc/vm.args"]).stdout
        assert vm_args.count("vmq_server_cmd:node_join") == 1, vm_args
    finally:
        run.close()


def test_start_script_exits_when_the_statefulset_read_is_forbidden(image):
    """With the token, the start script reads its own pod and then its StatefulSet through the API server
    (fakekube behind the pod runner, authorizing like RBAC); a Role that grants pods but not statefulsets
    makes that read a 403 and the script exits before starting the node."""
    from tests.podlab.runner import PodRun, render

    rendered = render(ROOT / "charts" / "vernemq", "nr", "lab", set_values=[
        "replicaCount=1", "vernemq.acceptEula=true", "tests.enabled=false", "rbac.create=false",
        "serviceAccount.create=false", "serviceAccount.name=pods-only"])
    rbac = [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": "pods-only", "namespace": "lab"},
             "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": "pods-only", "namespace": "lab"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pods-only"},
             "subjects": [{"kind": "ServiceAccount", "name": "pods-only", "namespace": "lab"}]}]
    run = PodRun(rendered, namespace="lab", images={"vernemq/vernemq:2.1.2": image}, existing=rbac)
    try:
        run.start()
        logs = wait_for("the start script's refusal", lambda: (lambda t: t if "Permission error" in t else None)(
            run.logs("nr-vernemq-0", "vernemq")), timeout=90)
        assert "Cannot access URL /apis/apps/v1/namespaces/lab/statefulsets/nr-vernemq" in logs
        assert "403" in logs and "Permissions ok" not in logs
        assert not run.pods["nr-vernemq-0"].ready
        paths = [p for _m, p, _q in run.kube.requests]
        assert "/api/v1/namespaces/lab/pods/nr-vernemq-0" in paths  # the pod read was allowed and done first
    finally:
        run.close()
