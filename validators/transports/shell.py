"""The probe as a bash script for VerneMQ pods: pure functions to build it and to parse its output.

What the official VerneMQ images contain (vernemq/docker-vernemq): the Debian image is debian-slim
with bash and coreutils (plus curl, jq, procps, iproute2); the Alpine image adds bash, curl and jq to
busybox. Neither has Python or nc for sure. So the script needs only:
``bash`` (its ``/dev/tcp`` sockets, ``printf``), ``timeout``, ``dd``, ``od``, ``tr`` and ``md5sum``
(coreutils on Debian, busybox on Alpine). No curl: the HTTP request is written to ``/dev/tcp`` too.

The script is sent on the exec's **stdin** (``bash -s``), never as an argument, because it carries the
cookie and the API key; inside it they reach child processes only through the environment (``COOKIE``,
``APIKEY`` and ``APIBASIC``, the base64 of ``KEY:``) and are written by the ``printf`` builtin, so no
process's argument list ever holds them. The placeholders of the template are filled in one pass, each
value shell-quoted. When the
job carries no cookie the script uses the pod's own ``DOCKER_VERNEMQ_DISTRIBUTED_COOKIE`` (then the
challenge_ack cannot be verified by the validator and the evidence says so).
The whole script is one function body, so bash has read all of it before anything runs.

Output: one line per step, ``TAG IDX FIELDS...`` with every byte string as lowercase hex:
  T i rc HEX      cluster-port connect (rc 0 ok, 124 timeout, else HEX = bash's error text)
  E i rc HEX      EPMD NAMES (rc 0: HEX = the answer bytes)
  P i rc HEX      EPMD PORT_PLEASE2
  D i rc HEX      distribution-port connect
  H i STEP HEX    handshake progress: status, challenge, replied (our challenge), ack, closed (a step name)
  X i rc          handshake exit status (124: it ran out of time; 5: it ended before the challenge)
  Wj i STEP HEX   the same for the well-known cookie j (job["well_known_cookies"][j], in env WKj), after H
  Yj i rc         its exit status
  V rc HEX        the raw HTTP answer of GET /api/v1/cluster/show
"""

from __future__ import annotations

import base64
import math
import re
import secrets
import shlex
from typing import Any

from ..core.addr import host_port
from ..erldist import wire
from ..erldist.handshake import HandshakeResult
from ..erldist.probe import VIEW_MAX_BYTES

SHELL_ARGV = ["bash", "-s"]

