"""The check catalog: one registry keyed by stable check ID.

Checks register with the :func:`check` decorator in their own module; the list of modules
that make up the catalog is explicit (``validators.checks.CHECK_MODULES``) so that a missing
module fails loudly at start-up instead of silently dropping checks.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Iterable, Mapping

from .model import CheckFn, CheckSpec, Severity

ID_PATTERN = re.compile(r"[A-Z]+-[0-9]{3}")

_CATALOG: dict[str, CheckSpec] = {}


def check(
    id: str,  # noqa: A002 - the catalog's word
    *,
    title: str,
    severity: str,
    category: str,
    remedy: str,
    needs: Iterable[str] = (),
    defaults: Mapping[str, Any] | None = None,
):
    """Register ``fn(facts, conf)`` as check ``id``.

    ``needs`` names the facts the check reads; when one of them is Unavailable the runner
    reports ``unknown`` with its reason, when NotApplicable it reports ``skip``.
    ``defaults`` are the options a policy file may override.
    """
    if not ID_PATTERN.fullmatch(id):
        raise ValueError(f"check id {id!r} must look like AREA-123")

    def wrap(fn: CheckFn) -> CheckFn:
        if id in _CATALOG and _CATALOG[id].fn is not fn:
            raise ValueError(f"check id {id} registered twice ({_CATALOG[id].fn.__module__} and {fn.__module__})")
        if not remedy.strip() or not title.strip():
            raise ValueError(f"check {id} needs a title and a remedy")
        _CATALOG[id] = CheckSpec(
            id=id,
            title=title,
            severity=Severity(severity),
            category=category,
            remedy=remedy.strip(),
            needs=tuple(needs),
            fn=fn,
            doc=inspect.cleandoc(fn.__doc__ or ""),
            defaults=dict(defaults or {}),
        )
        return fn

    return wrap


def catalog() -> dict[str, CheckSpec]:
    """All registered checks, loading every check module first."""
    from validators import checks  # noqa: F401 - importing registers the checks

    checks.load_all()
    return dict(sorted(_CATALOG.items()))


def get(check_id: str) -> CheckSpec:
    cat = catalog()
    if check_id not in cat:
        from .errors import InputError

        raise InputError("check", f"no check with ID {check_id!r}.", "run `vmq-validate checks` to list the IDs.")
    return cat[check_id]


def by_category(*categories: str) -> list[CheckSpec]:
    return [c for c in catalog().values() if c.category in categories]
