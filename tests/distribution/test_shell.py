"""The kube-exec probe script: how it is built (secrets only on stdin, safely quoted) and how its output
is parsed back into observations (real protocol bytes, every failure shape, fuzzed)."""

from __future__ import annotations

import shutil
import struct
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from validators.erldist import wire
from validators.transports.kubeexec import KubeExecTransport
from validators.transports.shell import SHELL_ARGV, build_script, parse_output

COOKIE = "sh-cookie-'$(touch PWNED)'\"`x`"
KEY = "sh-api-key-1234"
T = [{"name": "VerneMQ@10.0.0.2", "host": "10.0.0.2"}, {"name": "VerneMQ@10.0.0.3", "host": "10.0.0.3"}]


def job(**kw):
    j = {"source": "VerneMQ@10.0.0.1", "source_host": "10.0.0.1", "targets": T, "cookie": COOKIE,
         "timeout": 2, "epmd_port": 4369, "cluster_port": 44053, "concurrency": 4,
         "view": {"url": "http://10.0.0.1:8888", "api_key": KEY}, "pod": "vmq-0", "namespace": "ns"}
    j.update(kw)
    return j


def hx(b: bytes) -> str:
    return b.hex()


def names_answer() -> bytes:
    return struct.pack(">I", 4369) + b"name VerneMQ at port 9100\n"


def port2_answer(port=9100) -> bytes:
    return bytes([119, 0]) + struct.pack(">HBBHHH", port, 77, 0, 6, 5, 7) + b"VerneMQ" + b"\x00\x00"


def challenge(ch=987654321, name=b"VerneMQ@10.0.0.2") -> bytes:
    return b"N" + struct.pack(">QIIH", wire.PROBE_FLAGS, ch, 3, len(name)) + name


@pytest.mark.skipif(not shutil.which("bash"), reason="bash not installed")
def test_script_is_valid_bash_and_quotes_hostile_secrets(tmp_path):
    script = build_script(job())
    assert subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True).returncode == 0
    assert COOKIE not in " ".join(SHELL_ARGV)
    # with no targets and no view the script runs to its end marker; the quoted cookie is not executed
    cp = subprocess.run(["bash", "-s"], input=build_script(job(targets=[], view=None)), text=True,
                        capture_output=True, cwd=tmp_path, timeout=30)
    assert cp.stdout.strip().splitlines()[-1] == "Z done"
    assert not (tmp_path / "PWNED").exists()


def test_script_embeds_the_protocol_requests():
    script = build_script(job())
    esc = "".join(f"\\x{b:02x}" for b in wire.port_please2_request("VerneMQ"))
    assert esc in script
    assert "vmq_validate_sh" not in script  # the name is sent as escaped bytes only
    assert "".join(f"\\x{b:02x}" for b in b"vmq_validate_sh") in script
    assert "".join(f"\\x{b:02x}" for b in b"_0@10.0.0.1") in script
    assert build_script(job()) != script  # a fresh probe name per run


def test_healthy_output_parses_into_the_same_observations_as_the_python_probe():
    mine = 0x1234abcd
    ack = b"a" + wire.digest(COOKIE, mine)
    out = "\n".join([
        f"T 0 0 ", f"E 0 0 {hx(names_answer())}", f"P 0 0 {hx(port2_answer())}", "D 0 0 ",
        f"H 0 status {hx(b'sok')}", f"H 0 challenge {hx(challenge())}", f"H 0 replied {mine:08x}",
        f"H 0 ack {hx(ack)}", "X 0 0",
        f"V 0 {hx(b'HTTP/1.1 200 OK' + bytes([13, 10, 13, 10]) + b'{}')}", "Z done"])
    obs = parse_output(job(), out)
    kinds = {o["kind"]: o for o in obs}
    assert kinds["tcp"]["ok"] and kinds["tcp"]["port"] == 44053 and kinds["tcp"]["dst"] == "VerneMQ@10.0.0.2"
    assert kinds["epmd_names"]["names"] == [["VerneMQ", 9100]]
    assert kinds["port_please"]["port"] == 9100 and kinds["port_please"]["found"] is True
    hs = kinds["handshake"]
    assert (hs["outcome"], hs["ok"], hs["peer_name"], hs["port"]) == ("ok", True, "VerneMQ@10.0.0.2", 9100)
    assert kinds["view"] == {"src": "VerneMQ@10.0.0.1", "kind": "view", "url": "http://10.0.0.1:8888/api/v1/cluster/show",
                             "ok": True, "status": 200, "body": "{}"}