_TEMPLATE = r"""main() {
export LC_ALL=C T=@T@ EP=@EP@ CP=@CP@ COOKIE=@COOKIE@ APIKEY=@APIKEY@ APIBASIC=@APIBASIC@
C=@C@
@WK@
emit() { printf '%s\n' "$*"; }
hexof() { od -An -v -tx1 | tr -d ' \n'; }
rd() { dd bs=1 count="$1" <&3 2>/dev/null | od -An -v -tx1 | tr -d ' \n'; }
conn() { timeout "$T" bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>&1; }
ask() { timeout "$T" bash -c '{ exec 3<>"/dev/tcp/$0/$1"; } 2>&1 || exit 7; printf "$2" >&3; od -An -v -tx1 <&3 | tr -d " \n"' "$1" "$2" "$3"; }
hs() {
  local g=$1 i=$2 h=$3 p=$4 sn=$5 l b ch c d m r e k
  exec 3<>"/dev/tcp/$h/$p" 2>/dev/null || { emit "$g $i closed connect"; return 5; }
  printf "$sn" >&3
  l=$(rd 2); [ ${#l} -eq 4 ] || { emit "$g $i closed status"; return 5; }
  b=$(rd $((16#$l))); emit "$g $i status $b"
  case $b in 736f6b|736f6b5f73696d756c74616e656f7573) ;; *) return 5 ;; esac
  l=$(rd 2); [ ${#l} -eq 4 ] || { emit "$g $i closed challenge"; return 5; }
  b=$(rd $((16#$l))); emit "$g $i challenge $b"
  if [ "${b:0:2}" = 4e ]; then ch=$((16#${b:18:8})); else ch=$((16#${b:14:8})); fi
  c=${VMQV_WKC-${COOKIE:-$DOCKER_VERNEMQ_DISTRIBUTED_COOKIE}}
  d=$(printf '%s%s' "$c" "$ch" | md5sum); d=${d:0:32}
  m=$(printf '%04x%04x' $RANDOM $RANDOM)
  r="001572$m$d"; e=""
  for ((k = 0; k < ${#r}; k += 2)); do e+="\\x${r:k:2}"; done
  printf "$e" >&3
  emit "$g $i replied $m"
  l=$(rd 2); [ ${#l} -eq 4 ] || { emit "$g $i closed ack"; return 0; }
  b=$(rd $((16#$l))); emit "$g $i ack $b"
}
probe() {
  local i=$1 h=$2 pp=$3 sn=$4 out rc port
  out=$(conn "$h" "$CP"); rc=$?; emit "T $i $rc $(printf '%s' "$out" | hexof)"
  out=$(ask "$h" "$EP" '\x00\x01n'); rc=$?
  [ $rc -eq 0 ] && emit "E $i 0 $out" || { emit "E $i $rc $(printf '%s' "$out" | hexof)"; return; }
  out=$(ask "$h" "$EP" "$pp"); rc=$?
  [ $rc -eq 0 ] && emit "P $i 0 $out" || { emit "P $i $rc $(printf '%s' "$out" | hexof)"; return; }
  [ "${out:0:4}" = 7700 ] && [ ${#out} -ge 8 ] || return
  port=$((16#${out:4:4}))
  out=$(conn "$h" "$port"); rc=$?; emit "D $i $rc $(printf '%s' "$out" | hexof)"
  [ $rc -eq 0 ] || return
  timeout "$T" bash -c 'hs "$@"' _ H "$i" "$h" "$port" "$sn"; rc=$?; emit "X $i $rc"
  [ $rc -eq 0 ] || return  # not as far as the challenge: another handshake would fail the same way
  shift 4; local a j k
  for a in "$@"; do  # J:NAME: the well-known cookie $WKJ (a public default) and its own probe name
    j=${a%%:*}; k=WK$j; VMQV_WKC=${!k} timeout "$T" bash -c 'hs "$@"' _ "W$j" "$i" "$h" "$port" "${a#*:}"; emit "Y$j $i $?"
  done
}
view() {
  local out rc
  out=$(timeout "$T" bash -c '{ exec 3<>"/dev/tcp/$0/$1"; } 2>&1 || exit 7; printf "GET /api/v1/cluster/show HTTP/1.0\r\nHost: %s\r\nx-api-key: %s\r\nAuthorization: Basic %s\r\n\r\n" "$2" "$APIKEY" "$APIBASIC" >&3; head -c @VIEWMAX@ <&3 | od -An -v -tx1 | tr -d " \n"' "$1" "$2" "$3"); rc=$?
  [ $rc -eq 0 ] && emit "V 0 $out" || emit "V $rc $(printf '%s' "$out" | hexof)"
}
export -f emit hexof rd conn ask hs probe
@TARGETS@
@VIEW@
wait
emit "Z done"
}
main
exit 0
"""


_TEMPLATE = _TEMPLATE.replace("@VIEWMAX@", str(VIEW_MAX_BYTES))  # a constant, filled in once
_PLACEHOLDER = re.compile(r"@(T|EP|CP|C|COOKIE|APIKEY|APIBASIC|WK|TARGETS|VIEW)@")


def _esc(data: bytes) -> str:
    """Bytes as a printf format of \\xHH escapes (safe inside single quotes)."""
    return "".join(f"\\x{b:02x}" for b in data)


def _sq(s: str) -> str:
    return shlex.quote(s)


