"""The result model shared by every validator: checks, facts, results, reports.

A check is a pure function ``fn(facts, conf) -> Iterable[Finding]`` registered with a stable ID,
a title, a severity and a remedy (see ``validators.core.registry``).  Facts are collected once
into a :class:`Facts` snapshot; a fact that could not be collected is an :class:`Unavailable`
(the check reports ``unknown`` with the reason) and a fact that does not apply to this run is a
:class:`NotApplicable` (the check reports ``skip``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping


class Severity(str, enum.Enum):
    CRITICAL = "critical"   #: someone who reaches it can take the broker over (e.g. a well-known cookie)
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"info": 1, "warning": 2, "error": 3, "critical": 4}[self.value]


#: the thresholds of --fail-on (the CLI) and fail_on (the Ansible module and roles): every severity, worst
#: first, then ``never``. The one list both accept; docs and argument specs are tested against it.
FAIL_ON = tuple(s.value for s in sorted(Severity, key=lambda s: -s.rank)) + ("never",)


class Status(str, enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    SKIP = "skip"
    UNKNOWN = "unknown"


#: statuses that are findings (they count against --fail-on)
FINDING_STATUSES = (Status.FAIL, Status.WARN, Status.UNKNOWN)


@dataclass(frozen=True)
class Finding:
    """What a check yields: one verdict about one subject."""

    status: Status
    subject: str
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    #: optional override of the remedy for this subject (e.g. with the concrete --set to use)
    remedy: str | None = None


def passed(subject: str, message: str, **evidence: Any) -> Finding:
    return Finding(Status.PASS, subject, message, evidence)


def failed(subject: str, message: str, remedy: str | None = None, **evidence: Any) -> Finding:
    return Finding(Status.FAIL, subject, message, evidence, remedy)


def warned(subject: str, message: str, remedy: str | None = None, **evidence: Any) -> Finding:
    return Finding(Status.WARN, subject, message, evidence, remedy)


def skipped(subject: str, message: str, **evidence: Any) -> Finding:
    return Finding(Status.SKIP, subject, message, evidence)


def unknown(subject: str, message: str, **evidence: Any) -> Finding:
    return Finding(Status.UNKNOWN, subject, message, evidence)


@dataclass(frozen=True)
class Unavailable:
    """A fact that could not be collected (401/403, timeout, missing object...)."""

    reason: str


@dataclass(frozen=True)
class NotApplicable:
    """A fact that does not exist in this kind of run (e.g. endpoints in an offline plan)."""

    reason: str


class Facts(Mapping[str, Any]):
    """An immutable-by-convention snapshot of everything collected for one run.

    ``facts[name]`` returns the value; a check that needs a fact which is Unavailable or
    NotApplicable is never called (the runner reports unknown/skip for it).
    """

    def __init__(self, values: Mapping[str, Any] | None = None):
        self._values: dict[str, Any] = dict(values or {})

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def set(self, key: str, value: Any) -> None:
        self._values[key] = value

    def missing(self, needs: Iterable[str]) -> Unavailable | NotApplicable | None:
        """The first needed fact that is absent, Unavailable or NotApplicable (absent = Unavailable)."""
        for name in needs:
            if name not in self._values:
                return Unavailable(f"fact '{name}' was not collected")
            value = self._values[name]
            if isinstance(value, (Unavailable, NotApplicable)):
                return value
        return None


CheckFn = Callable[[Facts, Mapping[str, Any]], Iterable[Finding]]


@dataclass(frozen=True)
class CheckSpec:
    id: str
    title: str
    severity: Severity
    category: str
    remedy: str
    needs: tuple[str, ...]
    fn: CheckFn
    #: the check's docstring: the long explanation printed by ``vmq-validate explain ID``
    doc: str = ""
    #: default options; a policy file may override them (unknown keys are rejected)
    defaults: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    check: str
    title: str
    status: Status
    severity: Severity
    category: str
    subject: str
    message: str
    remedy: str
    evidence: Mapping[str, Any]

    def is_finding(self) -> bool:
        return self.status in FINDING_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "title": self.title,
            "status": self.status.value,
            "severity": self.severity.value,
            "category": self.category,
            "subject": self.subject,
            "message": self.message,
            "remedy": self.remedy,
            "evidence": dict(self.evidence),
        }


REPORT_SCHEMA_VERSION = 1


@dataclass
class Report:
    command: str
    results: list[Result]
    #: where the facts came from (source kind, context, namespace, files...); never secrets
    meta: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        by_status = {s.value: 0 for s in Status}
        by_severity = {s.value: 0 for s in Severity}
        for r in self.results:
            by_status[r.status.value] += 1
            if r.is_finding():
                by_severity[r.severity.value] += 1
        return {
            "total": len(self.results),
            "by_status": by_status,
            "findings_by_severity": by_severity,
            "checks": len({r.check for r in self.results}),
        }

    def findings_at_or_above(self, fail_on: str) -> list[Result]:
        if fail_on == "never":
            return []
        threshold = Severity(fail_on).rank
        return [r for r in self.results if r.is_finding() and r.severity.rank >= threshold]

    def exit_code(self, fail_on: str = "error") -> int:
        return 1 if self.findings_at_or_above(fail_on) else 0

    def to_dict(self, fail_on: str = "error") -> dict[str, Any]:
        summary = self.summary()
        summary["fail_on"] = fail_on
        summary["failed"] = bool(self.findings_at_or_above(fail_on))
        return {
            "schema_version": REPORT_SCHEMA_VERSION,
            "command": self.command,
            "meta": self.meta,
            "results": [r.to_dict() for r in self.results],
            "summary": summary,
        }
