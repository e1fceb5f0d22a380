"""The one report writer: every report file (``--report-json``, ``--report-junit``, the Ansible module's
``report_json``/``report_junit``) is written here.

What is at the target decides how:

* nothing, or a regular file: the text goes into a new file made with ``mkstemp`` in the target's own
  folder (``O_CREAT|O_EXCL``, mode 0600 while written: a symlink planted at any temporary name is never
  followed), is flushed and fsynced, gets the old file's mode (else 0644 less the umask) and is renamed
  over the target. ``rename`` replaces the directory entry itself, so a symlink put at the target in the
  meantime is replaced, never followed. Readers see the old report or the new one, never half of one.
* a character device or a FIFO (``/dev/stdout``, ``/dev/null``, a pipe to another program): written
  in place, opened with ``O_NOFOLLOW`` (a FIFO without a reader is an error, not a hang).
* a symbolic link: refused (a report is never written through a link we did not create, and the link is
  not silently replaced either: give the real path), except a link that leads to a character device or a
  FIFO (``/dev/stdout`` is one): that is written in place, and the opened file is checked to be a
  character device or FIFO before a byte is written, so a link swapped to a regular file meanwhile is
  still never written through.
* a directory, a block device, a socket, a folder that does not exist and cannot be made: refused.

Every refusal and every write error (ENOSPC from ``/dev/full``, EACCES, EROFS ...) is an
:class:`~validators.core.errors.InputError` (exit 2, one line, naming the option and the path).
:func:`check_target` runs the same refusals before a command starts, so a bad path fails before
anything is collected or printed.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile

from ..core.errors import InputError

FIX = "give the path of a regular file (or of a new one) in a writable folder."


def _err(field: str, path: str, problem: str, fix: str = FIX) -> InputError:
    return InputError(field, f"{path}: {problem}", fix)


def _why(exc: OSError) -> str:
    return exc.strerror or errno.errorcode.get(exc.errno or 0, type(exc).__name__)


def _kind(st: os.stat_result) -> str:
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return "stream"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def _target_kind(path: str, st: os.stat_result) -> str:
    kind = _kind(st)
    if kind == "symlink":
        try:
            if _kind(os.stat(path)) == "stream":
                return "stream-link"
        except OSError:
            pass
    return kind


def _lstat(path: str, field: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):  # NotADirectory: the check below names the culprit
        return None
    except OSError as exc:
        raise _err(field, path, f"cannot look at it ({_why(exc)}).") from None


def _refuse(field: str, path: str, kind: str) -> None:
    if kind == "symlink":
        raise _err(field, path, "is a symbolic link; reports are not written through links.",
                   "give the real path of the report (or remove the link).")
    if kind not in ("file", "stream", "stream-link"):
        raise _err(field, path, f"is a {kind}, not a file.", FIX)


def check_target(path: str, field: str) -> None:
    """Refuse a target that :func:`write_report` would refuse (before anything is collected or printed)."""
    if not isinstance(path, str) or not path or "\x00" in path:
        raise InputError(field, f"{path!r} is not a file path.", FIX)
    st = _lstat(path, field)
    if st is not None:
        _refuse(field, path, _target_kind(path, st))
        return
    folder = os.path.dirname(os.path.abspath(path))
    probe = folder
    while not os.path.lexists(probe):  # the folder is made later; its nearest existing ancestor must be a folder
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise _err(field, path, f"{probe} is not a folder.", FIX)


def write_report(path: str, text: str, field: str = "report") -> None:
    """Write ``text`` to ``path`` as the module docstring says; InputError (exit 2) on any refusal or error."""
    check_target(path, field)
    data = text.encode("utf-8")
    st = _lstat(path, field)
    kind = _target_kind(path, st) if st is not None else None
    if kind in ("stream", "stream-link"):
        _write_in_place(path, data, field, follow=kind == "stream-link")
        return
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise _err(field, path, f"cannot make the folder {folder} ({_why(exc)}).") from None
    mode = stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask()
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    except OSError as exc:
        raise _err(field, path, f"cannot write in {folder} ({_why(exc)}).") from None
    try:
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except OSError as exc:
            raise _err(field, path, f"cannot write it ({_why(exc)}).") from None
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _write_in_place(path: str, data: bytes, field: str, follow: bool = False) -> None:
    flags = os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise _err(field, path, "is a FIFO that nobody reads.", "start the reader first, or give a file.") from None
        if exc.errno == errno.ELOOP:
            raise _err(field, path, "became a symbolic link; reports are not written through links.") from None
        raise _err(field, path, f"cannot open it ({_why(exc)}).") from None
    try:
        os.set_blocking(fd, True)
        st = os.fstat(fd)
        if not (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
            raise _err(field, path, "changed while it was opened.")
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    except OSError as exc:
        raise _err(field, path, f"cannot write it ({_why(exc)}).") from None
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