def build_script(job: dict) -> str:
    """The bash script for one job (same job shape as :mod:`validators.erldist.probe`)."""
    timeout = max(1, math.ceil(float(job.get("timeout", 3.0))))
    src_host = job.get("source_host") or "127.0.0.1"
    lines = []
    run_id = secrets.token_hex(3)  # two validators probing at once must not collide on the name
    for i, t in enumerate(job.get("targets", [])):
        short = t["name"].split("@", 1)[0]
        name = f"vmq_validate_sh{run_id}_{i}@{src_host}"
        wk_names = "".join(f" '{j}:{_esc(wire.send_name(f'vmq_validate_sh{run_id}_{i}w{j}@{src_host}'))}'"
                           for j, _c in _wk_tried(job)) if t.get("well_known", True) else ""
        lines.append(
            'while [ "$(jobs -rp | wc -l)" -ge "$C" ]; do wait -n; done\n'
            f"timeout {timeout * (8 + 4 * len(_wk_tried(job)))} bash -c 'probe \"$@\"' _ {i} {_sq(t['host'])} "
            f"'{_esc(wire.port_please2_request(short))}' '{_esc(wire.send_name(name))}'{wk_names} &")
    view = ""
    if job.get("view"):
        host, port = _host_port(job["view"]["url"])
        view = f"view {_sq(host)} {port} {_sq(host_port(host, port))} &"  # Host: [v6]:port
    api_key = _plain((job.get("view") or {}).get("api_key"))
    basic = base64.b64encode(f"{api_key}:".encode()).decode() if job.get("view") else ""
    subs = {"T": str(timeout), "EP": str(int(job.get("epmd_port", 4369))),
            "CP": str(int(job.get("cluster_port", 44053))), "C": str(max(1, int(job.get("concurrency", 16)))),
            "COOKIE": _sq(_plain(job.get("cookie"))), "APIKEY": _sq(api_key), "APIBASIC": _sq(basic),
            "TARGETS": "\n".join(lines), "VIEW": view}
    # the well-known cookies (public defaults, DIST-008) go in the environment of the probes, never argv
    subs["WK"] = "unset VMQV_WKC" + "".join(f"; export WK{j}={_sq(c)}" for j, c in _wk_tried(job))
    # one pass: a value that contains a placeholder (a secret with "@APIKEY@") is never substituted again
    return _PLACEHOLDER.sub(lambda m: subs[m.group(1)], _TEMPLATE)


def _plain(value: Any) -> str:
    """A secret's text for the script (a Secret object or a plain string; None -> "")."""
    if value is None:
        return ""
    reveal = getattr(value, "reveal", None)
    return reveal() if callable(reveal) else str(value)


def _wk_tried(job: dict) -> list[tuple[int, str]]:
    """(index, cookie) of the well-known cookies the script tries itself: not the job's own cookie, whose
    handshake already answers for it (:func:`parse_output` reuses that one)."""
    return [(j, c) for j, c in enumerate(job.get("well_known_cookies") or ()) if c != job.get("cookie")]


def _host_port(url: str) -> tuple[str, int]:
    from urllib.parse import urlparse
    u = urlparse(url)
    return u.hostname or "127.0.0.1", u.port or (443 if u.scheme == "https" else 80)


def _unhex(s: str) -> bytes:
    try:
        return bytes.fromhex(s)
    except ValueError:
        raise wire.ProtocolError("exec output", "hex", f"{s[:40]!r} is not hex") from None


def _net_error(rc: int, msg: str) -> dict[str, Any]:
    low = msg.lower()
    if rc == 124:
        kind, detail = "timeout", "no answer in time"
    elif "refused" in low:
        kind, detail = "refused", "connection refused (nothing listens or a firewall rejects)"
    elif "no route" in low or "unreachable" in low:
        kind, detail = "unreachable", "no route to host"
    elif "timed out" in low:
        kind, detail = "timeout", "connect timed out"
    elif "reset" in low:
        kind, detail = "reset", "connection reset by peer"
    else:
        kind, detail = "error", (msg.strip().splitlines() or [f"exit status {rc}"])[-1][:200]
    return {"ok": False, "error": kind, "detail": detail}


def parse_http(raw: bytes) -> tuple[int, bytes]:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise wire.ProtocolError("HTTP answer", "headers", "no end of headers")
    status_line = head.split(b"\r\n", 1)[0].split(b" ")
    if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/") or not status_line[1].isdigit():
        raise wire.ProtocolError("HTTP answer", "status line", f"{head[:40]!r}")
    return int(status_line[1]), body


