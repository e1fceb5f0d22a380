"""The chart's pods, run as a kubelet would run them (tests/podlab/runner.py), with the API server of
tests/fakekube.py over TLS and the NetworkPolicies enforced (nft in each pod's network namespace).

The scenarios of docs/podlab.md, in this order on one release with default values (plus a users Secret so
MQTT clients can log in, since anonymous access is off by default), then the aks profile:

1. three pods Ready, one cluster through Kubernetes discovery, every status.json lists all three,
   `vmq-admin` works in every pod;
2. the nodes run with the Secret's cookie: a handshake with `vmq` is refused (and one with the Secret's
   cookie accepted); the cookie is not in the manifest, in any container's args, logs, or `ps`;
3. the API key works once a pod is Ready (bound: API_KEY_BOUND seconds after Ready), and Ready never flaps;
4. `vmq-validate distribution` (kube-exec through the fake API server into `podman exec`), `clients
   --canary` against the pod IPs and `preflight` report clean;
7. with the NetworkPolicies enforced: a container outside the release cannot reach 4369, 9100-9109,
   44053, 8888 and can reach 1883 and 8080;
8. the helm-test pod's publish/subscribe round trip passes;
5. a deleted pod comes back with the same name, rejoins, and its persistent session is still there;
9. the upgrade order of playbooks/upgrade.yml (partition = replicas, then replicas-1 .. 0, validating
   between pods) from one image tag to a second tag of the same image loses no session. The Ansible path
   cannot drive this runner (helm upgrade needs an API server that accepts writes; the fake one serves
   reads), so the runner applies the same partitions in the same order;
6. scale 3 -> 2 leaves no ghost member and loses no persistent session; with the leave hook disabled
   (the only difference of that render, asserted) the validators report the ghost.

Stand-ins: the VerneMQ-shaped image of tests/podlab/images.py (a real Erlang node + the VerneMQ stand-in,
docs/standin.md) and a Debian image with the Mosquitto clients for the helm test's eclipse-mosquitto.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml

from tests.fakekube import objects_from_yaml
from tests.podlab.clientimage import ensure_mqtt_clients
from tests.podlab.images import ensure_vernemq
from tests.podlab.podman import podman
from tests.podlab.runner import PodRun, render
from validators.erldist import epmd
from validators.erldist.handshake import handshake
from validators.netpol.evaluate import Evaluator
from validators.netpol.model import Endpoint, pod_endpoint
from validators.vernemq.parse import parse_status_json

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "vernemq"
AKS = CHART / "ci" / "10-aks-values.yaml"
NS = "mqtt"
REL = "r"
STS = f"{REL}-vernemq"
PODS = [f"{STS}-{i}" for i in range(3)]
#: seconds after a pod is Ready within which its API key must work (docs/podlab.md, values.yaml)
API_KEY_BOUND = 30
READY_TIMEOUT = 240
USER, PASSWORD = "podlab", "podlab-user-password-7f3a"
SECOND_TAG = "2.1.2-podlab2"
EXISTING = [
    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "mqtt-users", "namespace": NS},
     "data": {USER: base64.b64encode(PASSWORD.encode()).decode()}},
    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "mqtt-test-client", "namespace": NS},
     "data": {"username": base64.b64encode(USER.encode()).decode(),
              "password": base64.b64encode(PASSWORD.encode()).decode()}},
]
SET = ["vernemq.usersExistingSecret=mqtt-users", "tests.credentialsSecret=mqtt-test-client"]


# ---------------------------------------------------------------------------------------------
# helpers


def sts_of(rendered: str) -> dict:
    return next(o for o in objects_from_yaml(rendered) if o.get("kind") == "StatefulSet")


def images_for(rendered: str) -> dict[str, str]:
    """Every image the render names -> the lab image standing in for it (the official flavour when the
    render accepts the EULA, else the source-built one; the tag is kept)."""
    out = {}
    sts = sts_of(rendered)
    env = [e.get("name") for c in sts["spec"]["template"]["spec"]["containers"] for e in c.get("env") or []]
    flavor = "official" if "DOCKER_VERNEMQ_ACCEPT_EULA" in env else "source"
    for o in objects_from_yaml(rendered):
        spec = (o.get("spec") or {}).get("template", {}).get("spec") if o.get("kind") == "StatefulSet" else o.get("spec")
        if o.get("kind") not in ("StatefulSet", "Pod") or not spec:
            continue
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            ref = c["image"]
            if "mosquitto" in ref:
                out[ref] = ensure_mqtt_clients()
            else:
                out[ref] = ensure_vernemq(flavor, ref.rsplit(":", 1)[-1].split("@")[0])
    return out


def secret_value(run: PodRun, name_part: str, key: str) -> str:
    for name, data in run.secrets.items():
        if name.endswith(name_part) and key in data:
            return data[key].decode()
    raise KeyError(f"no rendered Secret *{name_part} with key {key}")


def fqdn(pod: str) -> str:
    return f"{pod}.{STS}-headless.{NS}.svc.cluster.local"


def http_get(url: str, headers: dict | None = None, timeout: float = 5) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def status_nodes(run: PodRun, pod: str) -> dict:
    code, body = http_get(f"http://{run.pods[pod].ip}:8888/status.json")
    assert code == 200, body[:300]
    return parse_status_json(json.loads(body))


def cluster_members(run: PodRun, pod: str) -> str:
    proc = run.exec(pod, ["vmq-admin", "cluster", "show"], timeout=60)
    assert proc.returncode == 0, f"vmq-admin in {pod}: {proc.stdout}{proc.stderr}"
    return proc.stdout


def wait_for(cond, what: str, timeout: float = 60.0, step: float = 1.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = cond()
            if last:
                return last
        except (AssertionError, OSError, ValueError) as exc:
            last = exc
        time.sleep(step)
    raise AssertionError(f"not within {timeout:g}s: {what} (last: {last!r})")


def vmq_validate(*args: str, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "validators", *args], capture_output=True, text=True,
                          timeout=timeout, env=e, cwd=ROOT)


def mqtt_client(ip: str, client_id: str, clean: bool, port: int = 1883) -> tuple[mqtt.Client, dict]:
    """A connected paho client (MQTT 3.1.1) and a dict that gets session_present and messages."""
    seen: dict = {"messages": []}
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean,
                    protocol=mqtt.MQTTv311)
    c.username_pw_set(USER, PASSWORD)

    def on_connect(client, userdata, flags, rc, props=None):
        seen["session_present"] = flags.session_present
        seen["rc"] = int(rc.value) if hasattr(rc, "value") else int(rc)

    c.on_connect = on_connect
    c.on_message = lambda client, userdata, msg: seen["messages"].append(msg.payload.decode())
    c.connect(ip, port, keepalive=30)
    c.loop_start()
    wait_for(lambda: "rc" in seen, f"CONNACK from {ip}", timeout=15, step=0.1)
    assert seen["rc"] == 0, f"CONNACK rc {seen['rc']} from {ip}"
    return c, seen


def close(c: mqtt.Client) -> None:
    c.disconnect()
    c.loop_stop()


def sessions(run: PodRun, api_key: str, via: str) -> dict[str, dict]:
    code, body = http_get(f"http://{run.pods[via].ip}:8888/api/v1/session/show?--client_id&--is_online&--node",
                          {"x-api-key": api_key})
    assert code == 200, body[:300]
    rows = json.loads(body).get("table") or []
    return {r["client_id"]: r for r in rows}


def holder(run: PodRun, api_key: str, client_id: str) -> str:
    """The pod whose node holds ``client_id``'s session (session/show's node column)."""
    row = sessions(run, api_key, next(p for p in PODS if p in run.pods))[client_id]
    pod = str(row.get("node", "")).split("@", 1)[-1].split(".", 1)[0]
    assert pod in run.pods, f"{client_id} is held by {row.get('node')}, which no pod backs"
    return pod


class Release:
    def __init__(self, run: PodRun, rendered: str, tmp: Path):
        self.run = run
        self.rendered = rendered
        self.tmp = tmp
        self.kubeconfig = run.kubeconfig(tmp / "kubeconfig")
        self.cookie = secret_value(run, "erlang-cookie", "cookie")
        self.api_key = secret_value(run, "api-key", "api-key")
        self.ready_at: dict[str, float] = {}

    def kube_args(self) -> list[str]:
        return ["--kubeconfig", str(self.kubeconfig), "--context", "podlab", "--namespace", NS, "--release", REL]

    def targets(self) -> Path:
        """A targets file naming the pods by IP (for `clients --canary` from the node)."""
        nodes = [{"name": f"VerneMQ@{fqdn(p)}", "host": self.run.pods[p].ip,
                  "http": f"http://{self.run.pods[p].ip}:8888", "mqtt": f"tcp://{self.run.pods[p].ip}:1883",
                  "ws": f"ws://{self.run.pods[p].ip}:8080/mqtt"} for p in sorted(self.run.pods)
                 if self.run.pods[p].owner]
        doc = {"cluster": {"epmd_port": 4369, "dist_port_range": [9100, 9109], "cluster_port": 44053,
                           "cookie_env": "VMQ_COOKIE", "api_key_env": "VMQ_API_KEY", "transport": "direct"},
               "nodes": nodes}
        path = self.tmp / "targets.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def secrets_env(self) -> dict[str, str]:
        return {"VMQ_COOKIE": self.cookie, "VMQ_API_KEY": self.api_key, "CANARY_PASSWORD": PASSWORD}


def start_release(tmp: Path, values: list[Path] = (), set_values: list[str] = ()) -> Release:
    rendered = render(CHART, REL, NS, values=list(values), set_values=SET + list(set_values))
    run = PodRun(rendered, namespace=NS, images=images_for(rendered), existing=EXISTING)
    try:
        run.start()
        run.wait_ready(PODS, timeout=READY_TIMEOUT)
    except BaseException:
        run.close()
        raise
    rel = Release(run, rendered, tmp)
    for p in PODS:
        rel.ready_at[p] = time.monotonic()
    return rel


@pytest.fixture(scope="module")
def rel(tmp_path_factory):
    r = start_release(tmp_path_factory.mktemp("podlab-default"))
    try:
        yield r
    finally:
        r.run.close()


# ---------------------------------------------------------------------------------------------
# 1. one cluster through discovery


def test_1_three_pods_ready_form_one_cluster(rel):
    want = {f"VerneMQ@{fqdn(p)}" for p in PODS}
    for p in PODS:
        nodes = wait_for(lambda p=p: set(status_nodes(rel.run, p)) == want and status_nodes(rel.run, p),
                         f"{p}'s status.json lists {sorted(want)}")
        for name, st in nodes.items():
            assert all(st.mystatus.values()), f"{p}: {name} sees {st.mystatus}"
        members = cluster_members(rel.run, p)
        for node in want:
            assert node in members, f"{p}: vmq-admin cluster show lacks {node}:\n{members}"
    pods = rel.run.kube.answer("GET", f"/api/v1/namespaces/{NS}/pods", {"labelSelector": f"app.kubernetes.io/instance={REL}"},
                               f"Bearer {rel.run.admin_token}")[1]["items"]
    assert sorted(p["metadata"]["name"] for p in pods) == PODS
    assert all(p["spec"]["subdomain"] == f"{STS}-headless" for p in pods)


# ---------------------------------------------------------------------------------------------
# 2. the cookie


def dist_port(ip: str) -> int:
    info = epmd.port_please2(ip, "VerneMQ")
    assert info is not None, f"VerneMQ is not registered in EPMD at {ip}"
    return info.port


def test_2_nodes_use_the_secrets_cookie_and_refuse_vmq(rel):
    for p in PODS:
        ip = rel.run.pods[p].ip
        port = dist_port(ip)
        assert 9100 <= port <= 9109
        well_known = handshake(ip, port, "vmq")
        assert not well_known.ok, f"{p} accepted a handshake with the well-known cookie vmq"
        assert handshake(ip, port, rel.cookie).ok, f"{p} refused the Secret's cookie"


def test_2_the_cookie_is_not_in_manifest_args_logs_or_ps(rel):
    cookie = rel.cookie
    assert cookie not in rel.rendered
    b64 = base64.b64encode(cookie.encode()).decode()
    docs_with_it = [o["kind"] for o in objects_from_yaml(rel.rendered) if b64 in json.dumps(o)]
    assert docs_with_it == ["Secret"]
    names = [c for pod in rel.run.pods.values() for c in pod.containers.values()]
    names += [f"{pod.podman_pod}-init-{c['name']}" for pod in rel.run.pods.values()
              for c in pod.spec.get("initContainers") or []]
    for cname in names:
        cfg = json.loads(podman("inspect", cname).stdout)[0]
        argv = json.dumps([cfg.get("Path"), cfg.get("Args"), cfg["Config"].get("Cmd"), cfg["Config"].get("Entrypoint")])
        assert cookie not in argv, f"the cookie is in the args of {cname}"
        logs = podman("logs", cname, check=False)
        assert cookie not in logs.stdout + logs.stderr, f"the cookie is in the logs of {cname}"
    host_ps = subprocess.run(["ps", "axww", "-o", "args"], capture_output=True, text=True).stdout
    assert cookie not in host_ps, "the cookie is on a command line (ps)"
    for p in PODS:
        inner = rel.run.exec(p, ["ps", "axww", "-o", "args"]).stdout
        assert inner and cookie not in inner


def test_2_image_defaults_answer_to_vmq(rel):
    """The contrast: the same image started with its own defaults (no chart, the cookie only in
    DOCKER_VERNEMQ_DISTRIBUTED_COOKIE) runs with the cookie `vmq`: the check above would fail there."""
    image = rel.run.images[sts_of(rel.rendered)["spec"]["template"]["spec"]["containers"][0]["image"]]
    env = rel.tmp / "defaults.env"
    env.write_text("DOCKER_VERNEMQ_DISTRIBUTED_COOKIE=not-the-one-the-node-uses\n")
    name = f"{rel.run.id}-defaults"
    ip = str(rel.run.subnet.broadcast_address - 6)
    podman("run", "-d", "--name", name, "--network", rel.run.network, "--ip", ip, "--label", f"podlab.run={rel.run.id}",
           "--env-file", str(env), "--pull", "never", image, timeout=120)
    try:
        port = wait_for(lambda: (epmd.port_please2(ip, "VerneMQ") or None) and epmd.port_please2(ip, "VerneMQ").port,
                        "the defaults node registers in EPMD", timeout=90)
        assert handshake(ip, port, "vmq").ok
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)


# ---------------------------------------------------------------------------------------------
# 3. the API key


def test_3_api_key_works_within_the_bound_and_readiness_does_not_flap(rel):
    for p in PODS:
        ip = rel.run.pods[p].ip

        def ok(ip=ip):
            code, _ = http_get(f"http://{ip}:8888/api/v1/cluster/show", {"x-api-key": rel.api_key})
            return code == 200
        wait_for(ok, f"the API key works on {p}", timeout=max(1.0, API_KEY_BOUND - (time.monotonic() - rel.ready_at[p])))
        code, _ = http_get(f"http://{ip}:8888/api/v1/cluster/show", {"x-api-key": "wrong"})
        assert code == 401
    flaps = [e for e in rel.run.events if "Ready=False" in e]
    assert not flaps, flaps


# ---------------------------------------------------------------------------------------------
# 4. the validators on the healthy release


def test_4_distribution_through_kube_exec_is_clean(rel):
    proc = vmq_validate("distribution", *rel.kube_args(), "--format", "json")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["meta"]["transport"] == "kube-exec"
    assert not [r for r in report["results"] if r["status"] in ("fail", "warn", "unknown")]
    execs = [p for (_m, p, _q) in rel.run.kube.requests if p.endswith("/exec")]
    assert len(execs) >= 3, "kube-exec never went through the API server"
    for secret in (rel.cookie, rel.api_key):
        assert secret not in proc.stdout + proc.stderr


def test_4_clients_canary_against_the_pod_ips_is_clean(rel):
    proc = vmq_validate("clients", "--targets", str(rel.targets()), "--canary", "--canary-user", USER,
                        "--canary-password-env", "CANARY_PASSWORD", "--samples", "2", "--sample-interval", "1s",
                        "--format", "json", env=rel.secrets_env())
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_4_preflight_is_clean(rel):
    proc = vmq_validate("preflight", *rel.kube_args(), "--target-version", "2.1.2", "--format", "json")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


# ---------------------------------------------------------------------------------------------
# 7. NetworkPolicies enforced


def probe_script(ip: str, ports: list[int]) -> str:
    return "; ".join(f"timeout 2 bash -c 'exec 3<>/dev/tcp/{ip}/{p}' 2>/dev/null && echo {p}:open || echo {p}:closed"
                     for p in ports)


CLUSTER_PORTS = [4369, *range(9100, 9110), 44053, 8888]


def outsider_view(rel: Release, pod: str, ports: list[int]) -> dict[int, bool]:
    image = rel.run.images[sts_of(rel.rendered)["spec"]["template"]["spec"]["containers"][0]["image"]]
    out = rel.run.run_outsider(image, ["bash", "-c", probe_script(rel.run.pods[pod].ip, ports)]).stdout.split()
    return {int(w.split(":")[0]): w.endswith(":open") for w in out}


def test_7_outside_the_release_cluster_ports_closed_client_ports_open(rel):
    pod = PODS[1]
    # the cluster ports really listen: a peer pod, which the policy admits, reaches them (the chart's egress
    # lets a pod reach only the cluster ports of its peers, so 1883 is closed from there)
    dist = dist_port(rel.run.pods[pod].ip)
    peer = rel.run.exec(PODS[0], ["bash", "-c", probe_script(rel.run.pods[pod].ip, [4369, dist, 44053, 8888, 1883])])
    assert peer.stdout.split() == [f"{p}:open" for p in (4369, dist, 44053, 8888)] + ["1883:closed"], peer.stdout
    seen = outsider_view(rel, pod, CLUSTER_PORTS + [1883, 8080])
    assert [p for p in CLUSTER_PORTS if seen[p]] == [], f"reachable from outside the release: {seen}"
    assert seen[1883] and seen[8080], seen


# ---------------------------------------------------------------------------------------------
# 8. the helm test pod


def test_8_helm_test_round_trip(rel):
    hook = next(o["metadata"]["name"] for o in rel.run.hooks if o.get("kind") == "Pod")
    rc, logs = rel.run.run_hook_pod(hook, timeout=120)
    assert rc == 0, logs
    assert "round trip OK" in logs


# ---------------------------------------------------------------------------------------------
# 5. a deleted pod comes back


def test_5_deleted_pod_comes_back_rejoins_and_keeps_its_persistent_session(rel):
    run = rel.run
    victim = PODS[1]
    c, _ = mqtt_client(run.pods[victim].ip, "podlab-s5", clean=False)
    c.subscribe("podlab/s5", qos=1)
    time.sleep(0.5)
    close(c)
    wait_for(lambda: "podlab-s5" in sessions(run, rel.api_key, PODS[0]), "the session is listed")
    uid = run.pods[victim].manifest["metadata"]["uid"]
    run.delete_pod(victim)
    run.wait_ready([victim], timeout=READY_TIMEOUT)
    assert run.pods[victim].manifest["metadata"]["uid"] != uid
    want = {f"VerneMQ@{fqdn(p)}" for p in PODS}
    wait_for(lambda: set(status_nodes(run, victim)) == want, f"{victim} rejoined")
    assert all(f"VerneMQ@{fqdn(p)}" in cluster_members(run, victim) for p in PODS)
    wait_for(lambda: "podlab-s5" in sessions(run, rel.api_key, PODS[0]), "the session survived the restart")
    c, seen = mqtt_client(run.pods[holder(run, rel.api_key, "podlab-s5")].ip, "podlab-s5", clean=False)
    close(c)
    assert seen["session_present"], "reconnecting found no session"


# ---------------------------------------------------------------------------------------------
# 9. the partitioned upgrade to a second tag


def test_9_partitioned_upgrade_to_a_second_tag_loses_no_session(rel):
    run = rel.run
    new = render(CHART, REL, NS, set_values=SET + [f"image.tag={SECOND_TAG}"])
    new_sts = sts_of(new)
    old_sts = run.statefulsets[STS]
    assert new_sts["spec"]["template"] != old_sts["spec"]["template"]
    images = images_for(new)
    sub, _ = mqtt_client(run.pods[PODS[0]].ip, "podlab-s9", clean=False)
    sub.subscribe("podlab/s9", qos=1)
    time.sleep(0.5)
    close(sub)
    replicas = int(old_sts["spec"]["replicas"])
    order = []
    # upgrade.yml: helm upgrade with partition = replicas (nothing restarts), then replicas-1 .. 0
    order += run.roll(STS, template=new_sts["spec"]["template"], images=images, partition=replicas)
    assert order == []
    for ordinal in range(replicas - 1, -1, -1):
        order += run.roll(STS, template=new_sts["spec"]["template"], images=images, partition=ordinal)
        proc = vmq_validate("distribution", *rel.kube_args(), "--format", "json")
        assert proc.returncode == 0, f"after {STS}-{ordinal}: " + proc.stdout[-3000:]
        assert "podlab-s9" in sessions(run, rel.api_key, PODS[0]), f"session lost after {STS}-{ordinal}"
    assert order == list(reversed(PODS))
    for p in PODS:
        assert run.pods[p].spec["containers"][0]["image"].endswith(SECOND_TAG)
    c, seen = mqtt_client(run.pods[holder(run, rel.api_key, "podlab-s9")].ip, "podlab-s9", clean=False)
    close(c)
    assert seen["session_present"]


# ---------------------------------------------------------------------------------------------
# 6. scale-down


def test_6_scale_down_leaves_no_ghost_and_keeps_sessions(rel):
    run = rel.run
    gone = PODS[2]
    c, _ = mqtt_client(run.pods[gone].ip, "podlab-s6", clean=False)
    c.subscribe("podlab/s6", qos=1)
    time.sleep(0.5)
    close(c)
    run.scale(STS, 2)
    assert sorted(p for p in run.pods if run.pods[p].owner) == PODS[:2]
    for p in PODS[:2]:
        members = cluster_members(run, p)
        assert f"VerneMQ@{fqdn(gone)}" not in members, f"ghost member in {p}:\n{members}"
    proc = vmq_validate("distribution", *rel.kube_args(), "--format", "json")
    assert proc.returncode == 0, proc.stdout[-3000:]
    wait_for(lambda: "podlab-s6" in sessions(run, rel.api_key, PODS[0]), "the session moved off the leaving node")
    c, seen = mqtt_client(run.pods[holder(run, rel.api_key, "podlab-s6")].ip, "podlab-s6", clean=False)
    close(c)
    assert seen["session_present"]


def test_6_without_the_leave_hook_the_validators_report_the_ghost(rel):
    run = rel.run
    run.scale(STS, 3)
    run.wait_ready(PODS, timeout=READY_TIMEOUT)
    off = sts_of(render(CHART, REL, NS, set_values=SET + [f"image.tag={SECOND_TAG}", "statefulset.leaveOnScaleDown=false"]))
    on = copy.deepcopy(run.statefulsets[STS])
    hooked = [c["name"] for c in on["spec"]["template"]["spec"]["containers"] if (c.get("lifecycle") or {}).get("preStop")]
    assert hooked, "the default render has no preStop hook"
    for c in on["spec"]["template"]["spec"]["containers"]:
        c.pop("lifecycle", None)
    for c in off["spec"]["template"]["spec"]["containers"]:
        c.pop("lifecycle", None)
    assert off["spec"]["template"] == on["spec"]["template"], "the hook is not the only difference"
    # pod 2 as that render makes it: no preStop hook
    for c in run.pods[PODS[2]].spec["containers"]:
        c.pop("lifecycle", None)
    run.scale(STS, 2)
    ghost = f"VerneMQ@{fqdn(PODS[2])}"
    assert ghost in cluster_members(run, PODS[0])
    proc = vmq_validate("distribution", *rel.kube_args(), "--format", "json")
    assert proc.returncode == 1, proc.stdout[-3000:]
    report = json.loads(proc.stdout)
    failing = [r for r in report["results"] if r["status"] == "fail"]
    assert any(r["check"] == "DIST-007" and ghost in json.dumps(r) for r in failing), json.dumps(failing)[:3000]


# ---------------------------------------------------------------------------------------------
# the aks profile


@pytest.fixture(scope="module")
def aks(tmp_path_factory, rel):
    rel.run.close()  # one release at a time keeps the module inside its time budget
    r = start_release(tmp_path_factory.mktemp("podlab-aks"), values=[AKS])
    try:
        yield r
    finally:
        r.run.close()


def test_aks_profile_forms_one_cluster_and_is_clean(aks):
    want = {f"VerneMQ@{fqdn(p)}" for p in PODS}
    for p in PODS:
        wait_for(lambda p=p: set(status_nodes(aks.run, p)) == want, f"{p} lists all three")
        assert not handshake(aks.run.pods[p].ip, dist_port(aks.run.pods[p].ip), "vmq").ok
    proc = vmq_validate("distribution", *aks.kube_args(), "--format", "json")
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_aks_profile_network_policy_matches_the_evaluator(aks):
    """With loadBalancerSourceRanges the client ports are open only to those sources: an address outside
    them is refused too. Each port's expectation is the evaluator's verdict for the outsider's address."""
    pod = PODS[0]
    ports = CLUSTER_PORTS + [1883, 8080]
    seen = outsider_view(aks, pod, ports)
    manifest = aks.run.pods[pod].manifest
    ev = Evaluator(aks.run.policies, [pod_endpoint(manifest)])
    outsider = Endpoint.external(aks.run.outsider_ip())
    expect = {p: ev.check(outsider, pod_endpoint(manifest), p).allowed for p in ports}
    assert not any(expect[p] for p in CLUSTER_PORTS)
    assert seen == expect
