"""The one way the toolkit reaches the Kubernetes API: the `kubernetes` Python client.

* ``connect(kubeconfig, context, in_cluster)`` never falls back to an implicit current context:
  outside a cluster the context must be named.
* ``fetch(what, call)`` turns every API failure (401, 403, 404, timeouts, connection errors,
  answers of the wrong shape) into an :class:`Unavailable` with a reason a person can act on.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..core.errors import CollectionError, InputError
from ..core.inputs import load_yaml, read_text
from ..core.model import Unavailable

#: seconds for every API request (connect, read)
DEFAULT_TIMEOUT = (5, 20)


@dataclass
class Kube:
    api_client: Any
    context: str
    timeout: tuple[int, int] = DEFAULT_TIMEOUT

    def core(self):
        from kubernetes import client
        return client.CoreV1Api(self.api_client)

    def apps(self):
        from kubernetes import client
        return client.AppsV1Api(self.api_client)

    def networking(self):
        from kubernetes import client
        return client.NetworkingV1Api(self.api_client)

    def discovery(self):
        from kubernetes import client
        return client.DiscoveryV1Api(self.api_client)

    def policy(self):
        from kubernetes import client
        return client.PolicyV1Api(self.api_client)

    def get_raw(self, path: str, query: dict[str, str] | None = None, accept: str = "application/json") -> bytes:
        """GET ``path`` with the run's timeout; the body as bytes. Raises ApiException on HTTP
        errors and urllib3 errors on timeouts (:func:`explain_error` turns both into a reason).

        Uses the generated client's ``param_serialize`` + ``call_api`` (kubernetes >= 31)."""
        from kubernetes.client.exceptions import ApiException

        ac = self.api_client
        method, url, headers, body, post = ac.param_serialize(
            "GET", path, query_params=list((query or {}).items()),
            header_params={"Accept": accept}, auth_settings=["BearerToken"])
        resp = ac.call_api(method, url, header_params=headers, body=body, post_params=post,
                           _request_timeout=self.timeout)
        resp.read()
        if not 200 <= resp.status <= 299:
            raise ApiException(http_resp=resp)
        return resp.data

    def get_json(self, path: str, query: dict[str, str] | None = None) -> Any:
        """GET ``path`` and decode the JSON; ValueError when the body is not JSON."""
        return json.loads(self.get_raw(path, query))


def connect(kubeconfig: str | None, context: str | None, in_cluster: bool = False,
            timeout: tuple[int, int] = DEFAULT_TIMEOUT) -> Kube:
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    if in_cluster:
        if context:
            raise InputError("--context", "cannot be combined with --in-cluster.", "drop one of them.")
        try:
            config.load_incluster_config()
        except ConfigException as exc:
            raise CollectionError(f"--in-cluster: not running inside a pod ({exc}). "
                                  "Fix: run outside with --kubeconfig and --context.") from None
        return Kube(client.ApiClient(), "in-cluster", timeout)
    if not context:
        raise InputError("--context", "no kube context given; the current context is never used implicitly.",
                         "name it: --context NAME (see `kubectl config get-contexts`).")
    if kubeconfig is not None:  # a garbage file is bad input naming --kubeconfig, not a client traceback
        raw = load_yaml(read_text(kubeconfig, "--kubeconfig", "pass --kubeconfig PATH to a readable kubeconfig."),
                        "--kubeconfig", kubeconfig)
        if not isinstance(raw, dict) or not isinstance(raw.get("contexts") or [], list) or not all(
                isinstance(c, dict) and isinstance(c.get("name"), str) for c in raw.get("contexts") or []):
            raise InputError("--kubeconfig", f"{kubeconfig} is not a kubeconfig (a mapping whose contexts are a list "
                             "of {name, context}).", "pass the file `kubectl config view --raw` shows.")
    try:
        contexts, _active = config.list_kube_config_contexts(config_file=kubeconfig)
    except Exception as exc:  # noqa: BLE001 - ConfigException, OSError, or the client tripping over odd YAML
        raise CollectionError(f"--kubeconfig: cannot load kubeconfig {kubeconfig or '(default)'}: {exc}. "
                              "Fix: pass --kubeconfig PATH to a readable kubeconfig.") from None
    names = [c["name"] for c in contexts or []]
    if context not in names:
        raise InputError("--context", f"context {context!r} is not in the kubeconfig.",
                         f"use one of: {', '.join(names) or '(none)'}.")
    cfg = client.Configuration()
    try:
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg,
                                persist_config=False)
    except Exception as exc:  # noqa: BLE001 - ConfigException, OSError, ValueError, odd YAML shapes
        raise CollectionError(f"--context {context}: cannot build a client from the kubeconfig: {exc}.") from None
    cfg.retries = 0
    return Kube(client.ApiClient(cfg), context, timeout)


_HTTP_REASONS = {
    401: "401 Unauthorized: the credentials of the kube context were rejected (expired token?)",
    403: "403 Forbidden: the identity lacks RBAC permission",
    404: "404 Not Found",
}


def explain_error(exc: BaseException, what: str) -> str:
    from kubernetes.client.exceptions import ApiException
    import urllib3.exceptions as u3

    if isinstance(exc, ApiException):
        reason = _HTTP_REASONS.get(exc.status, f"HTTP {exc.status} {exc.reason}")
        if exc.status == 403:
            reason += f" to {what} (see the read-only Role in the docs)"
        return f"cannot read {what}: {reason}"
    if isinstance(exc, u3.MaxRetryError):
        exc = exc.reason or exc
    # urllib3 2 makes NewConnectionError a ConnectTimeoutError: test it first
    if isinstance(exc, u3.NewConnectionError):
        return f"cannot read {what}: cannot reach the API server (connection refused or no route)"
    if isinstance(exc, (u3.ReadTimeoutError, u3.ConnectTimeoutError, socket.timeout, TimeoutError)):
        return f"cannot read {what}: the API server did not answer in time"
    if isinstance(exc, (u3.HTTPError, OSError)):
        return f"cannot read {what}: connection failed ({type(exc).__name__})"
    if isinstance(exc, (ValueError, KeyError, TypeError, AttributeError)):
        return f"cannot read {what}: the API answer had an unexpected shape ({type(exc).__name__})"
    raise exc


def fetch(what: str, call: Callable[[], Any], on_status: Mapping[int, Any] | None = None) -> Any:
    """``call()`` or an Unavailable naming ``what`` and why it failed; an API answer whose HTTP status is in
    ``on_status`` gives that value instead (e.g. 404: the resource is not served)."""
    from kubernetes.client.exceptions import ApiException

    try:
        return call()
    except ApiException as exc:
        if on_status and exc.status in on_status:
            return on_status[exc.status]
        return Unavailable(explain_error(exc, what))
    except Exception as exc:  # noqa: BLE001 - mapped to a reason or re-raised by explain_error
        return Unavailable(explain_error(exc, what))
