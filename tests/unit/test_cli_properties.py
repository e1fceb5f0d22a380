"""Property: whatever a user types, `vmq-validate` ends with an exit code in {0, 1, 2}, never a traceback and
never an "internal error", and every input that is invalid by construction ends with exit 2 and an
"error:" line naming the option or file.

Generated: the command (plan, reachability, clients --replay, distribution --targets, cluster --kubeconfig,
explain), its option values (some valid, some invalid: other scripts' digits, nan/inf, negatives, 1883/,
empty strings, a directory as a report file) and its files (valid manifests and captures, random bytes,
random text, deep nesting, YAML of the wrong shape). ``validators.cli.main`` runs in-process; no network:
distribution/cluster only get invalid sources, clients only captured answers (--replay).
"""

from __future__ import annotations

import atexit
import contextlib
import io
import itertools
import shutil
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from validators.cli import main
from validators.core.model import FAIL_ON

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = (ROOT / "tests" / "traffic" / "manifests" / "release.yaml").read_text()
CAPTURE = ROOT / "tests" / "fixtures" / "vernemq" / "2.1.2" / "02_steady_clients"
WORK = Path(tempfile.mkdtemp(prefix="vmq-cli-prop-"))
_SEQ = itertools.count()  # every generated file gets its own name
atexit.register(shutil.rmtree, WORK, True)

# ---------------------------------------------------------------------------------------------- values
# (text, invalid?) pairs
good_int = st.integers(1, 64).map(lambda n: (str(n), False))
bad_int = st.sampled_from(["", "-1", "١٨", "1_0", "0x10", "1e3", "abc", " ", "9" * 30]).map(lambda s: (s, True))
good_seconds = st.sampled_from(["0.2", "1", "2.5"]).map(lambda s: (s, False))
bad_seconds = st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1e400", "١", "", "1,5", "99999999"]).map(
    lambda s: (s, True))
good_duration = st.sampled_from(["1s", "500ms", "2"]).map(lambda s: (s, False))
bad_duration = st.sampled_from(["9" * 400 + "h", "99999999h", "five", "1d", "-1s", "١٠s", "", "1s\n2s"]).map(
    lambda s: (s, True))
good_port = st.sampled_from(["1883", "4369/TCP", "53/UDP"]).map(lambda s: (s, False))
bad_port = st.sampled_from(["١٨٨٣", "1883/", "0", "65536", "1883/XTP", "+1883", "", "/TCP"]).map(
    lambda s: (s, True))
junk_text = st.text(max_size=200)
junk_bytes = st.binary(max_size=300)

bad_file_bytes = st.one_of(
    junk_bytes.filter(lambda b: _not_utf8(b)),
    st.integers(500, 5000).map(lambda n: b"[" * n),
    st.sampled_from([b"a: [", b"- 1\n- 2\n", b"42", b"\x00\xff", b"? [a]\n: b\n", b"&a [*a]",
                     b"!!python/object:os.system {}"]),
)


def _not_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


@st.composite
def a_file(draw, good: bytes | None, bad=bad_file_bytes, any_text=True):
    """(path, invalid?) of a fresh file: the good content, known-bad content, or random text (unknown)."""
    p = WORK / f"f{next(_SEQ)}"
    choice = draw(st.sampled_from(["good", "bad", "text"] if any_text else ["good", "bad"]))
    if choice == "good" and good is not None:
        p.write_bytes(good)
        return str(p), False
    if choice == "text":
        p.write_text(draw(junk_text))
        return str(p), None  # may or may not be valid
    p.write_bytes(draw(bad))
    return str(p), True


def pick(draw, *options):
    return draw(st.one_of(*options))


# --------------------------------------------------------------------------------------------- commands
@st.composite
def report_options(draw):
    argv, invalid = [], False
    if draw(st.booleans()):
        argv += ["--format", draw(st.sampled_from(["text", "json", "junit"]))]
    if draw(st.booleans()):
        argv += ["--fail-on", draw(st.sampled_from(FAIL_ON))]
    if draw(st.booleans()):
        bad_policies = st.one_of(bad_file_bytes, st.sampled_from([
            b"checks: {TRAFFIC-003: {options: {cloud: Azure}}}", b"checks: {CLIENTS-001: {options: {tolerance: -1}}}",
            b"checks: {TRAFFIC-008: {options: {ws_path: ''}}}", b"checks: {NOPE-001: {}}", b"checks: 5"]))
        f, bad = draw(a_file(b"checks: {TRAFFIC-002: {severity: warning}}\n", bad=bad_policies))
        argv += ["--policy", f]
        invalid = _worst(invalid, bad)
    if draw(st.booleans()):
        kind = draw(st.sampled_from(["file", "dir", "under-file"]))
        target = {"file": WORK / f"r{next(_SEQ)}.json", "dir": WORK,
                  "under-file": Path(MANIFEST_FILE) / "r.json"}[kind]
        argv += [draw(st.sampled_from(["--report-json", "--report-junit"])), str(target)]
        invalid = _worst(invalid, kind != "file")
    return argv, invalid


