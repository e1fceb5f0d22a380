"""A kubelet (and a StatefulSet controller) for `helm template` output, driving podman directly.

`podman kube play` 4.3.1 refuses StatefulSets, does not resolve Secret env from manifests and runs
no probes, so this module does what the kubelet does, one step at a time (docs/podlab.md lists every
difference from a real node):

    run = PodRun(rendered_yaml, namespace="mqtt", images={"vernemq/vernemq:2.1.2": local_ref})
    run.start()                       # network, API server (fakekube over TLS), every StatefulSet's pods
    run.wait_ready(timeout=180)
    run.exec("r-vernemq-0", ["vmq-admin", "cluster", "show"])
    run.delete_pod("r-vernemq-1")     # preStop, SIGTERM, grace, SIGKILL; the controller brings it back
    run.scale("r-vernemq", 2)         # spec.replicas in the API first, then the highest ordinal goes
    run.roll("r-vernemq", images={...}, partition=0)  # a partitioned rolling update, highest ordinal first
    run.close()

* One netavark bridge per run (unique name); a podman pod per Kubernetes pod (its infra container
  holds the network namespace, the hostname and /etc/hosts); a fixed IP per pod name.
* The API server is :class:`tests.fakekube.FakeKube` over TLS on the bridge gateway, port 443, reached
  from the pods as ``kubernetes.default.svc.<cluster domain>`` (an --add-host); it serves the rendered
  objects plus the pods and StatefulSets this runner keeps up to date (status, readiness, replicas).
* Secrets are resolved here and reach podman in an --env-file (mode 0600, removed right after
  `podman create`), never on a command line.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from tests.fakekube import FakeKube, objects_from_yaml
from tests.podlab import netpol
from tests.podlab.podman import podman, podman_env
from validators.netpol.model import parse_policy, pod_endpoint

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
#: first host number of pod IPs in the run's subnet (the gateway is .1)
FIRST_HOST = 10


class PodError(RuntimeError):
    """A pod could not be created or did not become ready; the message says where and why."""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _revision(template: dict) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


_VAR_RE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)|\$\$\(")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion in command, args and env values ($$( escapes)."""
    def sub(m: re.Match) -> str:
        if m.group(0) == "$$(":
            return "$("
        return env.get(m.group(1), m.group(0))
    return _VAR_RE.sub(sub, text)


@dataclass
class Probe:
    kind: str  # startup, readiness, liveness
    spec: dict
    successes: int = 0
    failures: int = 0
    next_at: float = 0.0
    last: str = ""
    passing: bool = False  # readiness: the state the thresholds last settled on


