"""Collects the Erlang-distribution facts once: probes from every source to every target, and views.

Sources: with the ``direct`` transport the validator itself ("validator"); with ``netns``,
``netns-shell`` and ``kube-exec`` every node (pod-to-pod: every ordered pair of distinct nodes).

Facts:
  dist.cluster       {"nodes": [...], "sources": [...], "pairs": [[src, dst], ...], "dist_port_range": [lo, hi],
                      "epmd_port", "cluster_port", "transport", "cookie_given": bool,
                      "well_known_cookies": the public default cookies tried against every node (DIST-008)}
  dist.observations  the transports' observation dicts (see validators.erldist.probe), secrets never included
  dist.views         {node: {"ok": true, "members": [[name, running], ...]} | {"ok": false, "reason": ...}}

The well-known cookies (DIST-008) are tried once per node, not once per pair: whether a node accepts `vmq` does
not depend on who asks, and every refused attempt costs the node a handshake and an error line in its log
("Connection attempt from node ... rejected"). One source per node is chosen up front (the next node in the
list, which spreads the attempts over the sources); when that source could not get as far as the challenge
(cut off, exec refused), a second round asks one source whose handshake with the node did reach it.
"""

from __future__ import annotations

from typing import Any

from ..core import redact
from ..core.addr import url
from ..core.model import Facts, NotApplicable
from ..core.secret import reveal
from ..erldist.handshake import REACHED_CHALLENGE, WELL_KNOWN_COOKIES
from ..transports import Transport
from ..vernemq.http import loads
from ..vernemq.parse import ParseError, parse_cluster_show
from .targets import ClusterSpec, Node

VALIDATOR = "validator"
redact.declare_public(*WELL_KNOWN_COOKIES)  # named in DIST-008's findings even when it is the configured cookie
DEFAULT_HTTP_PORT = 8888


def http_url(node: Node) -> str:
    return node.http or url("http", node.host, DEFAULT_HTTP_PORT)


def plan(spec: ClusterSpec) -> tuple[list[str], list[tuple[str, str]]]:
    """(sources, ordered pairs) for this spec's transport."""
    names = [n.name for n in spec.nodes]
    if spec.transport == "direct":
        return [VALIDATOR], [(VALIDATOR, d) for d in names]
    if len(names) == 1:
        return names, [(names[0], names[0])]
    return names, [(s, d) for s in names for d in names if s != d]