def parse_output(job: dict, text: str) -> list[dict[str, Any]]:
    """The script's output -> the same observations the Python probe emits. Never raises."""
    from . import transport_error
    src = job.get("source", "?")
    targets = job.get("targets", [])
    cookie = job.get("cookie")
    well_known = list(job.get("well_known_cookies") or ())
    out: list[dict[str, Any]] = []
    hs: dict[Any, dict[str, Any]] = {}
    ports: dict[int, int] = {}
    done = False
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            tag = parts[0]
            if tag == "Z":
                done = True
                continue
            if tag == "V":
                rc, data = int(parts[1]), _unhex(parts[2] if len(parts) > 2 else "")
                url = job.get("view", {}).get("url", "")
                base = {"src": src, "kind": "view", "url": url.rstrip("/") + "/api/v1/cluster/show"}
                if rc != 0:
                    err = _net_error(rc, data.decode("utf-8", "replace"))
                    out.append({**base, **err, "error": "timeout" if err["error"] == "timeout" else "connect"})
                    continue
                if len(data) >= VIEW_MAX_BYTES:  # the script's `head -c` cut it: same rule as the HTTP client
                    out.append({**base, "ok": False, "error": "too_large",
                                "detail": f"the answer is larger than {VIEW_MAX_BYTES} bytes (the size cap)"})
                    continue
                status, body = parse_http(data)
                if status == 200:
                    out.append({**base, "ok": True, "status": 200, "body": body.decode("utf-8", "replace")})
                elif 300 <= status < 400:
                    out.append({**base, "ok": False, "status": status, "error": "redirect",
                                "detail": f"HTTP {status} redirect: redirects are not followed"})
                else:
                    out.append({**base, "ok": False, "status": status, "error": "http", "detail": f"HTTP {status}"})
                continue
            i = int(parts[1])
            if not 0 <= i < len(targets):
                raise wire.ProtocolError("exec output", "index", f"{i} is not a target")
            base = {"src": src, "dst": targets[i]["name"]}
            if tag in ("T", "E", "P", "D"):
                rc, data = int(parts[2]), _unhex(parts[3] if len(parts) > 3 else "")
                res: dict[str, Any]
                if rc != 0:
                    res = _net_error(rc, data.decode("utf-8", "replace"))
                if tag == "T":
                    out.append({**base, "kind": "tcp", "port_name": "cluster",
                                "port": int(job.get("cluster_port", 44053)), **({"ok": True} if rc == 0 else res)})
                elif tag == "E":
                    if rc == 0:
                        try:
                            _p, names = wire.parse_names(data)
                            res = {"ok": True, "names": [list(x) for x in names]}
                        except wire.ProtocolError as exc:
                            res = {"ok": False, "error": "protocol", "detail": str(exc)}
                    out.append({**base, "kind": "epmd_names", **res})
                elif tag == "P":
                    short = targets[i]["name"].split("@", 1)[0]
                    if rc == 0:
                        try:
                            info = wire.parse_port2(data)
                            if info is None:
                                res = {"ok": True, "found": False, "name": short}
                            else:
                                ports[i] = info.port
                                res = {"ok": True, "found": True, "name": short, "port": info.port,
                                       "node_type": info.node_type, "protocol": info.protocol,
                                       "highest": info.highest, "lowest": info.lowest}
                        except wire.ProtocolError as exc:
                            res = {"ok": False, "error": "protocol", "detail": str(exc)}
                    out.append({**base, "kind": "port_please", **res})
                elif tag == "D":
                    if rc != 0:
                        out.append({**base, "kind": "handshake", "port": ports.get(i), "ok": False,
                                    "outcome": "connect_failed", "stage": "connect", "error": res["error"],
                                    "detail": res["detail"]})
                    else:
                        hs[i] = {"steps": []}
                continue
            if tag == "H" or tag[:1] == "W" and tag[1:].isdigit():
                key = i if tag == "H" else (i, int(tag[1:]))
                hs.setdefault(key, {"steps": []})["steps"].append((parts[2], parts[3] if len(parts) > 3 else ""))
                continue
            if tag == "X":
                h = hs.setdefault(i, {"steps": []})
                h["rc"] = int(parts[2])
                res = _handshake_from_steps(h["steps"], h["rc"], cookie).to_dict()
                out.append({**base, "kind": "handshake", "port": ports.get(i), **res})
                for wk in well_known:
                    if wk == cookie:  # the job's own cookie is this well-known one: the same handshake answers
                        out.append({**base, "kind": "well_known_cookie", "cookie": wk, "port": ports.get(i), **res})
                continue
            if tag[:1] == "Y" and tag[1:].isdigit():
                j = int(tag[1:])
                if not 0 <= j < len(well_known):
                    raise wire.ProtocolError("exec output", "index", f"{tag} is not a well-known cookie")
                h = hs.setdefault((i, j), {"steps": []})
                res = _handshake_from_steps(h["steps"], int(parts[2]), well_known[j]).to_dict()
                out.append({**base, "kind": "well_known_cookie", "cookie": well_known[j], "port": ports.get(i), **res})
                continue
            raise wire.ProtocolError("exec output", "tag", f"unknown tag {tag!r}")
        except (wire.ProtocolError, ValueError, IndexError) as exc:
            out.append(transport_error(src, f"exec output line {n}: {exc}"))
    if not done:
        out.append(transport_error(src, "the script did not finish (no end marker): exec cut short?"))
    return out