@dataclass
class Pod:
    name: str
    manifest: dict  # the Pod object served by the API
    ip: str
    podman_pod: str
    owner: str | None = None  # StatefulSet name
    ordinal: int | None = None
    revision: str = ""
    containers: dict[str, str] = field(default_factory=dict)  # k8s name -> podman container name
    init_logs: dict[str, str] = field(default_factory=dict)
    ready: bool = False
    started: dict[str, bool] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    probes: dict[str, list[Probe]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    dirs: list[Path] = field(default_factory=list)
    phase: str = "Pending"
    reason: str = ""
    exit_codes: dict[str, int] = field(default_factory=dict)
    container_started_at: dict[str, float] = field(default_factory=dict)
    volumes: dict[str, tuple[str, bool]] = field(default_factory=dict)  # name -> (host dir, read-only)

    @property
    def spec(self) -> dict:
        return self.manifest["spec"]


class PodRun:
    """See the module docstring."""

    def __init__(self, rendered: str, *, namespace: str, images: dict[str, str] | None = None,
                 workdir: str | Path | None = None, cluster_domain: str = "cluster.local",
                 enforce_netpol: bool = True, name: str | None = None, node_name: str = "podlab-node",
                 existing: list[dict] = ()):
        self.id = name or f"podlab-{secrets.token_hex(3)}"
        self.namespace = namespace
        self.images = dict(images or {})
        self.domain = cluster_domain
        self.enforce_netpol = enforce_netpol
        self.node_name = node_name
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"{self.id}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.table = self.id.replace("-", "_")
        self.lock = threading.RLock()
        # ``existing``: objects already in the cluster before the install (e.g. a users Secret the values name)
        self.objects = objects_from_yaml(rendered) + [copy.deepcopy(o) for o in existing]
        for o in self.objects:
            o.setdefault("metadata", {}).setdefault("namespace", namespace)
        self.hooks = [o for o in self.objects if (o["metadata"].get("annotations") or {}).get("helm.sh/hook")]
        self.objects = [o for o in self.objects if o not in self.hooks]
        self.secrets = {o["metadata"]["name"]: self._secret_data(o) for o in self.objects if o.get("kind") == "Secret"}
        self.configmaps = {o["metadata"]["name"]: {k: v.encode() for k, v in (o.get("data") or {}).items()}
                           for o in self.objects if o.get("kind") == "ConfigMap"}
        self.statefulsets = {o["metadata"]["name"]: copy.deepcopy(o) for o in self.objects
                             if o.get("kind") == "StatefulSet"}
        self.services = [o for o in self.objects if o.get("kind") == "Service"]
        self.policies = [parse_policy(o, namespace) for o in self.objects + self.hooks
                         if o.get("kind") == "NetworkPolicy"]
        self.serviceaccounts = {o["metadata"]["name"]: o for o in self.objects if o.get("kind") == "ServiceAccount"}
        self.pods: dict[str, Pod] = {}
        self.events: list[str] = []
        self.network = self.id
        self.subnet: ipaddress.IPv4Network | None = None
        self.gateway = ""
        self._ips: dict[str, str] = {}
        self._next_host = FIRST_HOST
        self.kube: FakeKube | None = None
        self.admin_token = secrets.token_urlsafe(24)
        self.closed = False

    # -- helpers ------------------------------------------------------------------------------
    @staticmethod
    def _secret_data(obj: dict) -> dict[str, bytes]:
        out = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        out.update({k: str(v).encode() for k, v in (obj.get("stringData") or {}).items()})
        return out

    def log(self, msg: str) -> None:
        self.events.append(f"{time.strftime('%H:%M:%S')} {msg}")

    def ip_of(self, pod_name: str) -> str:
        with self.lock:
            if pod_name not in self._ips:
                assert self.subnet is not None
                self._ips[pod_name] = str(self.subnet.network_address + self._next_host)
                self._next_host += 1
            return self._ips[pod_name]

    def image(self, ref: str) -> str:
        return self.images.get(ref, ref)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self, *, create_pods: bool = True) -> "PodRun":
        podman("network", "create", "--disable-dns", self.network)
        info = json.loads(podman("network", "inspect", self.network).stdout)[0]
        sub = info["subnets"][0]
        self.subnet = ipaddress.ip_network(sub["subnet"])
        self.gateway = sub.get("gateway") or str(self.subnet.network_address + 1)
        api_names = [f"kubernetes.default.svc.{self.domain}", "kubernetes.default.svc", "kubernetes.default",
                     "kubernetes"]
        self.kube = FakeKube([o for o in self.objects if _served(o)], token=self.admin_token, tls=True,
                             host=self.gateway, port=443, san=api_names)
        self.kube.exec_backend = self._exec_backend
        self.kube.proxy_backend = self._proxy_backend
        self.kube.start()
        self.api_names = api_names
        for sts in self.statefulsets.values():
            self._publish_sts(sts)
        if create_pods:
            self.reconcile_all()
        return self

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for pod in list(self.pods.values()):
            pod.stop.set()
        for pod in list(self.pods.values()):
            podman("pod", "rm", "-f", "-t", "0", pod.podman_pod, check=False, timeout=120)
        podman("rm", "-f", "-t", "0", "--filter", f"label=podlab.run={self.id}", check=False, timeout=120)
        podman("network", "rm", "-f", self.network, check=False, timeout=60)
        if self.kube:
            self.kube.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "PodRun":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def kubeconfig(self, path: str | Path, token: str | None = None) -> Path:
        assert self.kube
        return self.kube.write_kubeconfig(path, context="podlab", namespace=self.namespace, token=token)

    # -- the StatefulSet controller -----------------------------------------------------------
    def _publish_sts(self, sts: dict) -> None:
        name = sts["metadata"]["name"]
        owned = [p for p in self.pods.values() if p.owner == name]
        rev = _revision(sts["spec"]["template"])
        sts["status"] = {"observedGeneration": sts["metadata"].get("generation", 1),
                         "replicas": len(owned), "readyReplicas": sum(p.ready for p in owned),
                         "availableReplicas": sum(p.ready for p in owned),
                         "currentReplicas": sum(p.revision == rev for p in owned),
                         "updatedReplicas": sum(p.revision == rev for p in owned),
                         "currentRevision": f"{name}-{rev}", "updateRevision": f"{name}-{rev}"}
        assert self.kube
        self.kube.add(sts)

    def reconcile_all(self, wait: bool = False) -> None:
        for name in self.statefulsets:
            self.reconcile(name, wait=wait)

    def reconcile(self, sts_name: str, wait: bool = False, timeout: float = 240) -> None:
        """Create missing ordinals below spec.replicas (Parallel: all at once; OrderedReady: one by one,
        each Ready first); delete ordinals at or above it, highest first, each gone before the next."""
        sts = self.statefulsets[sts_name]
        want = int(sts["spec"].get("replicas", 1))
        have = {p.ordinal: p for p in self.pods.values() if p.owner == sts_name}
        for ordinal in sorted((o for o in have if o >= want), reverse=True):
            self.delete_pod(have[ordinal].name, recreate=False)
        missing = [o for o in range(want) if o not in have]
        ordered = sts["spec"].get("podManagementPolicy", "OrderedReady") != "Parallel"
        threads = []
        for ordinal in missing:
            if ordered:
                self.create_sts_pod(sts_name, ordinal)
                self.wait_ready([f"{sts_name}-{ordinal}"], timeout=timeout)
            else:
                t = threading.Thread(target=self._create_safe, args=(sts_name, ordinal), daemon=True)
                t.start()
                threads.append(t)
        for t in threads:
            t.join()
        self._publish_sts(sts)
        if wait:
            self.wait_ready([f"{sts_name}-{o}" for o in range(want)], timeout=timeout)

    def _create_safe(self, sts_name: str, ordinal: int) -> None:
        try:
            self.create_sts_pod(sts_name, ordinal)
        except Exception as exc:  # noqa: BLE001 - shows in events and in wait_ready's message
            self.log(f"{sts_name}-{ordinal}: create failed: {exc}")

    def scale(self, sts_name: str, replicas: int, wait: bool = True) -> None:
        """spec.replicas in the API first (a preStop hook reads it), then the controller acts."""
        sts = self.statefulsets[sts_name]
        sts["spec"]["replicas"] = replicas
        sts["metadata"]["generation"] = sts["metadata"].get("generation", 1) + 1
        self._publish_sts(sts)
        self.reconcile(sts_name, wait=wait)

    def roll(self, sts_name: str, *, images: dict[str, str] | None = None, template: dict | None = None,
             partition: int = 0, timeout: float = 240, between: Callable[[str], None] | None = None) -> list[str]:
        """A RollingUpdate: new template (or image map), pods with ordinal >= partition whose revision
        differs are deleted and recreated one at a time, highest ordinal first, each Ready before the
        next. Returns the pod names in the order they were replaced. ``between(pod)`` runs after each."""
        sts = self.statefulsets[sts_name]
        if template is not None:
            sts["spec"]["template"] = copy.deepcopy(template)
        if images:
            self.images.update(images)
        sts["spec"].setdefault("updateStrategy", {"type": "RollingUpdate"}).setdefault(
            "rollingUpdate", {})["partition"] = partition
        sts["metadata"]["generation"] = sts["metadata"].get("generation", 1) + 1
        rev = _revision({"t": sts["spec"]["template"], "images": sorted(self.images.items())})
        self._publish_sts(sts)
        order = []
        for ordinal in range(int(sts["spec"].get("replicas", 1)) - 1, partition - 1, -1):
            name = f"{sts_name}-{ordinal}"
            pod = self.pods.get(name)
            if pod is not None and pod.revision == rev:
                continue
            self.wait_ready([p.name for p in self.pods.values() if p.owner == sts_name], timeout=timeout)
            if pod is not None:
                self.delete_pod(name, recreate=False)
            self.create_sts_pod(sts_name, ordinal, revision=rev)
            self.wait_ready([name], timeout=timeout)
            order.append(name)
            if between:
                between(name)
        self._publish_sts(sts)
        return order

    def create_sts_pod(self, sts_name: str, ordinal: int, revision: str | None = None) -> Pod:
        sts = self.statefulsets[sts_name]
        tmpl = copy.deepcopy(sts["spec"]["template"])
        name = f"{sts_name}-{ordinal}"
        md = tmpl.setdefault("metadata", {})
        labels = md.setdefault("labels", {})
        rev = revision or _revision({"t": sts["spec"]["template"], "images": sorted(self.images.items())})
        labels.update({"statefulset.kubernetes.io/pod-name": name, "apps.kubernetes.io/pod-index": str(ordinal),
                       "controller-revision-hash": f"{sts_name}-{rev}"})
        spec = tmpl["spec"]
        spec.setdefault("hostname", name)
        spec.setdefault("subdomain", sts["spec"].get("serviceName"))
        for claim in sts["spec"].get("volumeClaimTemplates") or []:
            cname = claim["metadata"]["name"]
            spec.setdefault("volumes", []).append(
                {"name": cname, "persistentVolumeClaim": {"claimName": f"{cname}-{name}"}})
        manifest = {"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": name, "namespace": self.namespace, "labels": labels,
                                 "annotations": md.get("annotations") or {},
                                 "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                                                      "name": sts_name, "uid": sts["metadata"].get("uid", ""),
                                                      "controller": True, "blockOwnerDeletion": True}]},
                    "spec": spec}
        return self.create_pod(manifest, owner=sts_name, ordinal=ordinal, revision=rev)

    # -- one pod ------------------------------------------------------------------------------
    def _hosts(self, me: str) -> list[str]:
        """--add-host entries: every StatefulSet pod's headless name, the Services (to ordinal 0 or the
        first pod they select: there is no kube-proxy), and the API server."""
        out = []
        for sts_name, sts in self.statefulsets.items():
            svc = sts["spec"].get("serviceName")
            for o in range(int(sts["spec"].get("replicas", 1))):
                pn = f"{sts_name}-{o}"
                if pn == me:
                    continue
                ip = self.ip_of(pn)
                if svc:
                    out.append(f"{pn}.{svc}.{self.namespace}.svc.{self.domain}:{ip}")
                    out.append(f"{pn}.{svc}.{self.namespace}.svc:{ip}")
        for svc in self.services:
            target = self._service_target(svc)
            if target:
                sn = svc["metadata"]["name"]
                for n in (sn, f"{sn}.{self.namespace}", f"{sn}.{self.namespace}.svc",
                          f"{sn}.{self.namespace}.svc.{self.domain}"):
                    out.append(f"{n}:{target}")
        for n in self.api_names:
            out.append(f"{n}:{self.gateway}")
        return out

    def _service_target(self, svc: dict) -> str | None:
        sel = (svc.get("spec") or {}).get("selector") or {}
        if not sel:
            return None
        for sts_name, sts in self.statefulsets.items():
            labels = ((sts["spec"]["template"].get("metadata") or {}).get("labels") or {})
            if all(labels.get(k) == v for k, v in sel.items()):
                return self.ip_of(f"{sts_name}-0")
        return None

    def create_pod(self, manifest: dict, *, owner: str | None = None, ordinal: int | None = None,
                   revision: str = "") -> Pod:
        name = manifest["metadata"]["name"]
        spec = manifest["spec"]
        ip = self.ip_of(name)
        pod = Pod(name=name, manifest=manifest, ip=ip, podman_pod=f"{self.id}-{name}", owner=owner, ordinal=ordinal,
                  revision=revision)
        manifest["metadata"].update({"uid": f"{secrets.token_hex(4)}-0000-4000-8000-{secrets.token_hex(6)}",
                                     "creationTimestamp": _now()})
        spec["nodeName"] = self.node_name
        manifest["status"] = {"phase": "Pending", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": self.gateway,
                              "startTime": _now(), "conditions": self._conditions(False, False)}
        with self.lock:
            if name in self.pods:
                raise PodError(f"pod {name} exists already")
            self.pods[name] = pod
        self._publish(pod)
        self.log(f"{name}: creating (ip {ip})")
        hostname = spec.get("hostname") or name
        args = ["pod", "create", "--name", pod.podman_pod, "--network", self.network, "--ip", ip,
                "--hostname", hostname, "--label", f"podlab.run={self.id}"]
        if spec.get("subdomain"):
            fqdn = f"{hostname}.{spec['subdomain']}.{self.namespace}.svc.{self.domain}"
            args += ["--add-host", f"{fqdn}:{ip}"]
        for h in self._hosts(name):
            args += ["--add-host", h]
        podman(*args, timeout=120)
        podman("pod", "start", pod.podman_pod, timeout=120)
        if self.enforce_netpol:
            self.apply_netpol()
        self._make_volumes(pod)
        for c in spec.get("initContainers") or []:
            self._run_init(pod, c)
        for c in spec.get("containers") or []:
            cname = self._create_container(pod, c, init=False)
            pod.containers[c["name"]] = cname
        for c in spec.get("containers") or []:
            podman("start", pod.containers[c["name"]], timeout=120)
            pod.container_started_at[c["name"]] = time.monotonic()
            pod.restarts.setdefault(c["name"], 0)
            pod.probes[c["name"]] = [Probe(k, c[f"{k}Probe"]) for k in ("startup", "readiness", "liveness")
                                     if c.get(f"{k}Probe")]
            pod.started[c["name"]] = not c.get("startupProbe")
        pod.phase = "Running"
        self._publish(pod)
        pod.thread = threading.Thread(target=self._kubelet_loop, args=(pod,), name=f"kubelet-{name}", daemon=True)
        pod.thread.start()
        return pod

    def _conditions(self, initialized: bool, ready: bool) -> list[dict]:
        t = _now()

        def c(kind: str, ok: bool) -> dict:
            return {"type": kind, "status": "True" if ok else "False", "lastTransitionTime": t}
        return [c("PodScheduled", True), c("Initialized", initialized), c("ContainersReady", ready), c("Ready", ready)]

    def _publish(self, pod: Pod) -> None:
        m = pod.manifest
        st = m["status"]
        st["phase"] = pod.phase
        initialized = pod.phase in ("Running", "Succeeded", "Failed")
        old = {c["type"]: c for c in st.get("conditions") or []}
        conds = self._conditions(initialized, pod.ready)
        for c in conds:  # keep lastTransitionTime when nothing changed
            if c["type"] in old and old[c["type"]]["status"] == c["status"]:
                c["lastTransitionTime"] = old[c["type"]]["lastTransitionTime"]
        st["conditions"] = conds
        if pod.reason:
            st["reason"] = pod.reason
        st["containerStatuses"] = [
            {"name": c["name"], "image": c.get("image"), "imageID": self.image(c.get("image", "")),
             "containerID": f"podman://{pod.containers.get(c['name'], '')}",
             "ready": pod.ready and pod.started.get(c["name"], False), "started": pod.started.get(c["name"], False),
             "restartCount": pod.restarts.get(c["name"], 0),
             "state": ({"running": {"startedAt": st.get("startTime")}} if pod.phase == "Running" else
                       {"terminated": {"exitCode": pod.exit_codes.get(c["name"], 0)}} if pod.phase in (
                           "Succeeded", "Failed") else {"waiting": {"reason": pod.reason or "PodInitializing"}})}
            for c in m["spec"].get("containers") or []]
        if self.kube and not self.closed:
            self.kube.add(m)
        if pod.owner and pod.owner in self.statefulsets and self.kube and not self.closed:
            self._publish_sts(self.statefulsets[pod.owner])

    def _sec(self, pod: Pod, c: dict) -> dict:
        """The effective securityContext: the container's over the pod's."""
        psc = pod.spec.get("securityContext") or {}
        csc = c.get("securityContext") or {}
        out = {k: psc[k] for k in ("runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile") if k in psc}
        out.update(csc)
        return out

    def _make_volumes(self, pod: Pod) -> None:
        base = self.workdir / "pods" / f"{pod.name}-{pod.manifest['metadata']['uid']}"
        base.mkdir(parents=True)
        pod.dirs.append(base)
        fs_group = (pod.spec.get("securityContext") or {}).get("fsGroup")
        vols: dict[str, tuple[Path, bool]] = {}
        for v in pod.spec.get("volumes") or []:
            d = base / "volumes" / v["name"]
            if "emptyDir" in v:
                d.mkdir(parents=True)
                # the kubelet: root-owned, group fsGroup with setgid, world-writable (0777 without fsGroup)
                os.chown(d, 0, fs_group if fs_group is not None else 0)
                os.chmod(d, 0o2777 if fs_group is not None else 0o777)
                vols[v["name"]] = (d, False)
            elif "persistentVolumeClaim" in v:
                d = self.workdir / "pvc" / v["persistentVolumeClaim"]["claimName"]
                if not d.exists():
                    d.mkdir(parents=True)
                    os.chown(d, 0, 0)
                    os.chmod(d, 0o755)
                if fs_group is not None and d.stat().st_gid != fs_group:  # fsGroupChangePolicy OnRootMismatch
                    for p in [d, *d.rglob("*")]:
                        os.lchown(p, -1, fs_group)
                        if not p.is_symlink():
                            os.chmod(p, p.stat().st_mode | 0o060 | (0o2010 if p.is_dir() else 0))
                vols[v["name"]] = (d, False)
            elif "secret" in v or "configMap" in v:
                src = v.get("secret") or v.get("configMap")
                ref = src.get("secretName") if "secret" in v else src.get("name")
                data = (self.secrets if "secret" in v else self.configmaps).get(ref)
                if data is None:
                    if src.get("optional"):
                        data = {}
                    else:
                        raise PodError(f"pod {pod.name}: volume {v['name']}: {ref!r} not found in the render")
                d.mkdir(parents=True)
                mode = src.get("defaultMode", 0o644)
                items = src.get("items") or [{"key": k, "path": k} for k in data]
                for it in items:
                    f = d / it["path"]
                    f.parent.mkdir(parents=True, exist_ok=True)
                    f.write_bytes(data[it["key"]])
                    os.chown(f, 0, fs_group if fs_group is not None else 0)
                    os.chmod(f, it.get("mode", mode))
                vols[v["name"]] = (d, True)
            else:
                raise PodError(f"pod {pod.name}: volume {v['name']}: only emptyDir, PVC, secret and configMap")
        sa_name = pod.spec.get("serviceAccountName") or "default"
        sa = self.serviceaccounts.get(sa_name) or {}
        automount = pod.spec.get("automountServiceAccountToken", sa.get("automountServiceAccountToken", True))
        if automount:
            assert self.kube
            d = base / "serviceaccount"
            d.mkdir()
            (d / "token").write_text(self.kube.sa_token(self.namespace, sa_name))
            (d / "ca.crt").write_bytes(self.kube.ca_pem)
            (d / "namespace").write_text(self.namespace)
            for f in d.iterdir():
                os.chown(f, 0, fs_group if fs_group is not None else 0)
                os.chmod(f, 0o644)  # the kube-api-access volume's defaultMode (420)
            vols["__sa__"] = (d, True)
        pod.volumes = {k: (str(p), ro) for k, (p, ro) in vols.items()}

    def _env(self, pod: Pod, c: dict) -> dict[str, str]:
        env: dict[str, str] = {"KUBERNETES_SERVICE_HOST": self.gateway, "KUBERNETES_SERVICE_PORT": "443",
                               "KUBERNETES_SERVICE_PORT_HTTPS": "443"}
        md = pod.manifest["metadata"]
        for ef in c.get("envFrom") or []:
            pre = ef.get("prefix", "")
            if "secretRef" in ef:
                data = self.secrets.get(ef["secretRef"]["name"], {})
            else:
                data = self.configmaps.get(ef["configMapRef"]["name"], {})
            env.update({pre + k: v.decode() for k, v in data.items()})
        for e in c.get("env") or []:
            name = e["name"]
            if "value" in e:
                env[name] = expand(str(e["value"]), env)
                continue
            vf = e.get("valueFrom") or {}
            if "fieldRef" in vf:
                path = vf["fieldRef"]["fieldPath"]
                fields = {"metadata.name": md["name"], "metadata.namespace": md["namespace"],
                          "metadata.uid": md.get("uid", ""), "status.podIP": pod.ip, "status.hostIP": self.gateway,
                          "spec.nodeName": self.node_name,
                          "spec.serviceAccountName": pod.spec.get("serviceAccountName", "default")}
                m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
                if m:
                    env[name] = (md.get(m.group(1)) or {}).get(m.group(2), "")
                elif path in fields:
                    env[name] = fields[path]
                else:
                    raise PodError(f"pod {pod.name}: env {name}: fieldRef {path} is not supported")
            elif "secretKeyRef" in vf or "configMapKeyRef" in vf:
                ref = vf.get("secretKeyRef") or vf.get("configMapKeyRef")
                store = self.secrets if "secretKeyRef" in vf else self.configmaps
                val = (store.get(ref["name"]) or {}).get(ref["key"])
                if val is None:
                    if ref.get("optional"):
                        continue
                    raise PodError(f"pod {pod.name}: CreateContainerConfigError: env {name}: "
                                   f"{ref['name']}/{ref['key']} not found")
                env[name] = val.decode()
            elif "resourceFieldRef" in vf:
                env[name] = "0"
        return env

    def _create_container(self, pod: Pod, c: dict, *, init: bool) -> str:
        cname = f"{pod.podman_pod}-{'init-' if init else ''}{c['name']}"
        sc = self._sec(pod, c)
        psc = pod.spec.get("securityContext") or {}
        image = self.image(c["image"])
        args = ["create", "--pod", pod.podman_pod, "--name", cname, "--pull", "never",
                "--label", f"podlab.run={self.id}"]
        user = sc.get("runAsUser")
        group = sc.get("runAsGroup")
        if user is None and sc.get("runAsNonRoot"):
            img_user = podman("image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip()
            uid = img_user.split(":")[0]
            if not uid.isdigit():
                raise PodError(f"pod {pod.name}: CreateContainerConfigError: container has runAsNonRoot and image "
                               f"has non-numeric user ({img_user or 'none'}), cannot verify user is non-root")
            user = int(uid)
        if sc.get("runAsNonRoot") and user == 0:
            raise PodError(f"pod {pod.name}: CreateContainerConfigError: container has runAsNonRoot and image "
                           "will run as root")
        if user is not None:
            args += ["--user", f"{user}:{group}" if group is not None else str(user)]
        for g in ([psc["fsGroup"]] if "fsGroup" in psc else []) + list(psc.get("supplementalGroups") or []):
            args += ["--group-add", str(g)]
        if sc.get("readOnlyRootFilesystem"):
            args += ["--read-only", "--read-only-tmpfs=false"]
        caps = sc.get("capabilities") or {}
        for cap in caps.get("drop") or []:
            args += ["--cap-drop", cap]
        for cap in caps.get("add") or []:
            args += ["--cap-add", cap]
        if sc.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        if sc.get("privileged"):
            args += ["--privileged"]
        seccomp = (sc.get("seccompProfile") or {}).get("type")
        if seccomp in (None, "Unconfined"):
            args += ["--security-opt", "seccomp=unconfined"]  # the kubelet's default without a profile
        elif seccomp == "Localhost":
            args += ["--security-opt", f"seccomp={sc['seccompProfile']['localhostProfile']}"]
        vols = pod.volumes
        for vm in c.get("volumeMounts") or []:
            if vm["name"] not in vols:
                raise PodError(f"pod {pod.name}: container {c['name']}: no volume {vm['name']}")
            src, ro = vols[vm["name"]]
            if vm.get("subPath"):
                src = str(Path(src) / vm["subPath"])
            args += ["-v", f"{src}:{vm['mountPath']}:{'ro' if ro or vm.get('readOnly') else 'rw'}"]
        if "__sa__" in vols:
            args += ["-v", f"{vols['__sa__'][0]}:{SA_DIR}:ro"]
        if c.get("workingDir"):
            args += ["--workdir", c["workingDir"]]
        env = self._env(pod, c)
        envfile = self.workdir / f".env-{secrets.token_hex(6)}"
        fd = os.open(envfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            for k, v in env.items():
                if "\n" in v:
                    raise PodError(f"pod {pod.name}: env {k}: a value with a newline cannot go through --env-file")
                fh.write(f"{k}={v}\n")
        args += ["--env-file", str(envfile)]
        if c.get("command"):
            args += ["--entrypoint", json.dumps([expand(a, env) for a in c["command"]])]
        args.append(image)
        args += [expand(str(a), env) for a in c.get("args") or []]
        try:
            podman(*args, timeout=120)
        finally:
            envfile.unlink()
        return cname

    def _run_init(self, pod: Pod, c: dict, attempts: int = 3) -> None:
        """An init container runs to completion before the next; a failure is retried with a back-off
        (restartPolicy Always), then the pod is reported as Init:CrashLoopBackOff."""
        pod.phase, pod.reason = "Pending", f"Init:{c['name']}"
        self._publish(pod)
        cname = self._create_container(pod, c, init=True)
        delay = 1.0
        for attempt in range(attempts):
            proc = podman("start", "--attach", cname, check=False, timeout=300)
            rc = int(podman("inspect", "--format", "{{.State.ExitCode}}", cname).stdout.strip() or 1)
            logs = podman("logs", cname, check=False).stdout + podman("logs", cname, check=False).stderr
            pod.init_logs[c["name"]] = logs or (proc.stdout + proc.stderr)
            if rc == 0:
                pod.reason = ""
                return
            self.log(f"{pod.name}: init container {c['name']} exited {rc} (attempt {attempt + 1}): "
                     f"{pod.init_logs[c['name']].strip()[-300:]}")
            pod.reason = "Init:CrashLoopBackOff"
            self._publish(pod)
            time.sleep(delay)
            delay *= 2
        raise PodError(f"pod {pod.name}: Init:CrashLoopBackOff: init container {c['name']} exited {rc}: "
                       f"{pod.init_logs[c['name']].strip()[-500:]}")

    # -- probes and restarts (the kubelet's loop for one pod) ---------------------------------
    def _kubelet_loop(self, pod: Pod) -> None:
        containers = {c["name"]: c for c in pod.spec.get("containers") or []}
        last_state_check = 0.0
        while not pod.stop.wait(0.5):
            now = time.monotonic()
            if now - last_state_check > 2:
                last_state_check = now
                for name, cname in pod.containers.items():
                    state = podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", cname,
                                   check=False).stdout.split()
                    if pod.stop.is_set():
                        return
                    if state and state[0] in ("exited", "stopped"):
                        self.log(f"{pod.name}: container {name} exited {state[1:]}, restarting")
                        self._restart(pod, name, containers[name], kill=False)
            ready = True
            for name, probes in pod.probes.items():
                c_ready = self._run_probes(pod, name, containers[name], probes, now)
                ready = ready and c_ready
            if pod.stop.is_set():
                return
            if ready != pod.ready:
                pod.ready = ready
                self.log(f"{pod.name}: Ready={ready}")
                self._publish(pod)

    def _run_probes(self, pod: Pod, name: str, c: dict, probes: list[Probe], now: float) -> bool:
        """Run the probes that are due; the container's readiness."""
        started_at = pod.container_started_at.get(name, now)
        for p in probes:
            if (p.kind == "startup") == pod.started[name]:
                continue  # the startup probe runs until it succeeds, the others only after that
            if now - started_at < float(p.spec.get("initialDelaySeconds", 0)) or now < p.next_at:
                continue
            p.next_at = now + float(p.spec.get("periodSeconds", 10))
            ok, detail = self.probe(pod, name, p.spec)
            if pod.stop.is_set():
                return False
            p.last = "ok" if ok else detail
            p.successes, p.failures = (p.successes + 1, 0) if ok else (0, p.failures + 1)
            threshold = int(p.spec.get("failureThreshold", 3))
            if p.kind == "startup":
                if ok:
                    pod.started[name] = True
                    self.log(f"{pod.name}: container {name} started (startup probe)")
                elif p.failures >= threshold:
                    self.log(f"{pod.name}: startup probe failed {p.failures}x ({detail}), restarting {name}")
                    self._restart(pod, name, c, kill=True)
                    return False
            elif p.kind == "liveness" and not ok and p.failures >= threshold:
                self.log(f"{pod.name}: liveness probe failed {p.failures}x ({detail}), restarting {name}")
                self._restart(pod, name, c, kill=True)
                return False
            elif p.kind == "readiness":
                if ok and p.successes >= int(p.spec.get("successThreshold", 1)):
                    p.passing = True
                elif not ok and p.failures >= threshold:
                    p.passing = False
        if not pod.started[name]:
            return False
        return all(p.passing for p in probes if p.kind == "readiness")

    def _restart(self, pod: Pod, name: str, c: dict, *, kill: bool) -> None:
        cname = pod.containers[name]
        pod.ready = False
        if kill:
            grace = int(pod.spec.get("terminationGracePeriodSeconds", 30))
            self._pre_stop(pod, name, c, grace)
            podman("stop", "-t", str(grace), cname, check=False, timeout=grace + 60)
        pod.restarts[name] = pod.restarts.get(name, 0) + 1
        backoff = min(10 * 2 ** (pod.restarts[name] - 1), 60)
        self._publish(pod)
        if pod.stop.wait(backoff if pod.restarts[name] > 1 else 1):
            return
        podman("start", cname, check=False, timeout=120)
        pod.container_started_at[name] = time.monotonic()
        pod.started[name] = not c.get("startupProbe")
        for p in pod.probes.get(name, []):
            p.successes = p.failures = 0
            p.next_at = 0.0
            p.passing = False
        self._publish(pod)

    def probe(self, pod: Pod, container: str, spec: dict) -> tuple[bool, str]:
        """One probe (exec, httpGet from the node, tcpSocket from the node): (ok, detail)."""
        timeout = float(spec.get("timeoutSeconds", 1))
        if "exec" in spec:
            try:
                proc = podman("exec", pod.containers[container], *spec["exec"]["command"], check=False,
                              timeout=timeout + 5)
            except subprocess.TimeoutExpired:
                return False, f"exec probe timed out after {timeout:g}s"
            return proc.returncode == 0, (proc.stdout + proc.stderr).strip()[-200:] or f"exit {proc.returncode}"
        if "httpGet" in spec:
            h = spec["httpGet"]
            port = self._port(pod, container, h.get("port"))
            scheme = (h.get("scheme") or "HTTP").lower()
            url = f"{scheme}://{h.get('host') or pod.ip}:{port}{h.get('path', '/')}"
            req = urllib.request.Request(url, headers={x["name"]: x["value"] for x in h.get("httpHeaders") or []})
            try:
                import ssl
                ctx = ssl._create_unverified_context() if scheme == "https" else None  # noqa: S323 - as the kubelet
                with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
                    return 200 <= resp.status < 400, f"HTTP {resp.status}"
            except urllib.error.HTTPError as exc:
                return 200 <= exc.code < 400, f"HTTP {exc.code}"
            except (OSError, ValueError) as exc:
                return False, f"{url}: {exc}"
        if "tcpSocket" in spec:
            port = self._port(pod, container, spec["tcpSocket"].get("port"))
            try:
                with socket.create_connection((pod.ip, port), timeout=timeout):
                    return True, "connected"
            except OSError as exc:
                return False, str(exc)
        return False, "unsupported probe"

    def _port(self, pod: Pod, container: str, port: Any) -> int:
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        for c in pod.spec.get("containers") or []:
            for p in c.get("ports") or []:
                if p.get("name") == port:
                    return int(p["containerPort"])
        raise PodError(f"pod {pod.name}: no container port named {port}")

    # -- deletion -----------------------------------------------------------------------------
    def _pre_stop(self, pod: Pod, name: str, c: dict, grace: float) -> None:
        hook = ((c.get("lifecycle") or {}).get("preStop")) or {}
        if not hook:
            return
        t0 = time.monotonic()
        if "exec" in hook:
            try:
                proc = podman("exec", pod.containers[name], *hook["exec"]["command"], check=False, timeout=grace)
                self.log(f"{pod.name}: preStop of {name} exited {proc.returncode}: "
                         f"{(proc.stdout + proc.stderr).strip()[-400:]}")
            except subprocess.TimeoutExpired:
                self.log(f"{pod.name}: preStop of {name} did not finish within the grace period ({grace:g}s)")
        elif "httpGet" in hook:
            ok, detail = self.probe(pod, name, {"httpGet": hook["httpGet"], "timeoutSeconds": grace})
            self.log(f"{pod.name}: preStop httpGet of {name}: {detail}")
        elif "sleep" in hook:
            time.sleep(min(float(hook["sleep"].get("seconds", 0)), grace))
        self.log(f"{pod.name}: preStop of {name} took {time.monotonic() - t0:.1f}s")

    def delete_pod(self, name: str, *, recreate: bool = True, grace: float | None = None) -> None:
        """What `kubectl delete pod` makes a kubelet do: Ready off, deletionTimestamp, the preStop hooks,
        SIGTERM, the rest of terminationGracePeriodSeconds, SIGKILL; then the pod is gone from the API.
        A StatefulSet pod is then recreated with the same name (``recreate``) when its ordinal is wanted."""
        pod = self.pods[name]
        g = float(grace if grace is not None else pod.spec.get("terminationGracePeriodSeconds", 30))
        pod.stop.set()
        if pod.thread:
            pod.thread.join(timeout=30)
        pod.ready = False
        pod.manifest["metadata"]["deletionTimestamp"] = _now()
        pod.manifest["metadata"]["deletionGracePeriodSeconds"] = int(g)
        self._publish(pod)
        self.log(f"{name}: deleting (grace {g:g}s)")
        t0 = time.monotonic()
        containers = {c["name"]: c for c in pod.spec.get("containers") or []}
        hooks = [threading.Thread(target=self._pre_stop, args=(pod, n, containers[n], g), daemon=True)
                 for n in pod.containers]
        for t in hooks:
            t.start()
        for t in hooks:
            t.join(timeout=g)
        left = max(2, int(g - (time.monotonic() - t0)))  # the kubelet gives at least 2 s after a preStop
        stops = [threading.Thread(target=lambda cn=cn: podman("stop", "-t", str(left), cn, check=False,
                                                              timeout=left + 60), daemon=True)
                 for cn in pod.containers.values()]
        for t in stops:
            t.start()
        for t in stops:
            t.join()
        codes = {n: podman("inspect", "--format", "{{.State.ExitCode}}", cn, check=False).stdout.strip()
                 for n, cn in pod.containers.items()}
        self.log(f"{name}: containers stopped after {time.monotonic() - t0:.1f}s, exit codes {codes}")
        podman("pod", "rm", "-f", "-t", "0", pod.podman_pod, check=False, timeout=120)
        assert self.kube
        self.kube.remove("Pod", name, self.namespace)
        with self.lock:
            del self.pods[name]
        for d in pod.dirs:
            shutil.rmtree(d, ignore_errors=True)
        if pod.owner:
            self._publish_sts(self.statefulsets[pod.owner])
            if recreate and pod.ordinal is not None and pod.ordinal < int(
                    self.statefulsets[pod.owner]["spec"].get("replicas", 1)):
                self.create_sts_pod(pod.owner, pod.ordinal, revision=pod.revision)

    # -- one-shot pods (helm test) ------------------------------------------------------------
    def run_hook_pod(self, name: str, timeout: float = 120) -> tuple[int, str]:
        """Run a rendered hook Pod (e.g. the helm test) to completion: (exit code, logs)."""
        manifest = copy.deepcopy(next(o for o in self.hooks if o.get("kind") == "Pod" and o["metadata"]["name"] == name))
        pod = self.create_pod(manifest)
        pod.stop.set()
        cname = next(iter(pod.containers.values()))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if podman("inspect", "--format", "{{.State.Status}}", cname).stdout.strip() in ("exited", "stopped"):
                break
            time.sleep(0.5)
        rc = int(podman("inspect", "--format", "{{.State.ExitCode}}", cname).stdout.strip() or -1)
        proc = podman("logs", cname, check=False)
        pod.phase = "Succeeded" if rc == 0 else "Failed"
        pod.exit_codes[next(iter(pod.containers))] = rc
        self._publish(pod)
        podman("pod", "rm", "-f", "-t", "0", pod.podman_pod, check=False, timeout=60)
        with self.lock:
            del self.pods[name]
        assert self.kube
        self.kube.remove("Pod", name, self.namespace)
        return rc, proc.stdout + proc.stderr

    def outsider_ip(self) -> str:
        """The address run_outsider uses (the top of the subnet, far from the pods' fixed addresses)."""
        assert self.subnet is not None
        return str(self.subnet.broadcast_address - 5)

    def run_outsider(self, image: str, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
        """A container on the run's network that is no pod of the release (no labels, no policy)."""
        return podman("run", "--rm", "--network", self.network, "--ip", self.outsider_ip(), "--pull", "never",
                      "--label", f"podlab.run={self.id}", "--user", "10000:10000", "--cap-drop", "ALL", image, *argv,
                      check=False, timeout=timeout)

    # -- NetworkPolicies ----------------------------------------------------------------------
    def endpoints(self) -> list:
        """Every pod that exists or that a StatefulSet wants, with its IP and labels."""
        seen = {}
        for sts_name, sts in self.statefulsets.items():
            tmpl = sts["spec"]["template"]
            for o in range(max(int(sts["spec"].get("replicas", 1)), 1)):
                pn = f"{sts_name}-{o}"
                seen[pn] = {"metadata": {"name": pn, "namespace": self.namespace,
                                         "labels": (tmpl.get("metadata") or {}).get("labels") or {}},
                            "spec": tmpl["spec"], "status": {"podIP": self.ip_of(pn)}}
        for p in list(self.pods.values()):
            seen[p.name] = p.manifest
        return [pod_endpoint(m) for m in seen.values()]

    def apply_netpol(self) -> None:
        """(Re)load every running pod's nft table from the evaluator's verdicts."""
        eps = self.endpoints()
        by_name = {e.name: e for e in eps}
        for pod in list(self.pods.values()):
            infra = podman("pod", "inspect", "--format", "{{.InfraContainerID}}", pod.podman_pod,
                           check=False).stdout.strip()
            if not infra:
                continue
            pid = podman("inspect", "--format", "{{.State.Pid}}", infra, check=False).stdout.strip()
            if not pid or pid == "0":
                continue
            script = netpol.ruleset(self.table, by_name[pod.name], eps, self.policies, self.gateway)
            netpol.apply(int(pid), script, self.table)

    # -- backends for the fake API server -----------------------------------------------------
    def _exec_backend(self, namespace: str, pod_name: str, container: str | None, argv: list) -> list:
        pod = self.pods.get(pod_name) if namespace == self.namespace else None
        if pod is None:
            raise LookupError(f'pods "{pod_name}" not found')
        cname = pod.containers.get(container or next(iter(pod.containers)))
        if cname is None:
            raise LookupError(f"container {container} is not valid for pod {pod_name}")
        return ["env", f"CONTAINERS_CONF={podman_env()['CONTAINERS_CONF']}", "podman", "exec", "-i", cname, *argv]

    def _proxy_backend(self, namespace: str, pod_name: str, port: int | None) -> tuple[str, int] | None:
        pod = self.pods.get(pod_name) if namespace == self.namespace else None
        if pod is None:
            return None
        if port is None:
            port = next((int(p["containerPort"]) for c in pod.spec.get("containers") or []
                         for p in c.get("ports") or []), 80)
        return pod.ip, port

    # -- for tests ----------------------------------------------------------------------------
    def exec(self, pod_name: str, argv: list[str], container: str | None = None, timeout: float = 60,
             input: str | None = None) -> subprocess.CompletedProcess:
        pod = self.pods[pod_name]
        cname = pod.containers[container or next(iter(pod.containers))]
        return podman("exec", *(["-i"] if input is not None else []), cname, *argv, check=False, timeout=timeout,
                      input=input)

    def logs(self, pod_name: str, container: str | None = None) -> str:
        pod = self.pods[pod_name]
        cname = pod.containers[container or next(iter(pod.containers))]
        proc = podman("logs", cname, check=False)
        return proc.stdout + proc.stderr

    def wait_ready(self, names: list[str] | None = None, timeout: float = 180) -> None:
        names = names if names is not None else [n for n in self.pods if self.pods[n].owner]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(n in self.pods and self.pods[n].ready for n in names):
                return
            time.sleep(0.5)
        raise PodError(self.describe(names, f"not Ready within {timeout:g}s"))

    def describe(self, names: list[str], why: str) -> str:
        lines = [f"pods {', '.join(names)}: {why}"]
        for n in names:
            pod = self.pods.get(n)
            if pod is None:
                lines.append(f"- {n}: does not exist")
                continue
            probes = {c: [f"{p.kind}: {p.last[-200:]}" for p in ps] for c, ps in pod.probes.items()}
            lines.append(f"- {n}: phase {pod.phase} {pod.reason} ready={pod.ready} restarts={pod.restarts} "
                         f"probes={probes}")
            for c in pod.containers:
                lines.append("  logs: " + self.logs(n, c).strip()[-1500:].replace("\n", "\n        "))
        lines += ["events:", *self.events[-40:]]
        return "\n".join(lines)


def _served(obj: dict) -> bool:
    """Objects the fake API server serves from the render (Pods and StatefulSets come from the runner)."""
    from tests.fakekube import _BY_KIND, _group_version

    g, _v = _group_version(obj.get("apiVersion", ""))
    return (g, obj.get("kind")) in _BY_KIND and obj.get("kind") not in ("Pod", "StatefulSet")


def render(chart: str | Path, release: str, namespace: str, values: list[str | Path] = (),
           set_values: list[str] = ()) -> str:
    """`helm template` (helm from .tools/bin or PATH)."""
    helm = shutil.which("helm") or str(Path(__file__).resolve().parents[2] / ".tools" / "bin" / "helm")
    args = [helm, "template", release, str(chart), "-n", namespace]
    for v in values:
        args += ["-f", str(v)]
    for s in set_values:
        args += ["--set", s]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"helm template failed: {proc.stderr.strip()[-1500:]}")
    return proc.stdout


def dump(objs: list[dict]) -> str:
    return yaml.safe_dump_all(objs, sort_keys=False)
