"""Policy: per-check severity, enablement and options, from YAML.

```yaml
checks:
  TRAFFIC-002:
    severity: warning        # critical | error | warning | info
    options: {min_idle_timeout_minutes: 30}
  CLIENTS-003:
    enabled: false
```
Unknown check IDs, unknown keys and unknown options are rejected with the field named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import InputError
from .model import CheckSpec, Severity

_KEYS = {"severity", "enabled", "options"}


@dataclass
class Policy:
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = "<default>"

    @classmethod
    def default(cls) -> "Policy":
        text = resources.files("validators.policy").joinpath("default.yaml").read_text()
        return cls.parse(yaml.safe_load(text) or {}, "validators/policy/default.yaml")

    @classmethod
    def load(cls, path: str | None) -> "Policy":
        base = cls.default()
        if not path:
            return base
        try:
            raw = yaml.safe_load(Path(path).read_text())
        except OSError as exc:
            raise InputError("--policy", f"cannot read {path}: {exc.strerror}.", "pass an existing YAML file.") from None
        except yaml.YAMLError as exc:
            raise InputError("--policy", f"{path} is not valid YAML ({exc}).", "fix the YAML syntax.") from None
        override = cls.parse(raw or {}, path)
        merged = {k: dict(v) for k, v in base.entries.items()}
        for cid, entry in override.entries.items():
            merged.setdefault(cid, {}).update(entry)
        return cls(merged, path)

    @classmethod
    def parse(cls, raw: Any, source: str) -> "Policy":
        from .registry import catalog

        if not isinstance(raw, Mapping) or set(raw) - {"checks"}:
            raise InputError(f"{source}", "the policy must be a mapping with one key, `checks`.",
                             "write `checks: {CHECK-ID: {severity: warning}}`.")
        checks = raw.get("checks") or {}
        if not isinstance(checks, Mapping):
            raise InputError(f"{source}: checks", "must be a mapping of check IDs.", "see `vmq-validate checks`.")
        known = catalog()
        entries: dict[str, dict[str, Any]] = {}
        for cid, entry in checks.items():
            where = f"{source}: checks.{cid}"
            if cid not in known:
                raise InputError(where, "no check has this ID.", "run `vmq-validate checks` for the list.")
            entry = entry or {}
            if not isinstance(entry, Mapping):
                raise InputError(where, "must be a mapping.", f"use keys {sorted(_KEYS)}.")
            extra = set(entry) - _KEYS
            if extra:
                raise InputError(where, f"unknown key(s) {sorted(extra)}.", f"use only {sorted(_KEYS)}.")
            if "severity" in entry and entry["severity"] not in [s.value for s in Severity]:
                raise InputError(f"{where}.severity", f"{entry['severity']!r} is not a severity.",
                                 "use error, warning or info.")
            if "enabled" in entry and not isinstance(entry["enabled"], bool):
                raise InputError(f"{where}.enabled", "must be true or false.", "write enabled: false.")
            opts = entry.get("options") or {}
            if not isinstance(opts, Mapping):
                raise InputError(f"{where}.options", "must be a mapping.", "write options: {name: value}.")
            bad = set(opts) - set(known[cid].defaults)
            if bad:
                raise InputError(f"{where}.options", f"unknown option(s) {sorted(bad)}.",
                                 f"known options: {sorted(known[cid].defaults) or 'none'}.")
            for name, value in opts.items():
                default = known[cid].defaults[name]
                if default is not None and not isinstance(value, type(default)) and not (
                        isinstance(default, float) and isinstance(value, int)):
                    raise InputError(f"{where}.options.{name}", f"must be a {type(default).__name__}, got {value!r}.",
                                     f"the default is {default!r}.")
            entries[cid] = dict(entry)
        return cls(entries, source)

    def enabled(self, check_id: str) -> bool:
        return bool(self.entries.get(check_id, {}).get("enabled", True))

    def severity(self, spec: CheckSpec) -> Severity:
        value = self.entries.get(spec.id, {}).get("severity")
        return Severity(value) if value else spec.severity

    def options(self, spec: CheckSpec) -> dict[str, Any]:
        conf = dict(spec.defaults)
        conf.update(self.entries.get(spec.id, {}).get("options") or {})
        return conf
