"""The one secret type: read, stripped and validated once; never shown by str/repr/format/exceptions."""

from __future__ import annotations

import copy
import pickle

import pytest

from validators.collect.targets import parse_targets
from validators.core import redact
from validators.core.errors import InputError
from validators.core.secret import API_KEY, COOKIE, Secret, reveal

VALUE = "s3cr3t-Value-xyz"


def test_reveal_and_masking():
    s = Secret(VALUE, "test source")
    assert s.reveal() == VALUE and reveal(s) == VALUE and reveal("plain") == "plain" and reveal(None) is None
    for text in (str(s), repr(s), f"{s}", f"{s!r}", "%s" % s, format(s, ">20"), repr([s]), repr({"k": s})):
        assert VALUE not in text
    assert "***" in repr(s) and "test source" in repr(s)
    assert redact.scrub(f"key={VALUE}") == "key=***"  # registered on creation


@pytest.mark.parametrize("raw", [VALUE + "\n", VALUE + "\r\n", VALUE + "\r", "  " + VALUE + "\t\n",
                                 (VALUE + "\n").encode()])
def test_trailing_line_ends_are_stripped(raw):
    assert Secret(raw, "src", API_KEY).reveal() == VALUE


@pytest.mark.parametrize("raw", ["ab\ncd-long", "ab\rcd-long", "ab\x00cd-long", "ab\x1bcd-long", "ab\x7fcd-long",
                                 "ab\u0085cd-long"])
@pytest.mark.parametrize("kind", [API_KEY, COOKIE])
def test_inner_control_characters_are_input_errors_without_the_value(raw, kind):
    with pytest.raises(InputError) as exc:
        Secret(raw, "cluster.api_key_env (environment variable K)", kind)
    text = str(exc.value)
    assert "cluster.api_key_env (environment variable K)" in text and "control character" in text
    assert raw not in text and "cd-long" not in text  # no part of the value
    assert exc.value.exit_code == 2


def test_api_key_must_be_printable_ascii_cookie_may_not():
    assert Secret("key with space", "src", API_KEY).reveal() == "key with space"
    with pytest.raises(InputError, match="printable ASCII"):
        Secret("kéy-long", "src", API_KEY)
    assert Secret("cookié with space", "src", COOKIE).reveal() == "cookié with space"


def test_empty_and_non_text():
    for raw in ("", " \n", b"\r\n"):
        with pytest.raises(InputError, match="empty"):
            Secret(raw, "src")
    with pytest.raises(InputError, match="not UTF-8"):
        Secret(b"\xff\xfe-bad-bytes", "src")
    with pytest.raises(InputError, match="must be text"):
        Secret(12, "src")  # type: ignore[arg-type]
    assert Secret.coerce(None, "src") is None and Secret.coerce("", "src") is None
    s = Secret(VALUE, "src")
    assert Secret.coerce(s, "other") is s


def test_immutable_copyable_not_picklable():
    s = Secret(VALUE, "src")
    with pytest.raises(AttributeError):
        s._value = "x"  # type: ignore[misc]
    assert copy.deepcopy(s) is s and copy.copy(s) is s
    with pytest.raises(TypeError):
        pickle.dumps(s)
    assert s == Secret(VALUE, "again") and s != Secret(VALUE + "x", "src") and len({s, Secret(VALUE, "b")}) == 1


def test_env_and_file_sources(tmp_path):
    env = {"K": VALUE + "\r\n", "EMPTY": "", "BAD": "a\nb-long-value"}
    assert Secret.from_env("K", "where", env).reveal() == VALUE
    with pytest.raises(InputError, match="MISSING is not set or empty"):
        Secret.from_env("MISSING", "where", env)
    assert Secret.from_env("EMPTY", "where", env, required=False) is None
    with pytest.raises(InputError) as exc:
        Secret.from_env("BAD", "where", env)
    assert "environment variable BAD" in str(exc.value) and "a\nb" not in str(exc.value)
    (tmp_path / "k").write_bytes(VALUE.encode() + b"\n")
    assert Secret.from_file("k", "where", tmp_path).reveal() == VALUE
    (tmp_path / "bin").write_bytes(b"\xff\x00\xfe")
    for path, why in (("bin", "not UTF-8"), ("missing", "cannot read"), (12, "not a file path")):
        with pytest.raises(InputError, match=why):
            Secret.from_file(path, "where", tmp_path)  # type: ignore[arg-type]


def test_targets_file_gives_secrets(tmp_path):
    raw = {"cluster": {"cookie_env": "C", "api_key_env": "A"},
           "nodes": [{"name": "VerneMQ@10.0.0.1", "host": "10.0.0.1"}]}
    spec = parse_targets(raw, env={"C": "cookie-value\n", "A": VALUE + "\r"})
    assert isinstance(spec.cookie, Secret) and spec.cookie.reveal() == "cookie-value"
    assert spec.api_key.reveal() == VALUE and VALUE not in repr(spec)
    with pytest.raises(InputError) as exc:
        parse_targets(raw, env={"C": "cookie-value", "A": "in\nside-key"})
    assert "cluster.api_key_env/api_key_file" in str(exc.value) and "in\nside" not in str(exc.value)
    raw["cluster"] = {"cookie_file": 12}
    with pytest.raises(InputError, match="not a file path"):
        parse_targets(raw, env={})


def test_ansible_module_never_shows_a_bad_key(tmp_path):
    """Through the vmq_validate module (run as Ansible runs it): an API key with an inner newline fails the
    task with one line naming its source; a trailing CR/LF is stripped and the run goes on."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    module = root / "roles" / "vernemq_validate" / "library" / "vmq_validate.py"
    t = tmp_path / "targets.yaml"
    t.write_text("cluster: {api_key_env: VMQ_MOD_KEY}\nnodes: [{name: VerneMQ@127.0.0.1, host: 127.0.0.1, "
                 "http: 'http://127.0.0.1:9'}]\n")

    def run(key):
        f = tmp_path / "args.json"
        f.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {
            "command": "clients", "args": ["--targets", str(t), "--samples", "1", "--timeout", "1", "--key-header"],
            "secret_env": {"VMQ_MOD_KEY": key}}}))
        res = subprocess.run([sys.executable, str(module), str(f)], capture_output=True, text=True, timeout=120,
                             cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
        return res.stdout + res.stderr, json.loads(res.stdout)

    key = "module-key-AbC123"
    out, res = run(f"{key}\nsecond-line")
    assert res["failed"] and "VMQ_MOD_KEY" in res["msg"] and "control character" in res["msg"]
    assert key not in out and "second-line" not in out and "Traceback" not in out
    out, res = run(f"{key}\r\n")
    assert "report" in res and key not in out and "Traceback" not in out
