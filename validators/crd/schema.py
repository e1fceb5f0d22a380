"""Validate an object against the CRD that serves its apiVersion/kind, as the API server would on
create (strict field validation): defaults applied first, then the structural schema, the
`x-kubernetes-list-type` rules and the CEL rules :mod:`validators.crd.cel` implements. CEL rules it
does not implement are reported by :meth:`CrdSet.unchecked_rules` (never silently passed).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from . import cel


@dataclass(frozen=True)
class Problem:
    path: str      # e.g. spec.rules[0].timeouts
    message: str
    source: str    # "schema", "x-kubernetes-list-type", "x-kubernetes-validations", "served versions"

    def __str__(self) -> str:
        return f"{self.path or '(object)'}: {self.message} ({self.source})"


@dataclass
class CrdSet:
    """CRDs by (group, kind): {"plural", "scope", "versions": {name: {"served", "schema"}}, "source"}."""

    crds: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    @property
    def groups(self) -> set[str]:
        return {g for g, _k in self.crds}

    def describe(self) -> list[str]:
        out = []
        for (g, k), c in sorted(self.crds.items()):
            served = [v for v, d in c["versions"].items() if d["served"]]
            out.append(f"{k}.{g} ({', '.join(served)})")
        return out

    def unchecked_rules(self, kinds: set[str] | None = None) -> list[str]:
        """Every CEL rule of the served versions that is not implemented: "Kind version path: message"."""
        out = []
        for (g, k), c in sorted(self.crds.items()):
            if kinds is not None and k not in kinds:
                continue
            for ver, d in c["versions"].items():
                if not d["served"]:
                    continue
                for path, rule in _rules(d["schema"], ""):
                    if not cel.implemented(rule):
                        out.append(f"{k} {ver} {path or '(root)'}: {rule.get('message') or rule.get('rule')}")
        return out


def _rules(schema: Mapping[str, Any], path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for r in schema.get("x-kubernetes-validations") or []:
        yield path, r
    for k, sub in (schema.get("properties") or {}).items():
        yield from _rules(sub, f"{path}.{k}" if path else k)
    if isinstance(schema.get("items"), Mapping):
        yield from _rules(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), Mapping):
        yield from _rules(schema["additionalProperties"], f"{path}{{}}")


# ---------------------------------------------------------------------------------------------
# structural schema -> JSON Schema

_DROP = {"x-kubernetes-validations", "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
         "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string", "x-kubernetes-embedded-resource",
         "nullable", "description", "default", "example", "externalDocs"}


def to_jsonschema(schema: Mapping[str, Any], root: bool = True) -> dict[str, Any]:
    """An OpenAPI v3 structural schema as a JSON Schema (draft 7): unknown fields are errors unless
    `x-kubernetes-preserve-unknown-fields`; `x-kubernetes-int-or-string` is integer or string;
    `nullable` adds null; `metadata` at the root is the API server's ObjectMeta (not re-checked here)."""
    out: dict[str, Any] = {k: v for k, v in schema.items() if k not in _DROP and k not in
                           ("properties", "items", "additionalProperties", "anyOf", "allOf", "oneOf", "not")}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if "properties" in schema:
        props = {k: to_jsonschema(v, root=False) for k, v in schema["properties"].items()}
        if root:
            props["metadata"] = {"type": "object"}
            props.setdefault("apiVersion", {"type": "string"})
            props.setdefault("kind", {"type": "string"})
        out["properties"] = props
        if not schema.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in schema:
            out["additionalProperties"] = False
    if isinstance(schema.get("additionalProperties"), Mapping):
        out["additionalProperties"] = to_jsonschema(schema["additionalProperties"], root=False)
    elif "additionalProperties" in schema:
        out["additionalProperties"] = schema["additionalProperties"]
    if isinstance(schema.get("items"), Mapping):
        out["items"] = to_jsonschema(schema["items"], root=False)
    for key in ("anyOf", "allOf", "oneOf"):
        if key in schema:
            out[key] = [to_jsonschema(s, root=False) for s in schema[key]]
    if "not" in schema:
        out["not"] = to_jsonschema(schema["not"], root=False)
    return out


