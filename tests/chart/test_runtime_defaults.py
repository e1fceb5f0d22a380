"""The rendering side of the runtime fixes (seed-etc, cookie, HOME, scale-down leave, image flavor).

The same manifests run in real containers in tests/podlab (test_image.py: seed-etc on kubelet emptyDirs and the
cookie by handshake; test_scenarios.py: the whole release). Here: what is rendered, and the preStop script's
decision executed by the real shell with curl and vmq-admin replaced by recorders.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import FULLNAME, NAMESPACE, container, env_of, find

SA = "/var/run/secrets/kubernetes.io/serviceaccount"


def sts_of(docs):
    return find(docs, "StatefulSet", FULLNAME)


def pod_of(docs):
    return sts_of(docs)["spec"]["template"]["spec"]


def test_seed_etc_copies_without_preserving_and_seeds_the_cookie_file(default_docs):
    pod = pod_of(default_docs)
    (init,) = pod["initContainers"]
    script = init["command"][-1]
    assert init["command"][:2] == ["sh", "-c"]
    assert "cp -a" not in script and "cp -p" not in script and "cp -R /vernemq/etc/. /seed/etc/" in script
    assert "sed -i '/^-setcookie/d' /seed/etc/vm.args" in script
    assert 'printf \'%s\' "$ERLANG_COOKIE" > /seed/home/.erlang.cookie' in script
    assert "chmod 0400 /seed/home/.erlang.cookie" in script and "umask 077" in script
    # the cookie comes from the Secret, never a literal
    (cookie_env,) = init["env"]
    assert cookie_env == {"name": "ERLANG_COOKIE", "valueFrom": {"secretKeyRef": {
        "name": f"{FULLNAME}-erlang-cookie", "key": "cookie"}}}
    assert {m["mountPath"]: m["name"] for m in init["volumeMounts"]} == {"/seed/etc": "etc", "/seed/home": "home"}


def test_home_is_a_writable_memory_volume_holding_the_cookie(default_docs):
    pod = pod_of(default_docs)
    c = container(sts_of(default_docs))
    assert env_of(c)["HOME"] == {"name": "HOME", "value": "/vernemq/home"}
    assert {m["mountPath"]: m["name"] for m in c["volumeMounts"]}["/vernemq/home"] == "home"
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["home"]["emptyDir"]["medium"] == "Memory"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    # vmq-admin still finds the cookie in vernemq.conf (vm.args has none after seed-etc)
    assert env_of(c)["DOCKER_VERNEMQ_DISTRIBUTED_COOKIE"]["valueFrom"]["secretKeyRef"]["name"] == \
        f"{FULLNAME}-erlang-cookie"


def test_prestop_leave_on_scale_down_by_default(default_docs, renderer):
    c = container(sts_of(default_docs))
    cmd = c["lifecycle"]["preStop"]["exec"]["command"]
    assert cmd[:2] == ["sh", "-c"]
    script = cmd[2]
    assert f"/apis/apps/v1/namespaces/${{DOCKER_VERNEMQ_KUBERNETES_NAMESPACE}}/statefulsets/{FULLNAME}" in script
    assert "https://kubernetes.default.svc.cluster.local/" in script
    assert "curl -fsS -m 10 -K - " in script and "Bearer $(cat" not in script.split("| curl")[1]
    assert 'vmq-admin cluster leave node="$node" -k' in script
    # the Role grants the read the hook needs
    role = find(default_docs, "Role", FULLNAME)
    assert any(r["resources"] == ["statefulsets"] and "get" in r["verbs"] for r in role["rules"])
    off = container(sts_of(renderer.docs("00-default", sets=["statefulset.leaveOnScaleDown=false"])))
    assert "lifecycle" not in off
    single = container(sts_of(renderer.docs("00-default", sets=["replicaCount=1",
                                                                 "discovery.kubernetes.enabled=false"])))
    assert "lifecycle" not in single  # no token, no Role: nothing to read replicas with


@pytest.fixture
def prestop(default_docs, tmp_path):
    """Run the rendered preStop script with dash, the token folder and vm.args under tmp_path, `curl` answering
    a canned StatefulSet (or failing) and `vmq-admin` recording its arguments."""
    script = container(sts_of(default_docs))["lifecycle"]["preStop"]["exec"]["command"][2]
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text("tok-" + os.urandom(4).hex())
    (sa / "ca.crt").write_text("ca")
    vm_args = tmp_path / "vm.args"
    vm_args.write_text("+P 512000\n-name VerneMQ@mqtt-vernemq-2.mqtt-vernemq-headless.vernemq.svc.cluster.local\n")
    script = script.replace(SA, str(sa)).replace("/vernemq/etc/vm.args", str(vm_args))
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "curl").write_text(
        '#!/bin/sh\ncat > "$CURL_STDIN"\necho "$@" > "$CURL_ARGS"\n'
        '[ -n "$STS_JSON" ] || { echo "curl: (22) 403" >&2; exit 22; }\nprintf "%s" "$STS_JSON"\n')
    (bin_ / "vmq-admin").write_text('#!/bin/sh\necho "$@" > "$ADMIN_ARGS"\necho Done\n')
    for f in bin_.iterdir():
        f.chmod(0o755)
    jq = shutil.which("jq")
    if jq is None:
        pytest.skip("jq is not installed (scripts/bootstrap.sh installs it)")
    (bin_ / "jq").symlink_to(jq)

    def run(pod: str, replicas: int | None):
        env = {"PATH": f"{bin_}:/usr/bin:/bin", "MY_POD_NAME": pod, "DOCKER_VERNEMQ_KUBERNETES_NAMESPACE": NAMESPACE,
               "CURL_STDIN": str(tmp_path / "curl.stdin"), "CURL_ARGS": str(tmp_path / "curl.args"),
               "ADMIN_ARGS": str(tmp_path / "admin.args"),
               "STS_JSON": json.dumps({"spec": {"replicas": replicas}}) if replicas is not None else ""}
        (tmp_path / "admin.args").unlink(missing_ok=True)
        proc = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=30)
        admin = tmp_path / "admin.args"
        return proc, (admin.read_text().strip() if admin.exists() else None)

    run.tmp = tmp_path
    run.token = (sa / "token").read_text()
    return run


def test_prestop_leaves_only_when_the_ordinal_is_beyond_replicas(prestop):
    proc, admin = prestop(f"{FULLNAME}-2", 2)  # scaled 3 -> 2: pod 2 goes away for good
    assert proc.returncode == 0, proc.stderr
    assert admin == "cluster leave node=VerneMQ@mqtt-vernemq-2.mqtt-vernemq-headless.vernemq.svc.cluster.local -k"
    # the token went to curl on stdin, not on its command line
    args = (prestop.tmp / "curl.args").read_text()
    assert prestop.token not in args and "-K -" in args
    assert prestop.token in (prestop.tmp / "curl.stdin").read_text()
    assert f"/statefulsets/{FULLNAME}" in args

    proc, admin = prestop(f"{FULLNAME}-1", 2)  # a restart of a pod that stays
    assert proc.returncode == 0 and admin is None and "staying a member" in proc.stdout
    proc, admin = prestop(f"{FULLNAME}-2", 3)  # rolling update
    assert admin is None
    proc, admin = prestop(f"{FULLNAME}-2", None)  # API not readable (403, uninstall): never leave on a guess
    assert proc.returncode == 0 and admin is None and "replicas unknown" in proc.stdout


def test_image_flavor_decides_accept_eula(renderer):
    official = env_of(container(sts_of(renderer.docs("00-default", sets=["vernemq.acceptEula=true"]))))
    assert official["DOCKER_VERNEMQ_ACCEPT_EULA"]["value"] == "yes"
    source = env_of(container(sts_of(renderer.docs("00-default", sets=["vernemq.acceptEula=true",
                                                                        "image.flavor=source"]))))
    assert "DOCKER_VERNEMQ_ACCEPT_EULA" not in source
    # a profile that accepts the EULA, with a self-built image
    aks_source = env_of(container(sts_of(renderer.docs("10-aks", sets=["image.flavor=source"]))))
    assert "DOCKER_VERNEMQ_ACCEPT_EULA" not in aks_source


def test_image_flavor_is_a_choice(renderer):
    from .conftest import HelmError
    with pytest.raises(HelmError, match="flavor"):
        renderer.text("00-default", sets=["image.flavor=community"], cache=False)


def test_notes_ask_for_the_eula_only_for_the_official_image(renderer):
    from .conftest import CHART, RELEASE, helm_tool

    def notes(*sets: str) -> str:
        cmd = [helm_tool("helm"), "install", RELEASE, str(CHART), "--dry-run", "-n", NAMESPACE]
        for s in sets:
            cmd += ["--set", s]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
        return out[out.index("NOTES:"):]

    assert "vernemq.acceptEula=true" in notes()
    assert "EULA" not in notes("image.flavor=source")
    assert "EULA" not in notes("vernemq.acceptEula=true")
    assert "about 60 s" in notes()


def test_values_comments_state_what_the_image_does_on_sigterm():
    text = (Path(__file__).resolve().parents[2] / "charts/vernemq/values.yaml").read_text()
    assert "on a scale-down it first makes the node leave" not in text
    assert "only stops the node" in text and "leaveOnScaleDown" in text


def test_every_container_start_begins_from_the_seeded_vm_args(default_docs):
    """The start script edits vm.args in place; the emptyDir outlives a container restart (tests/podlab
    test_chart_pod_survives_a_container_restart shows the crash loop without this)."""
    pod = pod_of(default_docs)
    assert "cp /seed/etc/vm.args /seed/etc/vm.args.seeded" in pod["initContainers"][0]["command"][-1]
    c = container(sts_of(default_docs))
    assert c["command"] == ["sh", "-c", "cp /vernemq/etc/vm.args.seeded /vernemq/etc/vm.args && exec start_vernemq"]
    assert "args" not in c
