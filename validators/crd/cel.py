"""The `x-kubernetes-validations` (CEL) rules of the Gateway API CRDs that matter for the routes and
Gateways the chart renders, written in Python. A rule is recognised by its `message` (each message in
the v1.6 CRDs stands for one rule text); :func:`implemented` says whether a rule is covered, and
:meth:`validators.crd.CrdSet.unchecked_rules` lists the ones that are not (docs/traffic.md).

Each function receives CEL's ``self`` (the value at the rule's place, defaults applied) and returns
True when the rule holds.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Callable, Mapping

Rule = Callable[[Any], bool]
_RFC1123 = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$")
_HOSTNAME = re.compile(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_PATH_CHARS = re.compile(r"^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$")
_DURATION = re.compile(r"([0-9]{1,5})(h|m|s|ms)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def has(obj: Any, key: str) -> bool:
    return isinstance(obj, Mapping) and key in obj and obj[key] is not None


def duration(text: str) -> float:
    """A Gateway API Duration (GEP-2257, e.g. "1h30m", "500ms", "0s") in seconds."""
    return sum(int(n) * _UNIT[u] for n, u in _DURATION.findall(str(text)))


def _ns(p: Mapping[str, Any]) -> str:
    return p.get("namespace") or ""


def _same_parent(p1: Mapping[str, Any], p2: Mapping[str, Any]) -> bool:
    return (p1.get("group"), p1.get("kind"), p1.get("name"), _ns(p1)) == \
        (p2.get("group"), p2.get("kind"), p2.get("name"), _ns(p2))


def _section(p: Mapping[str, Any]) -> str:
    return p.get("sectionName") or ""


def _hostname_key(listener: Mapping[str, Any]) -> Any:
    return listener.get("hostname") if has(listener, "hostname") else None


def _listeners_unique_combo(ls: list) -> bool:
    return all(sum(1 for b in ls if a.get("port") == b.get("port") and a.get("protocol") == b.get("protocol")
                   and _hostname_key(a) == _hostname_key(b)) == 1 for a in ls)


def _path_rule(check: Callable[[str], bool]) -> Rule:
    return lambda p: check(str(p.get("value", ""))) if p.get("type") in ("Exact", "PathPrefix") else True


def _unique_values(kind: str) -> Rule:
    def rule(addrs: list) -> bool:
        vals = [a.get("value") for a in addrs if a.get("type") == kind and has(a, "value")]
        return len(vals) == len(set(vals))
    return rule


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _total_matches(rules: list) -> bool:
    return sum(len(r.get("matches") or []) for r in rules[:16]) <= 128


def _timeouts(t: Mapping[str, Any]) -> bool:
    if not (has(t, "request") and has(t, "backendRequest")):
        return True
    req = duration(t["request"])
    return req == 0 or duration(t["backendRequest"]) <= req


def _replace(kind: str) -> Rule:
    field = {"ReplaceFullPath": "replaceFullPath", "ReplacePrefixMatch": "replacePrefixMatch"}[kind]
    return lambda p: has(p, field) if p.get("type") == kind else True


def _type_for(kind: str) -> Rule:
    field = {"ReplaceFullPath": "replaceFullPath", "ReplacePrefixMatch": "replacePrefixMatch"}[kind]
    return lambda p: p.get("type") == kind if has(p, field) else True


def _prefix_filter(f: Any, field: str) -> bool:
    fil = _map(_map(f).get(field))
    path = _map(fil.get("path"))
    return has(f, field) and has(fil, "path") and path.get("type") == "ReplacePrefixMatch" \
        and has(path, "replacePrefixMatch")


def _one_pathprefix_match(rule: Mapping[str, Any]) -> bool:
    matches = rule.get("matches") or []
    return len(matches) == 1 and has(matches[0], "path") and matches[0]["path"].get("type") == "PathPrefix"


def _exists_one(items: Any, pred: Callable[[Any], bool]) -> bool:
    return sum(1 for x in (items or []) if pred(x)) == 1


def _replace_prefix(field: str, in_backends: bool) -> Rule:
    def rule(r: Mapping[str, Any]) -> bool:
        if in_backends:
            cond = has(r, "backendRefs") and _exists_one(
                r["backendRefs"], lambda b: has(b, "filters") and _exists_one(b["filters"],
                                                                                lambda f: _prefix_filter(f, field)))
        else:
            cond = has(r, "filters") and _exists_one(r["filters"], lambda f: _prefix_filter(f, field))
        return _one_pathprefix_match(r) if cond else True
    return rule


def _map(v: Any) -> Mapping[str, Any]:
    return v if isinstance(v, Mapping) else {}


_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                        r"([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$")


RULES: dict[str, Rule] = {
    # Gateway listeners
    "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']":
        lambda ls: all(not has(lis, "tls") for lis in ls if lis.get("protocol") in ("HTTP", "TCP", "UDP")),
    "tls mode must be Terminate for protocol HTTPS":
        lambda ls: all((lis["tls"].get("mode") or "") in ("", "Terminate") for lis in ls
                       if lis.get("protocol") == "HTTPS" and has(lis, "tls")),
    "tls mode must be set for protocol TLS":
        lambda ls: all(has(lis, "tls") and has(lis["tls"], "mode") and lis["tls"]["mode"] != ""
                       for lis in ls if lis.get("protocol") == "TLS"),
    "hostname must not be specified for protocols ['TCP', 'UDP']":
        lambda ls: all((lis.get("hostname") or "") == "" for lis in ls if lis.get("protocol") in ("TCP", "UDP")),
    "Listener name must be unique within the Gateway":
        lambda ls: all(sum(1 for b in ls if b.get("name") == a.get("name")) == 1 for a in ls),
    "Combination of port, protocol and hostname must be unique for each listener": _listeners_unique_combo,
    "certificateRefs or options must be specified when mode is Terminate":
        lambda t: (len(t.get("certificateRefs") or []) > 0 or len(t.get("options") or {}) > 0)
        if t.get("mode") == "Terminate" else True,
    "IPAddress values must be unique": _unique_values("IPAddress"),
    "Hostname values must be unique": _unique_values("Hostname"),
    # routes: parentRefs, backendRefs
    "sectionName must be specified when parentRefs includes 2 or more references to the same parent":
        lambda ps: all((_section(a) == "") == (_section(b) == "") for a in ps for b in ps if _same_parent(a, b)),
    "sectionName must be unique when parentRefs includes 2 or more references to the same parent":
        lambda ps: all(sum(1 for b in ps if _same_parent(a, b) and _section(a) == _section(b)) == 1 for a in ps),
    "Must have port for Service reference":
        lambda b: has(b, "port") if (b.get("group") or "") == "" and b.get("kind") == "Service" else True,
    # HTTPRoute rules and matches
    "While 16 rules and 64 matches per rule are allowed, the total number of matches across all rules in a "
    "route must be less than 128": _total_matches,
    "RequestRedirect filter must not be used together with backendRefs":
        lambda r: all(not has(f, "requestRedirect") for f in r.get("filters") or [])
        if len(r.get("backendRefs") or []) > 0 else True,
    "backendRequest timeout cannot be longer than request timeout": _timeouts,
    "value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']":
        _path_rule(lambda v: v.startswith("/")),
    "type must be one of ['Exact', 'PathPrefix', 'RegularExpression']":
        lambda p: p.get("type") in ("Exact", "PathPrefix", "RegularExpression"),
    "must only contain valid characters (matching ^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$) for "
    "types ['Exact', 'PathPrefix']": _path_rule(lambda v: bool(_PATH_CHARS.match(v))),
    "May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both":
        lambda fs: not (any(f.get("type") == "RequestRedirect" for f in fs) and any(f.get("type") == "URLRewrite"
                                                                                   for f in fs)),
    "replaceFullPath must be specified when type is set to 'ReplaceFullPath'": _replace("ReplaceFullPath"),
    "type must be 'ReplaceFullPath' when replaceFullPath is set": _type_for("ReplaceFullPath"),
    "replacePrefixMatch must be specified when type is set to 'ReplacePrefixMatch'": _replace("ReplacePrefixMatch"),
    "type must be 'ReplacePrefixMatch' when replacePrefixMatch is set": _type_for("ReplacePrefixMatch"),
    "When using RequestRedirect filter with path.replacePrefixMatch, exactly one PathPrefix match must be "
    "specified": _replace_prefix("requestRedirect", False),
    "When using URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified":
        _replace_prefix("urlRewrite", False),
    "Within backendRefs, when using RequestRedirect filter with path.replacePrefixMatch, exactly one PathPrefix "
    "match must be specified": _replace_prefix("requestRedirect", True),
    "Within backendRefs, When using URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix match "
    "must be specified": _replace_prefix("urlRewrite", True),
    "Only one of percent or fraction may be specified in HTTPRequestMirrorFilter":
        lambda m: not (has(m, "percent") and has(m, "fraction")),
    "numerator must be less than or equal to denominator":
        lambda f: int(f.get("numerator", 0)) <= int(f.get("denominator", 100)),
    "Port for TLS configuration must be unique within the Gateway":
        lambda ps: all(sum(1 for b in ps if b.get("port") == a.get("port")) == 1 for a in ps),
    "Annotation keys must be in the form of an optional DNS subdomain prefix followed by a required name segment "
    "of up to 63 characters.": lambda m: all(bool(_LABEL_KEY.match(k)) for k in m),
    "Label keys must be in the form of an optional DNS subdomain prefix followed by a required name segment of up "
    "to 63 characters.": lambda m: all(bool(_LABEL_KEY.match(k)) for k in m),
    "If specified, the annotation key's prefix must be a DNS subdomain not longer than 253 characters in total.":
        lambda m: all(len(k.split("/")[0]) < 253 for k in m),
    "If specified, the label key's prefix must be a DNS subdomain not longer than 253 characters in total.":
        lambda m: all(len(k.split("/")[0]) < 253 for k in m),
    # TLSRoute hostnames (SNI)
    "Hostnames cannot contain an IP": lambda hs: not any(_is_ip(h) for h in hs),
    "Hostnames must be valid based on RFC-1123": lambda hs: all(bool(_RFC1123.match(h)) for h in hs if "*" not in h),
    "Wildcards on hostnames must be the first label, and the rest of hostname must be valid based on RFC-1123":
        lambda hs: all(h.startswith("*.") and bool(_RFC1123.match(h[2:])) for h in hs if "*" in h),
}

_CONTAINS = re.compile(r"^must not contain '(.+)' when type one of \['Exact', 'PathPrefix'\]$")
_ENDS = re.compile(r"^must not end with '(.+)' when type one of \['Exact', 'PathPrefix'\]$")
_FILTER_NIL = re.compile(r"^filter\.(\w+) must be nil if the filter\.type is not (\w+)$")
_FILTER_SET = re.compile(r"^filter\.(\w+) must be specified for (\w+) filter\.type$")
_REPEAT = re.compile(r"^(\w+) filter cannot be repeated$")
_HOSTNAME_VALUE = re.compile(r"^Hostname value must be empty or contain only valid characters")
_HOSTNAME_STATUS = re.compile(r"^Hostname value must only contain valid characters")
_STAR = re.compile(r"^Allow\w+ cannot contain '\*' alongside other \w+$")


def _lookup(message: str) -> Rule | None:
    if message in RULES:
        return RULES[message]
    m = _CONTAINS.match(message)
    if m:
        needle = m.group(1)
        return _path_rule(lambda v: needle not in v)
    m = _ENDS.match(message)
    if m:
        suffix = m.group(1)
        return _path_rule(lambda v: not v.endswith(suffix))
    m = _FILTER_NIL.match(message)
    if m:
        fld, typ = m.groups()
        return lambda f: not (has(f, fld) and f.get("type") != typ)
    m = _FILTER_SET.match(message)
    if m:
        fld, typ = m.groups()
        return lambda f: not (not has(f, fld) and f.get("type") == typ)
    m = _REPEAT.match(message)
    if m:
        typ = m.group(1)
        return lambda fs: sum(1 for f in fs if f.get("type") == typ) <= 1
    if _HOSTNAME_STATUS.match(message):
        return lambda a: bool(_HOSTNAME.match(str(a.get("value", "")))) if a.get("type") == "Hostname" else True
    if _STAR.match(message):
        return lambda s: not ("*" in s and len(s) > 1)
    if _HOSTNAME_VALUE.match(message):
        return lambda a: (not has(a, "value") or bool(_HOSTNAME.match(a["value"]))) if a.get("type") == "Hostname" \
            else True
    return None


def implemented(rule: Mapping[str, Any]) -> bool:
    return _lookup(str(rule.get("message") or "")) is not None


def evaluate(rule: Mapping[str, Any], value: Any) -> bool | None:
    """True/False when the rule is implemented, None when it is not (listed as not checked)."""
    fn = _lookup(str(rule.get("message") or ""))
    if fn is None:
        return None
    try:
        return bool(fn(value))
    except (AttributeError, KeyError, TypeError, ValueError):
        return False  # a value of the wrong shape: the structural schema reports it too
