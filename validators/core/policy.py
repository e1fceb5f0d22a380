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

import math
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Mapping

import yaml

from .errors import InputError
from .inputs import load_yaml, read_text
from .model import CheckSpec, Severity

_KEYS = {"severity", "enabled", "options"}


def _whole(lo: int):
    def rule(v):
        ok = isinstance(v, int) and not isinstance(v, bool) and v >= lo
        return None if ok else f"must be a whole number of at least {lo}, got {v!r}."
    return rule


def _number(lo: float, hi: float | None = None, lo_open: bool = False):
    def rule(v):
        ok = (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
              and (v > lo if lo_open else v >= lo) and (hi is None or v <= hi))
        span = f"{'above' if lo_open else 'at least'} {lo:g}" + (f" and at most {hi:g}" if hi is not None else "")
        return None if ok else f"must be a number {span}, got {v!r}."
    return rule


def _flag(v):
    return None if isinstance(v, bool) else f"must be true or false, got {v!r}."


def _text(allow_empty: bool = False, prefix: str = ""):
    def rule(v):
        if not isinstance(v, str) or (not v and not allow_empty) or (v and not v.startswith(prefix)):
            what = "a non-empty string" + (f" starting with {prefix!r}" if prefix else "")
            return f"must be {what}{' (or empty)' if allow_empty else ''}, got {v!r}."
        if v != v.strip() or any(ord(c) < 0x20 or ord(c) == 0x7F for c in v):
            return f"must not have spaces around it or control characters in it, got {v!r}."
        return None
    return rule


def _texts(v):
    if not isinstance(v, list):
        return f"must be a list of strings, got {v!r}."
    for i, item in enumerate(v):
        problem = _text()(item)
        if problem:
            return f"item {i} {problem}"
    return None


def _choice(*choices: str):
    def rule(v):
        return None if v in choices else f"{v!r} is not one of {', '.join(choices)} (lowercase)."
    return rule


#: a rule for every option of every check, by name (an option name means the same in every check that
#: has it); the unit tests fail for a check option without a rule
OPTION_RULES = {
    "tolerance": _whole(0),
    "max_offline_messages": _whole(0),
    "keepalive_seconds": _whole(1),
    "max_drop_ratio": _number(0, 1),
    "max_p99_ms": _number(0, lo_open=True),
    "allow_metadata_migration": _flag,
    "assume_nginx_without_class": _flag,
    "require_tls": _flag,
    "cloud": _choice("auto", "azure", "other"),
    "ws_path": _text(prefix="/"),
    "nginx_classes": _texts,
    "client_sources": _texts,
    "gateway_sources": _texts,
    "api_server": _texts,
    "ingress_controller": _text(allow_empty=True),
    "probe_ip": _text(),
    "dns": _text(),
}


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
        raw = load_yaml(read_text(path, "--policy", "pass an existing YAML policy file."), "--policy", path)
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
                problem = OPTION_RULES[name](value) if name in OPTION_RULES else None
                if problem:
                    raise InputError(f"{where}.options.{name}", problem, f"the default is {default!r}.")
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
