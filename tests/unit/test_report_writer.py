"""The one report writer (validators/report/writer.py): what is at the target decides how it is written,
and nothing at the target or at any temporary name is clobbered or followed. Real files, FIFOs and
character devices (/dev/null, /dev/full); the CLI cases run ``vmq-validate plan`` in-process."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from validators.cli import main
from validators.core.errors import InputError
from validators.report.writer import check_target, write_report

MANIFEST = "apiVersion: v1\nkind: Namespace\nmetadata: {name: mqtt}\n"


def _plan(tmp_path, *report_args):
    m = tmp_path / "m.yaml"
    m.write_text(MANIFEST)
    return main(["plan", "-f", str(m), *report_args])


def test_new_and_existing_files_are_replaced_atomically(tmp_path):
    target = tmp_path / "sub" / "deeper" / "r.json"
    write_report(str(target), "one", "--report-json")
    assert target.read_text() == "one" and stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()
    os.chmod(target, 0o640)
    inode = target.stat().st_ino
    write_report(str(target), "two", "--report-json")
    assert target.read_text() == "two" and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert target.stat().st_ino != inode, "a new file renamed over the old one, not rewritten in place"
    assert sorted(p.name for p in target.parent.iterdir()) == ["r.json"], "no temporary file is left"


def test_symlink_at_the_target_is_refused_and_its_target_untouched(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "r.json"
    link.symlink_to(victim)
    with pytest.raises(InputError) as exc:
        write_report(str(link), "report", "--report-json")
    assert "--report-json" in str(exc.value) and "symbolic link" in str(exc.value)
    assert victim.read_text() == "precious" and link.is_symlink()
    # through the CLI: exit 2 before anything is collected or printed
    assert _plan(tmp_path, "--report-json", str(link)) == 2
    assert victim.read_text() == "precious"


def test_symlinks_planted_at_temporary_names_are_never_followed(tmp_path, monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target = tmp_path / "r.json"
    # the old writer's fixed name, and the first names mkstemp will try (forced by the test)
    (tmp_path / "r.json.tmp").symlink_to(victim)
    (tmp_path / ".r.json.planted.tmp").symlink_to(victim)
    (tmp_path / ".r.json.planted2.tmp").symlink_to(tmp_path / "nowhere")  # dangling: O_CREAT would make it
    monkeypatch.setattr(tempfile, "_get_candidate_names", lambda: iter(["planted", "planted2", "free"]))
    write_report(str(target), "report", "--report-json")
    assert target.read_text() == "report" and not target.is_symlink()
    assert victim.read_text() == "precious" and not (tmp_path / "nowhere").exists()


def test_char_devices_are_written_in_place(tmp_path, capsys):
    write_report("/dev/null", "report", "--report-json")
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)
    # a link to a character device (what /dev/stdout is) is written in place too
    link = tmp_path / "out"
    link.symlink_to("/dev/null")
    write_report(str(link), "report", "--report-junit")
    assert link.is_symlink()
    assert _plan(tmp_path, "--report-json", "/dev/null", "--format", "json", "--fail-on", "never") == 0
    assert '"command": "plan"' in capsys.readouterr().out


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="/dev/full is Linux's")
def test_dev_full_is_exit_2_one_line_and_stays_a_device(tmp_path, capsys):
    with pytest.raises(InputError, match="No space left on device"):
        write_report("/dev/full", "report", "--report-junit")
    assert _plan(tmp_path, "--report-junit", "/dev/full") == 2
    out, err = capsys.readouterr()
    assert out == "", "no result is printed when a report cannot be written"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "--report-junit" in lines[0] and "/dev/full" in lines[0] and "Traceback" not in err
    assert stat.S_ISCHR(os.lstat("/dev/full").st_mode), "the device is still a device"


def test_fifo_is_written_in_place_or_refused_without_a_reader(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="FIFO that nobody reads"):
        write_report(str(fifo), "report", "--report-json")
    reader = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # a reader that is there before the report comes
    try:
        write_report(str(fifo), "report over a pipe", "--report-json")
        got = [os.read(reader, 4096)]
    finally:
        os.close(reader)
    assert got == [b"report over a pipe"] and stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_refusals(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        check_target(str(tmp_path), "--report-json")
    (tmp_path / "f").write_text("")
    with pytest.raises(InputError, match="not a folder"):
        check_target(str(tmp_path / "f" / "r.json"), "--report-json")
    with pytest.raises(InputError, match="not a file path"):
        check_target("a\x00b", "--report-json")
    blk = next((p for p in ("/dev/loop0", "/dev/sda", "/dev/vda") if Path(p).is_block_device()), None)
    if blk:
        with pytest.raises(InputError, match="block device"):
            check_target(blk, "--report-json")


def _umask() -> int:
    m = os.umask(0o022)
    os.umask(m)
    return m


def test_ansible_module_writes_through_the_same_writer(tmp_path):
    """The vmq_validate module (run as Ansible runs it) refuses a symlink at report_json with one line."""
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    module = root / "roles" / "vernemq_validate" / "library" / "vmq_validate.py"
    m = tmp_path / "m.yaml"
    m.write_text(MANIFEST)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "plan.json"
    link.symlink_to(victim)

    def run(**extra):
        f = tmp_path / "args.json"
        f.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"command": "plan", "args": ["-f", str(m)],
                                                         "fail_on": "never", **extra}}))
        res = subprocess.run([sys.executable, str(module), str(f)], capture_output=True, text=True, timeout=120,
                             cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
        return json.loads(res.stdout)

    res = run(report_json=str(link))
    assert res.get("failed") and "report_json" in res["msg"] and "symbolic link" in res["msg"]
    assert victim.read_text() == "precious" and "Traceback" not in res["msg"]
    res = run(report_json=str(tmp_path / "ok" / "plan.json"))
    assert not res.get("failed") and res["changed"] is True
    assert json.loads((tmp_path / "ok" / "plan.json").read_text())["command"] == "plan"