def test_failure_shapes():
    refused = hx(b"bash: connect: Connection refused\nbash: line 1: /dev/tcp/10.0.0.3/4369: Connection refused")
    out = "\n".join([
        "T 0 124 ", f"E 0 7 {refused}",
        "T 1 0 ", f"E 1 0 {hx(names_answer())}", f"P 1 0 {hx(port2_answer())}", "D 1 0 ",
        f"H 1 status {hx(b'sok')}", f"H 1 challenge {hx(challenge())}", "H 1 replied 00000001", "H 1 closed ack",
        "X 1 0", f"V 0 {hx(b'HTTP/1.1 401 Unauthorized' + bytes([13, 10, 13, 10]))}", "Z done"])
    obs = parse_output(job(), out)
    t0 = [o for o in obs if o["kind"] == "tcp" and o["dst"] == "VerneMQ@10.0.0.2"][0]
    assert t0["error"] == "timeout"
    e0 = [o for o in obs if o["kind"] == "epmd_names" and o["dst"] == "VerneMQ@10.0.0.2"][0]
    assert (e0["ok"], e0["error"]) == (False, "refused")
    hs = [o for o in obs if o["kind"] == "handshake"][0]
    assert (hs["dst"], hs["outcome"], hs["stage"]) == ("VerneMQ@10.0.0.3", "cookie_rejected", "recv_challenge_ack")
    view = [o for o in obs if o["kind"] == "view"][0]
    assert (view["ok"], view["status"]) == (False, 401)


def test_handshake_timeout_wrong_ack_and_refused_status():
    base = ["T 0 0 ", f"E 0 0 {hx(names_answer())}", f"P 0 0 {hx(port2_answer())}", "D 0 0 "]
    timeout = parse_output(job(targets=T[:1]), "\n".join(base + [f"H 0 status {hx(b'sok')}", "X 0 124", "Z done"]))
    hs = [o for o in timeout if o["kind"] == "handshake"][0]
    assert (hs["outcome"], hs["stage"]) == ("timeout", "recv_challenge")
    bad = parse_output(job(targets=T[:1]), "\n".join(base + [
        f"H 0 status {hx(b'sok')}", f"H 0 challenge {hx(challenge())}", "H 0 replied 00000005",
        f"H 0 ack {hx(b'a' + wire.digest('another', 5))}", "X 0 0", "Z done"]))
    assert [o for o in bad if o["kind"] == "handshake"][0]["outcome"] == "ack_mismatch"
    na = parse_output(job(targets=T[:1]), "\n".join(base + [f"H 0 status {hx(b'snot_allowed')}", "X 0 0", "Z done"]))
    assert [o for o in na if o["kind"] == "handshake"][0]["outcome"] == "status_not_allowed"
    dfail = parse_output(job(targets=T[:1]), "\n".join(base[:3] + [f"D 0 1 {hx(b'No route to host')}", "Z done"]))
    hs = [o for o in dfail if o["kind"] == "handshake"][0]
    assert (hs["outcome"], hs["error"]) == ("connect_failed", "unreachable")


def test_cut_output_and_garbage_become_transport_errors():
    obs = parse_output(job(), "T 0 0 \nT 9 0 \nQ 0 1\nE 0 0 zz\n")
    errors = [o["detail"] for o in obs if o["kind"] == "transport_error"]
    assert any("index" in e for e in errors) and any("unknown tag" in e for e in errors)
    assert any("not hex" in e for e in errors) and any("did not finish" in e for e in errors)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(
    st.text(max_size=60),
    st.builds(lambda tag, i, rest: f"{tag} {i} {rest}", st.sampled_from(list("TEPDHXVZ") + ["W0", "Y0", "Y1"]), st.integers(-2, 4),
              st.one_of(st.binary(max_size=30).map(bytes.hex), st.text(max_size=20)))), max_size=12))
def test_parse_output_fuzzed_never_raises(lines):
    for o in parse_output(job(), "\n".join(lines)):
        assert "kind" in o and "src" in o


def test_kube_exec_sends_the_script_on_stdin_only():
    calls = []

    def fake_exec(namespace, pod, container, argv, stdin, timeout):
        calls.append((namespace, pod, container, argv, stdin, timeout))
        return "Z done\n", ""
    t = KubeExecTransport(kube=None, exec_fn=fake_exec)
    obs = t.run([job(container="vernemq", targets=[], view=None)])
    assert obs == []
    ((ns, pod, container, argv, stdin, timeout),) = calls
    assert (ns, pod, container, argv) == ("ns", "vmq-0", "vernemq", ["bash", "-s"])
    assert COOKIE not in " ".join(argv) and "sh-cookie" in stdin and 0 < timeout < 600


