from __future__ import annotations

import json

from ..core import redact
from ..core.model import Report


def render(report: Report, fail_on: str = "error") -> str:
    return json.dumps(redact.scrub_obj(report.to_dict(fail_on)), indent=2, sort_keys=False, default=str) + "\n"