def apply_defaults(obj: Any, schema: Mapping[str, Any]) -> Any:
    """Structural defaulting as the API server does it: a missing property with a `default` gets it,
    in every object that is present (recursively, also inside list items)."""
    if isinstance(obj, dict):
        props = schema.get("properties") or {}
        for k, sub in props.items():
            if k not in obj and "default" in sub:
                obj[k] = copy.deepcopy(sub["default"])
            if k in obj:
                obj[k] = apply_defaults(obj[k], sub)
        if isinstance(schema.get("additionalProperties"), Mapping):
            for k in list(obj):
                if k not in props:
                    obj[k] = apply_defaults(obj[k], schema["additionalProperties"])
    elif isinstance(obj, list) and isinstance(schema.get("items"), Mapping):
        return [apply_defaults(x, schema["items"]) for x in obj]
    return obj


def _fmt(path: Iterator[Any] | list[Any]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _walk(obj: Any, schema: Mapping[str, Any], path: str) -> Iterator[Problem]:
    """x-kubernetes-list-type and CEL rules, depth first, only where the value is present."""
    if obj is None:
        return
    lt = schema.get("x-kubernetes-list-type")
    if isinstance(obj, list) and lt in ("set", "map"):
        keys = schema.get("x-kubernetes-list-map-keys") or []
        seen: dict[Any, int] = {}
        for i, item in enumerate(obj):
            if lt == "set":
                key: Any = repr(item)
            else:
                key = tuple(repr(item.get(k)) if isinstance(item, Mapping) else None for k in keys)
            if key in seen:
                what = "value" if lt == "set" else f"key {'/'.join(keys)}"
                yield Problem(f"{path}[{i}]", f"duplicate {what} (also at [{seen[key]}]): the list is a "
                              f"{lt}", "x-kubernetes-list-type")
            seen.setdefault(key, i)
    for rule in schema.get("x-kubernetes-validations") or []:
        ok = cel.evaluate(rule, obj)
        if ok is False:
            yield Problem(path, rule.get("message") or f"failed rule {rule.get('rule')}", "x-kubernetes-validations")
    if isinstance(obj, Mapping):
        for k, sub in (schema.get("properties") or {}).items():
            if k in obj:
                yield from _walk(obj[k], sub, f"{path}.{k}" if path else k)
    elif isinstance(obj, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(obj):
            yield from _walk(item, schema["items"], f"{path}[{i}]")


_VALIDATORS: dict[int, Any] = {}


def validate_object(obj: Mapping[str, Any], crds: CrdSet) -> list[Problem] | None:
    """Problems of ``obj`` under the CRD for its apiVersion/kind; None when no CRD of the set covers
    its API group (not ours to judge)."""
    api = str(obj.get("apiVersion") or "")
    group, _, version = api.rpartition("/")
    if group not in crds.groups:
        return None
    crd = crds.crds.get((group, obj.get("kind")))
    if crd is None:
        return [Problem("kind", f"no CustomResourceDefinition for {obj.get('kind')}.{group} in the CRD folder "
                        f"(it has: {', '.join(crds.describe())})", "served versions")]
    ver = crd["versions"].get(version)
    if ver is None or not ver["served"]:
        served = [v for v, d in crd["versions"].items() if d["served"]]
        return [Problem("apiVersion", f"{api} is not served by the {obj.get('kind')} CRD "
                        f"({crd['source']}); served: {', '.join(served)}", "served versions")]
    schema = ver["schema"]
    data = apply_defaults(copy.deepcopy(dict(obj)), schema)
    key = id(schema)
    if key not in _VALIDATORS:
        import jsonschema  # only with --crd-dir: keeps the CLI start fast (jsonschema imports in ~0.3 s)

        _VALIDATORS[key] = (schema, jsonschema.Draft7Validator(to_jsonschema(schema)))
    validator = _VALIDATORS[key][1]
    problems = [Problem(_fmt(e.absolute_path), e.message, "schema")
                for e in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))]
    if problems:  # CEL rules assume a structurally valid object (as the API server evaluates them)
        return problems
    return list(_walk(data, schema, ""))