def _worst(*flags):
    """True (invalid) wins over None (unknown) over False (valid)."""
    return True if True in flags else None if None in flags else False


MANIFEST_FILE = WORK / "release.yaml"
MANIFEST_FILE.write_text(MANIFEST)


@st.composite
def plan_cmd(draw):
    f, bad = draw(a_file(MANIFEST.encode()))
    argv = ["plan", "-f", f]
    if draw(st.booleans()):
        argv += ["-n", draw(st.sampled_from(["mqtt", "vernemq", "default"]))]
    rep, rbad = draw(report_options())
    return argv + rep, _worst(bad, rbad)


@st.composite
def reachability_cmd(draw):
    port, pbad = draw(st.one_of(good_port, bad_port))
    argv = ["reachability", "-f", str(MANIFEST_FILE), "--from", "10.0.0.1", "--to", "10.0.0.2", "--port", port]
    return argv, pbad


@st.composite
def clients_replay_cmd(draw):
    phase = WORK / f"phase{next(_SEQ)}"
    shutil.copytree(CAPTURE, phase, dirs_exist_ok=True)
    invalid = False
    if draw(st.booleans()):
        (phase / "_capture_log.txt").write_bytes(draw(bad_file_bytes.filter(_not_utf8)) or b"\xff")
        invalid = True
    elif draw(st.booleans()):  # a mangled answer is a finding about that node (unknown), not an input error
        name = draw(st.sampled_from(sorted(p.name for p in phase.glob("node*_*.json"))))
        (phase / name).write_bytes(draw(st.one_of(junk_bytes, st.integers(100, 20000).map(lambda k: b"[" * k))))
    argv = ["clients", "--replay", str(phase)]
    for opt, good, bad in (("--samples", good_int, bad_int), ("--timeout", good_seconds, bad_seconds),
                           ("--sample-interval", good_duration, bad_duration)):
        if draw(st.booleans()):
            value, vbad = draw(st.one_of(good, bad))
            if opt == "--samples" and not vbad and int(value) > 100:
                vbad = True
            argv += [opt, value]
            invalid = invalid or vbad
    rep, rbad = draw(report_options())
    return argv + rep, _worst(invalid, rbad)


@st.composite
def distribution_cmd(draw):
    # only invalid sources: a valid one would open sockets
    f, _ = draw(a_file(None, bad=st.one_of(bad_file_bytes, st.sampled_from([
        b"nodes: []", b"cluster: {cookie_file: 12}\nnodes: [{name: VerneMQ@h, host: h}]",
        b"cluster: {cookie_env: NOPE_UNSET_VAR_X}\nnodes: [{name: VerneMQ@h, host: h}]",
        b"nodes: [{name: \"VerneMQ@h\\n\", host: h}]", b"cluster: {epmd_port: 0}",
        b"cluster: {transport: carrier-pigeon}"])), any_text=False))
    argv = ["distribution", "--targets", f]
    for opt, good, bad in (("--timeout", good_seconds, bad_seconds), ("--concurrency", good_int, bad_int)):
        if draw(st.booleans()):
            argv += [opt, draw(st.one_of(good, bad))[0]]
    rep, _ = draw(report_options())
    return argv + rep, True


@st.composite
def cluster_cmd(draw):
    bad = st.one_of(bad_file_bytes, st.sampled_from([b"contexts: 5", b"contexts: [{name: 7}]",
                                                     b"apiVersion: v1\nkind: Config\n"]))
    f, _ = draw(a_file(None, bad=bad, any_text=False))
    return ["cluster", "--kubeconfig", f, "--context", "c", "--namespace", "n", "--release", "r"], True


@st.composite
def explain_cmd(draw):
    cid = draw(st.one_of(st.sampled_from(["TRAFFIC-001", "CLIENTS-003", "DIST-006"]), junk_text))
    valid = cid in ("TRAFFIC-001", "CLIENTS-003", "DIST-006")
    return ["explain", cid], None if not valid else False


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    stdin = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(b""))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        sys.stdin = stdin
    return code, out.getvalue(), err.getvalue()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.one_of(plan_cmd(), reachability_cmd(), clients_replay_cmd(), distribution_cmd(), cluster_cmd(),
                 explain_cmd()))
def test_any_cli_input_ends_in_0_1_or_2_and_invalid_input_in_2(cmd):
    argv, invalid = cmd
    code, out, err = run(argv)
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in err + out and "internal error" not in err, (argv, err)
    if invalid is True:
        assert code == 2, (argv, code, out[-500:], err)
        assert "error:" in err and err.count("\n") <= 30, (argv, err)
    if invalid is False:
        assert code in (0, 1), (argv, code, err)
