"""JUnit XML: one <testsuite> per check category, one <testcase> per result.

fail -> <failure>, unknown -> <error>, skip -> <skipped>; warn -> <failure> only when its
severity is at or above --fail-on (so CI goes red exactly when the exit code is 1).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import defaultdict

from ..core import redact
from ..core.model import Report, Severity, Status


def render(report: Report, fail_on: str = "error") -> str:
    counted = {id(r) for r in report.findings_at_or_above(fail_on)}
    suites = ET.Element("testsuites", name=f"vmq-validate {report.command}")
    grouped = defaultdict(list)
    for r in report.results:
        grouped[r.category].append(r)
    for category, results in sorted(grouped.items()):
        suite = ET.SubElement(suites, "testsuite", name=category, tests=str(len(results)))
        counts = {"failures": 0, "errors": 0, "skipped": 0}
        for r in results:
            case = ET.SubElement(suite, "testcase", classname=f"{category}.{r.check}",
                                 name=redact.scrub(f"{r.check} {r.subject}: {r.title}"))
            detail = redact.scrub(
                f"[{r.severity.value}] {r.message}\nremedy: {r.remedy}\nevidence: "
                f"{json.dumps(r.evidence, sort_keys=True, default=str)}")
            if r.status is Status.SKIP:
                ET.SubElement(case, "skipped", message=redact.scrub(r.message))
                counts["skipped"] += 1
            elif r.status is Status.UNKNOWN and id(r) in counted:
                ET.SubElement(case, "error", message=redact.scrub(r.message), type="unknown").text = detail
                counts["errors"] += 1
            elif r.status in (Status.FAIL, Status.WARN) and id(r) in counted:
                ET.SubElement(case, "failure", message=redact.scrub(r.message), type=r.severity.value).text = detail
                counts["failures"] += 1
            elif r.status is not Status.PASS:
                ET.SubElement(case, "system-out").text = f"{r.status.value.upper()}: {detail}"
        for k, v in counts.items():
            suite.set(k, str(v))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


__all__ = ["render", "Severity"]
