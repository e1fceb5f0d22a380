"""Kubernetes exec into each VerneMQ pod: the bash probe script of :mod:`.shell` on the exec's stdin.

Only ``bash -s`` is on the exec command line (what the API server logs and `ps` in the pod show);
the script with the cookie and API key goes over the stdin channel. Needs RBAC ``pods/exec`` (create)
in the release's namespace.
"""

from __future__ import annotations

import time
from typing import Callable

from . import Observation, Transport, transport_error
from .netns import job_budget
from .shell import SHELL_ARGV, build_script, parse_output

#: exec_fn(namespace, pod, container, argv, stdin_text, timeout) -> (stdout, stderr)
ExecFn = Callable[[str, str, "str | None", list, str, float], "tuple[str, str]"]


def kube_exec(kube) -> ExecFn:
    def run(namespace: str, pod: str, container: str | None, argv: list, stdin: str,
            timeout: float) -> tuple[str, str]:
        from kubernetes.stream import stream
        kw = {"container": container} if container else {}
        ws = stream(kube.core().connect_get_namespaced_pod_exec, pod, namespace, command=argv, stdin=True,
                    stdout=True, stderr=True, tty=False, _preload_content=False,
                    _request_timeout=kube.timeout, **kw)
        out, err = [], []
        try:
            ws.write_stdin(stdin)
            deadline = time.monotonic() + timeout
            while ws.is_open():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the exec did not finish within {timeout:g}s")
                ws.update(timeout=1)
                if ws.peek_stdout():
                    out.append(ws.read_stdout())
                if ws.peek_stderr():
                    err.append(ws.read_stderr())
        finally:
            ws.close()
        return "".join(out), "".join(err)
    return run


class KubeExecTransport(Transport):
    name = "kube-exec"

    def __init__(self, kube, concurrency: int = 16, exec_fn: ExecFn | None = None):
        super().__init__(concurrency)
        self.exec_fn = exec_fn or kube_exec(kube)

    def run_one(self, job: dict) -> list[Observation]:
        src = job["source"]
        if not job.get("pod") or not job.get("namespace"):
            return [transport_error(src, "kube-exec needs the pod and namespace of this node")]
        try:
            out, err = self.exec_fn(job["namespace"], job["pod"], job.get("container"), list(SHELL_ARGV),
                                    build_script(job), job_budget(job))
        except Exception as exc:  # noqa: BLE001 - ApiException, websocket errors, timeouts
            return [transport_error(src, _explain(exc, job))]
        obs = parse_output(job, out)
        if err.strip() and any(o.get("kind") == "transport_error" for o in obs):
            obs.append(transport_error(src, f"stderr: {err.strip()[-300:]}"))
        return obs


def _explain(exc: BaseException, job: dict) -> str:
    where = f"exec into pod {job.get('namespace')}/{job.get('pod')}"
    status = getattr(exc, "status", None)
    if status == 403:
        return f"{where}: 403 Forbidden (the identity needs create on pods/exec)"
    if status == 404:
        return f"{where}: 404 (pod or container gone)"
    if isinstance(exc, TimeoutError):
        return f"{where}: {exc}"
    return f"{where}: {type(exc).__name__}: {str(exc)[:200]}"