def well_known_sources(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """{target: the one source that tries the well-known cookies on it}: the first source after the target in
    the node order (cyclic), so each source tries about one node; the validator with the direct transport."""
    order = list(dict.fromkeys(n for p in pairs for n in p))
    srcs_of: dict[str, set[str]] = {}
    for s, d in pairs:
        srcs_of.setdefault(d, set()).add(s)
    out = {}
    for d, srcs in srcs_of.items():
        i = order.index(d)
        out[d] = next(order[(i + k) % len(order)] for k in range(len(order)) if order[(i + k) % len(order)] in srcs)
    return out


def _job(spec: ClusterSpec, src: str, targets: list[dict], common: dict) -> dict[str, Any]:
    job = {**common, "source": src, "targets": targets}
    if src != VALIDATOR:
        node = spec.node(src)
        job.update(source_host=node.host, netns=node.netns, pod=node.pod, namespace=node.namespace,
                   container=node.container)
    return job


def _common(spec: ClusterSpec, timeout: float, concurrency: int) -> dict[str, Any]:
    return {"epmd_port": spec.epmd_port, "cluster_port": spec.cluster_port, "cookie": reveal(spec.cookie),
            "well_known_cookies": list(WELL_KNOWN_COOKIES), "timeout": timeout, "concurrency": concurrency}


def build_jobs(spec: ClusterSpec, timeout: float = 3.0, concurrency: int = 16,
               views: bool = True) -> list[dict[str, Any]]:
    """One probe job per source. A job is what goes on the wire to the probe (its stdin), so the secrets are
    revealed here, and only here; jobs never reach output. A target's "well_known" says whether this source
    tries the well-known cookies on it (see :func:`well_known_sources`)."""
    sources, pairs = plan(spec)
    api_key = reveal(spec.api_key)
    common = _common(spec, timeout, concurrency)
    wk_by = well_known_sources(pairs)
    jobs = []
    for src in sources:
        targets = [{"name": d, "host": spec.node(d).host, "well_known": wk_by.get(d) == src}
                   for s, d in pairs if s == src]
        job = _job(spec, src, targets, common)
        if src != VALIDATOR and views:
            job["view"] = {"url": http_url(spec.node(src)), "api_key": api_key}
        jobs.append(job)
    if spec.transport == "direct" and views:  #: the validator reads every node's view itself
        for node in spec.nodes:
            jobs.append({**common, "source": node.name, "targets": [],
                         "view": {"url": http_url(node), "api_key": api_key}})
    return jobs


def parse_views(observations: list[dict], nodes: list[str]) -> dict[str, dict[str, Any]]:
    views: dict[str, dict[str, Any]] = {}
    errors = {o["src"]: o.get("detail", "") for o in observations if o.get("kind") == "transport_error"}
    for o in observations:
        if o.get("kind") != "view":
            continue
        src = o["src"]
        if not o.get("ok"):
            reason = o.get("detail") or o.get("error") or "no answer"
            if o.get("status") == 401:
                reason = "HTTP 401: the API key is missing or lacks scope mgmt"
            views[src] = {"ok": False, "reason": f"GET {o.get('url')}: {reason}"}
            continue
        try:
            members = parse_cluster_show(loads(o.get("body", "")))
        except ValueError as exc:  # JsonError (not JSON, nested too deeply) and ParseError
            why = str(exc) if isinstance(exc, ParseError) else f"the answer {exc}"
            views[src] = {"ok": False, "reason": f"GET {o.get('url')}: {why}"}
            continue
        views[src] = {"ok": True, "members": [[m.node, m.running] for m in members]}
    for n in nodes:
        if n not in views:
            views[n] = {"ok": False, "reason": errors.get(n) or "the view was not collected"}
    return views


def well_known_retry_jobs(spec: ClusterSpec, observations: list[dict], timeout: float = 3.0,
                          concurrency: int = 16) -> list[dict[str, Any]]:
    """The second round of DIST-008: for each node no source finished the well-known handshake with, one job
    from a source whose handshake with that node reached the challenge (and that has not tried it yet)."""
    if not WELL_KNOWN_COOKIES:
        return []
    done = {o["dst"] for o in observations
            if o.get("kind") == "well_known_cookie" and o.get("outcome") in REACHED_CHALLENGE}
    tried = {(o["src"], o["dst"]) for o in observations if o.get("kind") == "well_known_cookie"}
    reached: dict[str, list[str]] = {}
    for o in observations:
        if o.get("kind") == "handshake" and o.get("outcome") in REACHED_CHALLENGE and (o["src"], o["dst"]) not in tried:
            reached.setdefault(o["dst"], []).append(o["src"])
    common = _common(spec, timeout, concurrency)
    jobs: dict[str, dict[str, Any]] = {}
    for node in (n.name for n in spec.nodes):
        if node in done or not reached.get(node):
            continue
        src = sorted(reached[node])[0]
        job = jobs.setdefault(src, _job(spec, src, [], common))
        job["targets"].append({"name": node, "host": spec.node(node).host, "well_known": True})
    return list(jobs.values())


def collect(spec: ClusterSpec, transport: Transport, timeout: float = 3.0, concurrency: int = 16,
            views: bool = True) -> Facts:
    sources, pairs = plan(spec)
    jobs = build_jobs(spec, timeout, concurrency, views)
    observations = transport.run(jobs)
    retry = well_known_retry_jobs(spec, observations, timeout, concurrency)
    if retry:  # only the well-known answers are new; the rest of the round repeats what the first one saw
        observations += [o for o in transport.run(retry) if o.get("kind") == "well_known_cookie"]
    clean = []
    for o in observations:  # bodies are parsed into views; keep the observation list small and secret-free
        o = {k: v for k, v in o.items() if k != "body"}
        clean.append(o)
    names = [n.name for n in spec.nodes]
    facts = Facts({
        "dist.cluster": {"nodes": names, "sources": sources, "pairs": [list(p) for p in pairs],
                         "dist_port_range": list(spec.dist_port_range), "epmd_port": spec.epmd_port,
                         "cluster_port": spec.cluster_port, "transport": spec.transport,
                         "cookie_given": bool(spec.cookie), "well_known_cookies": list(WELL_KNOWN_COOKIES)},
        "dist.observations": clean,
        "dist.views": parse_views(observations, names) if views else NotApplicable("cluster views not requested"),
    })
    return facts
