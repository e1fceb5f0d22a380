"""Runs checks over a Facts snapshot. No I/O happens here."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from .model import CheckSpec, Facts, NotApplicable, Report, Result, Severity, Status
from .policy import Policy


def run_checks(
    command: str,
    specs: Iterable[CheckSpec],
    facts: Facts,
    policy: Policy | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Report:
    policy = policy or Policy.default()
    results: list[Result] = []
    for spec in specs:
        if not policy.enabled(spec.id):
            continue
        results.extend(_run_one(spec, facts, policy))
    return Report(command=command, results=results, meta=dict(meta or {}))


def _result(spec: CheckSpec, severity: Severity, status: Status, subject: str, message: str,
            evidence: Mapping[str, Any], remedy: str | None = None) -> Result:
    if status is Status.WARN and severity in (Severity.ERROR, Severity.CRITICAL):
        severity = Severity.WARNING  # a soft verdict of an error-level (or critical) check is a warning
    return Result(
        check=spec.id,
        title=spec.title,
        status=status,
        severity=severity,
        category=spec.category,
        subject=subject,
        message=message,
        remedy=remedy or spec.remedy,
        evidence=dict(evidence),
    )


def _run_one(spec: CheckSpec, facts: Facts, policy: Policy) -> list[Result]:
    severity = policy.severity(spec)
    missing = facts.missing(spec.needs)
    if missing is not None:
        status = Status.SKIP if isinstance(missing, NotApplicable) else Status.UNKNOWN
        return [_result(spec, severity, status, "-", missing.reason, {})]
    conf = policy.options(spec)
    try:
        findings = list(spec.fn(facts, conf))
    except Exception as exc:  # a bug in one check must not hide the others
        return [_result(spec, severity, Status.UNKNOWN, "-",
                        f"check raised {type(exc).__name__}: {exc}", {"internal_error": True})]
    if not findings:
        looked = ", ".join(spec.needs) or "the collected facts"
        return [_result(spec, severity, Status.SKIP, "-", f"not applicable: nothing in {looked} for this check "
                        "to look at (e.g. no such object in the release)", {})]
    return [_result(spec, severity, f.status, f.subject, f.message, f.evidence, f.remedy) for f in findings]
