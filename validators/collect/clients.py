"""Facts for `vmq-validate clients`: what every VerneMQ node says about its clients.

Two sources give the same fact shapes, so the replay tests exercise the checks exactly as a
live run does:

* :func:`sample_cluster` asks every node of a :class:`~validators.collect.targets.ClusterSpec`
  (targets file, or the pods of a live cluster, see :func:`kube_sources`) for ``/status.json``, ``/metrics``, ``/health``,
  ``/health/listeners_full_cluster``, ``/api/v1/listener/show``, ``/api/v1/cluster/show`` and,
  once per round from the first node that answers, the cluster-wide ``/api/v1/session/show``
  (streamed, with the ``--node`` column so sessions can be attributed to nodes).
  The command samples ``--samples`` times, ``--sample-interval`` apart, so counters can be compared.
* :func:`load_replay` reads captured answers (``tests/fixtures/vernemq/2.1.2/<phase>/``), one
  sample per phase directory, in the order given.

Facts (all keys start with ``clients.``):
  ``clients.samples``    list[Sample], oldest first
  ``clients.expected``   node names the operator told us about (targets file / pods); may be empty
  ``clients.canaries``   list[CanaryRun] or NotApplicable
  ``clients.heartbeat``  HeartbeatRun or NotApplicable
  ``clients.service``    ServiceFacts (the MQTT Service in front of the pods) or NotApplicable
A collector never decides: an answer that cannot be read becomes an Unavailable with the reason.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlparse

from ..core.addr import url as node_url
from ..core.model import Facts, NotApplicable, Unavailable
from ..core.secret import API_KEY, Secret
from ..vernemq.http import (DEFAULT_MAX_BYTES, DEFAULT_STREAM_MAX_BYTES, DEFAULT_STREAM_TIMEOUT, HttpBadBody,
                             HttpBadStatus, HttpFailure, HttpRedirect, HttpTimeout, HttpTooLarge, JsonError, NodeHttp,
                             loads, session_show_path)
from ..vernemq.parse import (Health, ListenerConns, Member, Metrics, NodeStatus, ParseError, SESSION_COLUMNS,
                             parse_cluster_show, parse_health, parse_listener_show, parse_metrics,
                             parse_status_json)
from ..vernemq.sessions import SessionSummary, merge_side, reconcile_stream
from .capture import KEY_REFUSED, CaptureDir
from .targets import ClusterSpec

#: the counters and gauges the checks read, by their name without the ``vernemq_`` prefix
COUNTERS = ("socket_open", "socket_close", "socket_close_timeout", "socket_error", "mqtt_connect_received",
            "mqtt_connack_sent", "client_expired", "client_keepalive_expired", "netsplit_detected",
            "netsplit_resolved", "queue_setup", "queue_teardown")
GAUGES = ("active_mqtt_connections", "active_mqttws_connections", "total_active_connections", "queue_processes",
          "system_wallclock")
DEFAULT_SESSION_LIMIT = 1_000_000


@dataclass(frozen=True)
class KeyAnswer:
    """How a node answered a request that carried the API key (200: accepted, 401: refused)."""

    accepted: bool
    http_status: int
    path: str


@dataclass
class NodeObservation:
    """Everything one node answered in one sample. Each field may be an Unavailable."""

    name: str
    url: str | None = None
    status: Mapping[str, NodeStatus] | Unavailable = Unavailable("not asked")
    counters: Mapping[str, float | None] | Unavailable = Unavailable("not asked")
    health: Health | Unavailable = Unavailable("not asked")
    health_full: Health | Unavailable = Unavailable("not asked")
    listeners: list[ListenerConns] | Unavailable = Unavailable("not asked")
    cluster: list[Member] | Unavailable = Unavailable("not asked")
    #: KeyAnswer, NotApplicable (no key given) or Unavailable (no answer at all)
    api_key: Any = Unavailable("not asked")

    @property
    def reachable(self) -> bool:
        return not isinstance(self.status, Unavailable)

    def own_status(self) -> NodeStatus | None:
        if isinstance(self.status, Unavailable):
            return None
        return self.status.get(self.name)


def view_of(obs: NodeObservation) -> tuple[set[str], set[str]]:
    """(members ``obs`` sees running, members it sees not running) from its own status.json entry
    (the entries it lists, its mystatus) and its cluster/show. Not running wins over running."""
    up: set[str] = set()
    down: set[str] = set()
    if not isinstance(obs.status, Unavailable):
        up.update(obs.status)
        own = obs.own_status()
        if own is not None:
            for peer, ok in own.mystatus.items():
                (up if ok else down).add(peer)
    if not isinstance(obs.cluster, Unavailable):
        for m in obs.cluster:
            (up if m.running else down).add(m.node)
    # a member cluster/show or mystatus knows but status.json leaves out is not reachable from obs
    if not isinstance(obs.status, Unavailable):
        down.update(n for n in up if n not in obs.status)
    return up - down, down


@dataclass
class Sample:
    label: str
    nodes: dict[str, NodeObservation] = field(default_factory=dict)
    sessions: SessionSummary | Unavailable = Unavailable("not asked")
    sessions_from: str | None = None
    #: node -> the node whose session/show answer lists its sessions (each answer covers the nodes its node
    #: sees running; during a netsplit one answer per side). Empty: not known, the answer covers every node.
    session_sources: dict[str, str] = field(default_factory=dict)
    taken_at: float | None = None

    def cover(self, source: str, summary: SessionSummary) -> list[str]:
        """Record the session/show answer of ``source`` (the first one, or another side merged into it):
        the nodes it covers that no earlier answer covered. Returns them."""
        obs = self.nodes.get(source)
        seen = view_of(obs)[0] if obs is not None and obs.reachable else {source}
        seen.add(source)
        new = sorted(n for n in seen if n not in self.session_sources)
        if isinstance(self.sessions, SessionSummary) and self.sessions is not summary:
            merge_side(self.sessions, summary, new)
        else:
            self.sessions, self.sessions_from = summary, source
        for n in new:
            self.session_sources[n] = source
        return new

    def uncovered(self) -> list[str]:
        """Answering nodes whose sessions no session/show answer lists yet (the other side of a netsplit)."""
        return [n for n, o in self.nodes.items()
                if o.reachable and n in o.status and n not in self.session_sources]

    def status_entry(self, node: str) -> NodeStatus | None:
        """``node``'s status.json entry: from its own answer first, else from any other node's answer."""
        obs = self.nodes.get(node)
        if obs is not None and obs.own_status() is not None:
            return obs.own_status()
        for other in self.nodes.values():
            if not isinstance(other.status, Unavailable) and node in other.status:
                return other.status[node]
        return None

    def known_nodes(self) -> list[str]:
        """Every node name this sample mentions: answering nodes, status.json keys, mystatus, cluster/show."""
        names: dict[str, None] = {}
        for obs in self.nodes.values():
            names[obs.name] = None
            if not isinstance(obs.status, Unavailable):
                for st in obs.status.values():
                    names[st.node] = None
                    for peer in st.mystatus:
                        names[peer] = None
            if not isinstance(obs.cluster, Unavailable):
                for m in obs.cluster:
                    names[m.node] = None
        return list(names)


@dataclass(frozen=True)
class ServiceFacts:
    """The Service in front of the MQTT port, when the source knows it (live cluster)."""

    name: str
    type: str
    external_traffic_policy: str | None = None
    health_check_node_port: int | None = None
    probe_annotations: Mapping[str, str] = field(default_factory=dict)


def counters_from_metrics(metrics: Metrics) -> dict[str, float | None]:
    """The totals the checks read (summed over label sets, e.g. every connack return code)."""
    out: dict[str, float | None] = {}
    for name in COUNTERS + GAUGES:
        out[name] = metrics.total("vernemq_" + name)
    return out


# --------------------------------------------------------------------------- live

def _try(fn: Callable[[], Any], what: str) -> Any:
    try:
        return fn()
    except HttpFailure as exc:
        return Unavailable(exc.reason)
    except ParseError as exc:
        return Unavailable(f"{what}: the answer is malformed ({exc}); is this a VerneMQ 2.1 node?")


def _with_key(http: NodeHttp, path: str, parse: Callable[[Any], Any]) -> tuple[Any, KeyAnswer | Unavailable]:
    """(parsed answer or Unavailable, how the node took the key) for GET ``path`` with the API key."""
    try:
        doc = http.get_json(path, auth=True)
    except HttpFailure as exc:
        if exc.status == 401:
            return Unavailable(f"GET {path}: {KEY_REFUSED}"), KeyAnswer(False, 401, path)
        # any other failure (no answer, 403 from the API server's proxy, 5xx) says nothing about the key
        return Unavailable(exc.reason), Unavailable(exc.reason)
    try:
        return parse(doc), KeyAnswer(True, 200, path)
    except ParseError as exc:
        return Unavailable(f"{path}: the answer is malformed ({exc}); is this a VerneMQ 2.1 node?"), \
            KeyAnswer(True, 200, path)


def observe_node(name: str, http: NodeHttp, with_api: bool) -> NodeObservation:
    obs = NodeObservation(name=name, url=http.base_url)
    obs.status = _try(lambda: parse_status_json(http.get_json("/status.json")), "/status.json")
    obs.counters = _try(lambda: counters_from_metrics(parse_metrics(http.get("/metrics")[1])), "/metrics")

    def health(path: str) -> Health:
        code, doc = http.get_json_status(path, ok=(200, 503))
        return parse_health(doc, code, what=path)

    obs.health = _try(lambda: health("/health"), "/health")
    obs.health_full = _try(lambda: health("/health/listeners_full_cluster"), "/health/listeners_full_cluster")
    if with_api:
        obs.cluster, obs.api_key = _with_key(http, "/api/v1/cluster/show", parse_cluster_show)
        obs.listeners, listener_key = _with_key(http, "/api/v1/listener/show", parse_listener_show)
        if not isinstance(obs.api_key, KeyAnswer):
            obs.api_key = listener_key
    else:
        why = Unavailable("no API key given (api_key_env / api_key_file in the targets file)")
        obs.listeners, obs.cluster = why, why
        obs.api_key = NotApplicable(why.reason)
    return obs


def fetch_sessions(http: NodeHttp, limit: int, online_at: dict[str, str] | None = None) -> SessionSummary:
    path = session_show_path(SESSION_COLUMNS, limit=limit)
    return reconcile_stream(http.stream(path, auth=True), limit=limit, online_at=online_at)


def sample_cluster(clients: Mapping[str, NodeHttp], label: str, with_api: bool,
                   session_limit: int = DEFAULT_SESSION_LIMIT, clock: Callable[[], float] = time.time) -> Sample:
    sample = Sample(label=label, taken_at=clock())
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(clients)))) as pool:
        futures = {name: pool.submit(observe_node, name, http, with_api) for name, http in clients.items()}
        for name, fut in futures.items():
            sample.nodes[name] = fut.result()
    if not with_api:
        sample.sessions = Unavailable("no API key given: session/show needs a key with scope mgmt "
                                      "(api_key_env / api_key_file in the targets file)")
        return sample
    reasons, refused = [], []
    online_at: dict[str, str] = {}
    for name, http in clients.items():
        # the first node that answers; then, during a netsplit, one node of each other side
        if not sample.nodes[name].reachable or name in sample.session_sources:
            continue
        if isinstance(sample.nodes[name].api_key, KeyAnswer) and not sample.nodes[name].api_key.accepted:
            refused.append(name)  # it refused the key a moment ago: session/show would get the same 401
            continue
        try:
            result = fetch_sessions(http, session_limit, online_at)
        except HttpFailure as exc:
            (refused if exc.status == 401 else reasons).append(name if exc.status == 401 else exc.reason)
            continue
        except ParseError as exc:
            reasons.append(f"/api/v1/session/show: the answer is malformed ({exc}); is this a VerneMQ 2.1 node?")
            continue
        sample.cover(name, result)
        if not result.has_node or not sample.uncovered():
            break
    if isinstance(sample.sessions, SessionSummary):
        return sample
    if refused and not reasons:
        sample.sessions = Unavailable(f"session/show: every node ({', '.join(refused)}) answered {KEY_REFUSED}")
    else:
        sample.sessions = Unavailable("; ".join(reasons + [f"{n}: {KEY_REFUSED}" for n in refused])
                                      or "no node answered /status.json, so none was asked for session/show")
    return sample


def node_clients(spec: ClusterSpec, timeout: float = 5.0) -> dict[str, NodeHttp]:
    out = {}
    for n in spec.nodes:
        out[n.name] = NodeHttp(n.http or node_url("http", n.host, 8888), api_key=spec.api_key, timeout=timeout)
    return out


# --------------------------------------------------------------------------- replay

def _parsed(cap: CaptureDir, fname: str | None, what: str, parse: Callable[[bytes, int | None], Any],
            ok: tuple[int, ...] = (200,)) -> Any:
    if fname is None:
        return Unavailable(f"{what}: not captured in {cap.name}")
    got = cap.answer(fname, what)
    if isinstance(got, Unavailable):
        return got
    code, body = got
    if code == 401:
        return Unavailable(f"GET {cap.url(fname) or what}: {KEY_REFUSED}")
    if code is not None and code not in ok:
        return Unavailable(f"GET {cap.url(fname) or what}: HTTP {code} in the capture")
    try:
        return parse(body, code)
    except ParseError as exc:
        return Unavailable(f"{what} ({fname}): malformed ({exc})")
    except JsonError as exc:
        return Unavailable(f"{what} ({fname}): the file {exc}")
    except ValueError as exc:
        return Unavailable(f"{what} ({fname}): not readable ({exc})")


def _json(data: bytes) -> Any:
    return loads(data)


def _api_files(cap: CaptureDir, pre: str, name: str) -> str | None:
    """The captured answer of ``/api/v1/NAME/show`` with the key: the standard file, or ``_KEY`` (200 or 401)."""
    base = f"{pre}_api_v1_{name}_show"
    return cap.first(f"{base}.json", f"{base}_KEY.json", f"{base}_KEY.txt")


def _key_answer(cap: CaptureDir, pre: str) -> KeyAnswer | Unavailable:
    """How the node answered the first captured request that carried the API key."""
    reasons = []
    for name in ("cluster", "listener", "session"):
        fname = _api_files(cap, pre, name)
        if fname is None:
            continue
        path = f"/api/v1/{name}/show"
        got = cap.answer(fname, path)
        if isinstance(got, Unavailable):
            reasons.append(got.reason)
            continue
        code = got[0] if got[0] is not None else 200
        return KeyAnswer(accepted=code != 401, http_status=code, path=path)
    return Unavailable(reasons[0] if reasons else f"no request with the API key was captured in {cap.name}")


def load_phase(phase: Path) -> Sample:
    """One captured phase directory -> one Sample (same shapes as a live sample)."""
    cap = CaptureDir(phase)
    if not cap.prefixes:
        sub = f" (it holds sub-folders: {', '.join(cap.subdirs)}; replay those)" if cap.subdirs else ""
        raise ValueError(f"{phase} holds no captured node answers (nodeN_status.json, ...){sub}")
    sample = Sample(label=phase.name)
    hosts: dict[str, str | None] = {}
    for pre in cap.prefixes:
        url = cap.url(f"{pre}_status.json")
        hosts[pre] = cap.host(pre)
        obs = NodeObservation(name=pre, url=url.rsplit("/", 1)[0] if url else None)
        obs.status = _parsed(cap, f"{pre}_status.json", "/status.json", lambda b, c: parse_status_json(_json(b)))
        obs.counters = _parsed(cap, f"{pre}_metrics.prom", "/metrics",
                               lambda b, c: counters_from_metrics(parse_metrics(b)))
        obs.health = _parsed(cap, f"{pre}_health.json", "/health", lambda b, c: parse_health(_json(b), c),
                             ok=(200, 503))
        obs.health_full = _parsed(cap, f"{pre}_health_listeners_full_cluster.json", "/health/listeners_full_cluster",
                                  lambda b, c: parse_health(_json(b), c, "/health/listeners_full_cluster"),
                                  ok=(200, 503))
        obs.listeners = _parsed(cap, _api_files(cap, pre, "listener"), "/api/v1/listener/show",
                                lambda b, c: parse_listener_show(_json(b)))
        obs.cluster = _parsed(cap, _api_files(cap, pre, "cluster"), "/api/v1/cluster/show",
                              lambda b, c: parse_cluster_show(_json(b)))
        obs.api_key = _key_answer(cap, pre)
        sample.nodes[pre] = obs
    # name every node as VerneMQ does: the first key of its status.json, else the member on its host
    all_names = set()
    for obs in sample.nodes.values():
        if not isinstance(obs.status, Unavailable):
            all_names.update(obs.status)
            for st in obs.status.values():
                all_names.update(st.mystatus)
        if not isinstance(obs.cluster, Unavailable):
            all_names.update(m.node for m in obs.cluster)
    renamed: dict[str, NodeObservation] = {}
    name_of: dict[str, str] = {}
    for pre, obs in sample.nodes.items():
        name = None
        if not isinstance(obs.status, Unavailable):
            name = next(iter(obs.status))
        if name is None and hosts.get(pre):
            name = next((n for n in sorted(all_names) if n.split("@", 1)[1] == hosts[pre]), None)
        obs.name = name or f"{pre}@{hosts.get(pre) or 'unknown'}"
        renamed[obs.name] = obs
        name_of[pre] = obs.name
    sample.nodes = renamed
    # sessions: the column selection with --node (per-node attribution) from the first node that has it,
    # else the default columns (no node column)
    candidates = [f"{pre}_api_v1_session_show_fields.json" for pre in cap.prefixes] + \
                 [f"{pre}_api_v1_session_show{k}.json" for k in ("", "_KEY") for pre in cap.prefixes]
    online_at: dict[str, str] = {}
    for fname in candidates:
        source = name_of[fname.split("_", 1)[0]]
        if not (phase / fname).is_file() or cap.code(fname) not in (None, 200) or source in sample.session_sources:
            continue
        try:
            result = reconcile_stream([(phase / fname).read_bytes()], limit=None, online_at=online_at)
        except ParseError as exc:
            if not isinstance(sample.sessions, SessionSummary):
                sample.sessions, sample.sessions_from = Unavailable(f"{fname}: malformed ({exc})"), source
                break
            continue
        sample.cover(source, result)
        if not result.has_node or not sample.uncovered():
            break
    if not isinstance(sample.sessions, SessionSummary) and sample.sessions_from is None:
        refused = [name_of[pre] for pre in cap.prefixes
                   if cap.code(_api_files(cap, pre, "session") or "-") == 401]
        if refused and len(refused) == len(cap.prefixes):
            sample.sessions = Unavailable(f"session/show: every node ({', '.join(refused)}) answered {KEY_REFUSED}")
        else:
            sample.sessions = Unavailable(f"session/show: not captured in {phase.name}")
    return sample


def load_replay(phases: Iterable[str | Path]) -> Facts:
    samples = [load_phase(Path(p)) for p in phases]
    return Facts({"clients.samples": samples, "clients.expected": [],
                  "clients.canaries": NotApplicable("replay of captured answers: no canary was run"),
                  "clients.heartbeat": NotApplicable("replay of captured answers: no heartbeat was run"),
                  "clients.service": NotApplicable("replay of captured answers: no Service facts")})


# --------------------------------------------------------------------------- live cluster (Kubernetes)

class PodProxyHttp:
    """NodeHttp's interface through the API server's pod proxy (works from outside the cluster).

    ``GET /api/v1/namespaces/NS/pods/POD:PORT/proxy/PATH``; the API key travels as ``x-api-key``
    (the Authorization header belongs to the API server), which VerneMQ 2.1 accepts as well.
    The same rules as :class:`~validators.vernemq.http.NodeHttp`: no redirects (a 3xx is an
    HttpRedirect, the request is not repeated), an overall deadline per request checked between reads
    (each read waits at most the client's read timeout), a body cap, and typed failures.
    """

    def __init__(self, kube: Any, namespace: str, pod: str, port: int, api_key: "Secret | str | None" = None,
                 max_bytes: int = DEFAULT_MAX_BYTES, stream_timeout: float = DEFAULT_STREAM_TIMEOUT,
                 stream_max_bytes: int = DEFAULT_STREAM_MAX_BYTES):
        self.kube, self.namespace, self.pod, self.port = kube, namespace, pod, port
        self.api_key = Secret.coerce(api_key, "the API key", API_KEY)
        self.key_header = True
        self.max_bytes, self.stream_timeout, self.stream_max_bytes = max_bytes, stream_timeout, stream_max_bytes
        self.base_url = f"pod {namespace}/{pod}:{port} (API server proxy)"
        t = kube.timeout
        self.timeout = float(sum(t)) if isinstance(t, (tuple, list)) else float(t or 30)

    def _call(self, path: str, auth: bool):
        """The urllib3 response (body not read yet) of GET ``path`` on the pod, through the API server."""
        import urllib3

        ac = self.kube.api_client
        url = f"/api/v1/namespaces/{self.namespace}/pods/{self.pod}:{self.port}/proxy{path}"
        # VerneMQ's flags ("--node", "--limit=5") stay verbatim in the path: query_params would add "="
        headers = {"x-api-key": self.api_key.reveal()} if auth and self.api_key else {}
        _method, full, hdrs, _body, _post = ac.param_serialize("GET", url, header_params=headers,
                                                               auth_settings=["BearerToken"])
        t = self.kube.timeout
        conn_t, read_t = (t[0], t[1]) if isinstance(t, (tuple, list)) else (t, t)
        # the pool manager itself: call_api would follow redirects (and carry x-api-key along)
        return ac.rest_client.pool_manager.request("GET", full, headers=hdrs, preload_content=False,
                                                   redirect=False, retries=False,
                                                   timeout=urllib3.Timeout(connect=conn_t, read=read_t))

    def _fail(self, cls: type, path: str, detail: str, status: int | None = None) -> HttpFailure:
        return cls(f"GET {path} on {self.base_url}: {detail}", status, detail)

    def _why(self, path: str, status: int, location: str | None = None) -> HttpFailure:
        if 300 <= status < 400:
            host = urlparse(location or "").hostname if location else None
            where = f" to {host}" if host else ""
            return self._fail(HttpRedirect, path, f"HTTP {status} redirect{where}: redirects are not followed "
                              "(the API key goes only to the pod asked)", status)
        why = ("401 Unauthorized: the API key is missing or has the wrong scope (needs mgmt for /api/v1)"
               if status == 401 else f"HTTP {status}")
        if status in (403, 404, 503):
            why += " (from the API server or the pod: check RBAC for pods/proxy and that the pod is ready)"
        return self._fail(HttpBadStatus, path, why, status)

    def _failure(self, exc: BaseException, path: str) -> HttpFailure:
        from .kubeclient import explain_error

        if isinstance(exc, HttpFailure):
            return exc
        try:
            return HttpFailure(explain_error(exc, f"{path} on {self.base_url}"))
        except Exception:  # noqa: BLE001 - explain_error re-raises what it does not know
            return HttpFailure(f"GET {path} on {self.base_url}: {type(exc).__name__}")

    def _open(self, path: str, auth: bool, ok: tuple[int, ...], stream: bool = False):
        try:
            resp = self._call(path, auth)
        except Exception as exc:  # noqa: BLE001 - mapped to a reason
            raise self._failure(exc, path) from None
        if resp.status not in ok:
            resp.release_conn()
            raise self._why(path, resp.status, resp.headers.get("Location"))
        length = resp.headers.get("Content-Length")
        cap = self.stream_max_bytes if stream else self.max_bytes
        if length and length.strip().isdigit() and int(length) > cap:
            resp.release_conn()
            raise self._fail(HttpTooLarge, path, f"the answer is larger than {cap} bytes (the size cap)", resp.status)
        return resp

    def _chunks(self, resp, path: str, budget: float, chunk: int, cap: int):
        deadline = time.monotonic() + budget
        total = 0
        try:
            while True:
                if time.monotonic() > deadline:
                    raise self._fail(HttpTimeout, path, f"no complete answer within {budget:g}s")
                data = resp.read1(chunk)
                if not data:
                    return
                total += len(data)
                if total > cap:
                    raise self._fail(HttpTooLarge, path, f"the answer is larger than {cap} bytes (the size cap)",
                                     resp.status)
                yield data
        except GeneratorExit:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self._failure(exc, path) from None
        finally:
            resp.release_conn()

    def get(self, path: str, auth: bool = False, ok: tuple[int, ...] = (200,)) -> tuple[int, bytes]:
        resp = self._open(path, auth, ok)
        return resp.status, b"".join(self._chunks(resp, path, self.timeout, 1 << 16, self.max_bytes))

    def get_json(self, path: str, auth: bool = False, ok: tuple[int, ...] = (200,)) -> Any:
        return self.get_json_status(path, auth, ok)[1]

    def get_json_status(self, path: str, auth: bool = False, ok: tuple[int, ...] = (200,)) -> tuple[int, Any]:
        status, body = self.get(path, auth, ok)
        try:
            return status, loads(body)
        except JsonError as exc:
            raise self._fail(HttpBadBody, path, f"the answer {exc}", status) from None

    def stream(self, path: str, auth: bool = False, chunk: int = 1 << 20):
        resp = self._open(path, auth, (200,), stream=True)
        return self._chunks(resp, path, max(self.timeout, self.stream_timeout), chunk, self.stream_max_bytes)


_PROBE_WORDS = ("probe", "health")


def service_facts(services: list[Mapping[str, Any]], pod_labels: list[Mapping[str, str]],
                  mqtt_port: int = 1883) -> ServiceFacts | NotApplicable:
    """The client Service in front of the pods: not headless, selects the pods, exposes the MQTT port.

    A LoadBalancer one wins over ClusterIP/NodePort (it is the one whose probes reach the pods).
    """
    candidates = []
    for svc in services:
        spec = svc.get("spec") or {}
        sel = spec.get("selector") or {}
        if spec.get("clusterIP") == "None" or not sel:
            continue
        if not any(all(lbl.get(k) == v for k, v in sel.items()) for lbl in pod_labels):
            continue
        ports = spec.get("ports") or []
        if not any(p.get("name") == "mqtt" or p.get("targetPort") in (mqtt_port, "mqtt") or p.get("port") == mqtt_port
                   for p in ports):
            continue
        candidates.append(svc)
    if not candidates:
        return NotApplicable("no Service selects the VerneMQ pods on the MQTT port")
    candidates.sort(key=lambda s: ((s.get("spec") or {}).get("type") != "LoadBalancer", s["metadata"]["name"]))
    svc = candidates[0]
    spec = svc.get("spec") or {}
    ann = {k: v for k, v in (svc["metadata"].get("annotations") or {}).items()
           if any(w in k.lower() for w in _PROBE_WORDS)}
    return ServiceFacts(name=svc["metadata"]["name"], type=spec.get("type", "ClusterIP"),
                        external_traffic_policy=spec.get("externalTrafficPolicy"),
                        health_check_node_port=spec.get("healthCheckNodePort"), probe_annotations=ann)


def kube_sources(kube: Any, namespace: str, selector: str, in_cluster: bool, timeout: float
                 ) -> tuple[ClusterSpec, dict[str, Any], dict[str, Any], Any]:
    """(spec, HTTP client per node, meta, Service facts) for the release's pods."""
    from .kube_targets import targets_from_kube
    from .kubeclient import explain_error

    spec, meta = targets_from_kube(kube, namespace, selector, transport="direct")
    if in_cluster:
        clients: dict[str, Any] = node_clients(spec, timeout)
    else:
        clients = {}
        for n in spec.nodes:
            port = urlparse(n.http).port if n.http else None
            port = port or 8888
            clients[n.name] = PodProxyHttp(kube, namespace, n.pod or n.host, port, spec.api_key)
    try:
        svcs = kube.get_json(f"/api/v1/namespaces/{namespace}/services").get("items") or []
        pods = kube.get_json(f"/api/v1/namespaces/{namespace}/pods", {"labelSelector": selector}).get("items") or []
        service: ServiceFacts | NotApplicable = service_facts(svcs, [(p.get("metadata") or {}).get("labels") or {}
                                                                      for p in pods])
    except Exception as exc:  # noqa: BLE001 - a missing permission is a reason, not a crash
        service = Unavailable(explain_error(exc, f"services in {namespace}"))
    return spec, clients, meta, service
