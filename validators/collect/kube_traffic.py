"""Live facts for the traffic checks: the same fact shapes as validators.collect.manifests, read
from the Kubernetes API with the `kubernetes` client (raw JSON GETs, read-only).

Every read goes through :func:`validators.collect.kubeclient.fetch`-style error mapping: a 401,
403, 404, timeout or malformed answer becomes an :class:`Unavailable` fact (checks report
``unknown`` with the reason), never a traceback.
"""

from __future__ import annotations

import json
from typing import Any

from .kubeclient import Kube


def get_json(kube: Kube, path: str, query: dict[str, str] | None = None) -> Any:
    """GET ``path`` (with ``query``) and return the decoded JSON. Raises ApiException on HTTP
    errors, urllib3 errors on timeouts, ValueError on a body that is not JSON.

    Works with the generated client of `kubernetes` >= 31 (param_serialize/call_api)."""
    from kubernetes.client.exceptions import ApiException

    ac = kube.api_client
    method, url, headers, body, post = ac.param_serialize(
        "GET", path, query_params=list((query or {}).items()),
        header_params={"Accept": "application/json"}, auth_settings=["BearerToken"])
    resp = ac.call_api(method, url, header_params=headers, body=body, post_params=post,
                       _request_timeout=kube.timeout)
    resp.read()
    if not 200 <= resp.status <= 299:
        raise ApiException(http_resp=resp)
    return json.loads(resp.data)