def _handshake_from_steps(steps: list[tuple[str, str]], rc: int, cookie: str | None) -> HandshakeResult:
    """Rebuild the handshake outcome from the script's progress lines."""
    peer: dict[str, Any] = {}
    mine = None
    stage = "send_name"
    for step, data in steps:
        if step == "closed":
            stage = {"connect": "connect", "status": "recv_status", "challenge": "recv_challenge",
                     "ack": "recv_challenge_ack"}.get(data, data)
            if stage == "connect":
                return HandshakeResult("connect_failed", stage="connect", error="refused",
                                       detail="connection failed on the second attempt")
            if stage == "recv_challenge_ack":
                return HandshakeResult("cookie_rejected", stage=stage, error="closed", **peer,
                                       detail="connected and sent the challenge reply; the peer closed without "
                                              "a challenge_ack (it computed another digest: the cookies differ)")
            return HandshakeResult("closed", stage=stage, error="closed", detail="peer closed the connection")
        try:
            if step == "status":
                stage = "recv_status"
                status = wire.parse_status(_unhex(data))
                if status not in ("ok", "ok_simultaneous"):
                    return HandshakeResult(f"status_{status.split(':')[0]}", stage=stage,
                                           detail=f"peer answered {status!r}")
                stage = "recv_challenge"
            elif step == "challenge":
                ch = wire.parse_challenge(_unhex(data))
                peer = {"peer_name": ch.name, "peer_flags": ch.flags, "peer_version": ch.version}
                stage = "send_challenge_reply"
            elif step == "replied":
                mine = int(data, 16)
                stage = "recv_challenge_ack"
            elif step == "ack":
                ack = wire.parse_challenge_ack(_unhex(data))
                if not cookie:
                    return HandshakeResult("ok", stage="done", detail="challenge_ack received (not verified: the "
                                                                       "pod's own cookie was used)", **peer)
                if mine is None or ack != wire.digest(cookie, mine):
                    return HandshakeResult("ack_mismatch", stage=stage,
                                           detail="the challenge_ack digest is not of our cookie", **peer)
                return HandshakeResult("ok", stage="done", **peer)
        except (wire.ProtocolError, ValueError) as exc:
            return HandshakeResult("protocol_error", stage=stage, detail=str(exc))
    if rc == 124:
        return HandshakeResult("timeout", stage=stage, error="timeout", detail="no answer in time", **peer)
    return HandshakeResult("error", stage=stage, error="error", detail=f"handshake ended early (exit {rc})", **peer)