def test_kube_exec_forbidden_is_a_transport_error_naming_the_permission():
    class Forbidden(Exception):
        status = 403

    def fake_exec(*a):
        raise Forbidden()
    obs = KubeExecTransport(kube=None, exec_fn=fake_exec).run([job()])
    assert obs == [{"src": "VerneMQ@10.0.0.1", "kind": "transport_error", "ok": False,
                    "detail": "exec into pod ns/vmq-0: 403 Forbidden (the identity needs create on pods/exec)"}]


def test_well_known_cookie_lines_parse_into_their_own_observations():
    """After the configured cookie's handshake the script tries `vmq` (W0/Y0): accepted and refused shapes."""
    j = job(well_known_cookies=["vmq"])
    mine = 0x0badcafe
    base = ["T 0 0 ", f"E 0 0 {hx(names_answer())}", f"P 0 0 {hx(port2_answer())}", "D 0 0 ",
            f"H 0 status {hx(b'sok')}", f"H 0 challenge {hx(challenge())}", "H 0 replied 00000001", "H 0 closed ack",
            "X 0 0", f"W0 0 status {hx(b'sok')}", f"W0 0 challenge {hx(challenge())}", f"W0 0 replied {mine:08x}"]
    accepted = parse_output(j, "\n".join(base + [f"W0 0 ack {hx(b'a' + wire.digest('vmq', mine))}", "Y0 0 0",
                                                 "Z done"]))
    (hs,) = [o for o in accepted if o["kind"] == "handshake"]
    (w,) = [o for o in accepted if o["kind"] == "well_known_cookie"]
    assert hs["outcome"] == "cookie_rejected"
    assert (w["cookie"], w["outcome"], w["port"], w["peer_name"]) == ("vmq", "ok", 9100, "VerneMQ@10.0.0.2")
    refused = parse_output(j, "\n".join(base + ["W0 0 closed ack", "Y0 0 0", "Z done"]))
    (w,) = [o for o in refused if o["kind"] == "well_known_cookie"]
    assert (w["outcome"], w["stage"]) == ("cookie_rejected", "recv_challenge_ack")
    # a Y line for a cookie the job never named is an error of the exec output, not a crash
    bad = parse_output(j, "\n".join(base + ["Y3 0 0", "Z done"]))
    assert any("not a well-known cookie" in o.get("detail", "") for o in bad)


def test_well_known_cookie_equal_to_the_configured_one_reuses_the_handshake():
    j = job(cookie="vmq", well_known_cookies=["vmq"])
    script = build_script(j)
    assert "WK0" not in script  # nothing extra to try
    mine = 7
    out = "\n".join(["T 0 0 ", f"E 0 0 {hx(names_answer())}", f"P 0 0 {hx(port2_answer())}", "D 0 0 ",
                     f"H 0 status {hx(b'sok')}", f"H 0 challenge {hx(challenge())}", f"H 0 replied {mine:08x}",
                     f"H 0 ack {hx(b'a' + wire.digest('vmq', mine))}", "X 0 0", "Z done"])
    (w,) = [o for o in parse_output(j, out) if o["kind"] == "well_known_cookie"]
    assert (w["cookie"], w["outcome"]) == ("vmq", "ok")


@pytest.mark.skipif(not shutil.which("bash"), reason="bash not installed")
def test_the_well_known_cookie_reaches_the_probe_by_environment_with_its_own_probe_name():
    j = job(well_known_cookies=["vmq"])
    script = build_script(j)
    assert subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True).returncode == 0
    assert "unset VMQV_WKC; export WK0=vmq\n" in script
    probe_lines = [ln for ln in script.splitlines() if "bash -c 'probe" in ln]
    assert len(probe_lines) == 2 and all(" '0:\\x00" in ln for ln in probe_lines)
    assert "".join(f"\\x{b:02x}" for b in b"_0w0@10.0.0.1") in script


@pytest.mark.skipif(not shutil.which("bash"), reason="bash not installed")
def test_only_targets_marked_well_known_get_the_extra_handshake():
    j = job(well_known_cookies=["vmq"], targets=[{**T[0], "well_known": False}, {**T[1], "well_known": True}])
    script = build_script(j)
    assert subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True).returncode == 0
    first, second = [ln for ln in script.splitlines() if "bash -c 'probe" in ln]
    assert " '0:\\x00" not in first and " '0:\\x00" in second

