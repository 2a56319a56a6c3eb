"""Every file dvdoctor writes on this machine is written here: a new name, then an atomic rename.

Reports, facts files, bundles, saved job logs, the repaired dvcli.sh copy and the lab's own state
go through `write_atomic`: the content goes to a temp file made by `mkstemp` in the target's own
folder (created exclusively, under a random name, so nobody can have planted a symlink there for it
to follow), gets its mode with `fchmod` (no umask, no window where it is wider), is flushed to disk,
and is renamed over the target. A rename replaces a planted symlink at the target's name instead of
writing through it, and a reader sees the old file or the new one, never half of one. An output the
user names that is a stream (a character device or a FIFO, itself or by a link: /dev/stdout,
/dev/null, a named pipe) is written through instead: replacing it would put a file where a device
was. The audit log is appended to, never rewritten: `append_line` opens it with O_NOFOLLOW and only if it is a
regular file.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import tempfile
from pathlib import Path

from .errors import UsageError


def write_atomic(path: Path | str, content: bytes | str, mode: int = 0o644, what: str | None = None,
                 durable: bool = True) -> None:
    """Write `content` to `path` through a mkstemp file in its folder and an atomic rename.

    With `what` (the option that named the path, e.g. `-o`), every failure is one UsageError line
    saying what was wrong: the path is a folder, its folder is missing, or the write was refused.
    Without it, OSError goes to the caller (dvdoctor's own files, where it is a bug or a full disk).
    `durable=False` skips the fsync: readers still see the old file or the new one, only a crash of
    the machine may lose the write. The lab's simulated objects take that (a lab does not outlive
    its machine, and it writes hundreds of small files a run); everything dvdoctor keeps does not.
    """
    path = Path(path)
    raw = content.encode("utf-8") if isinstance(content, str) else content
    label = f"{what} {path}" if what else str(path)
    if what is not None:
        check_target(path, what)
    stream = what is not None and _is_stream(path)
    try:
        if stream:
            _write_through(path, raw)
        else:
            _replace(path, raw, mode, durable)
    except OSError as exc:
        if what is None:
            raise
        raise UsageError(f"{label}: cannot write: {exc.strerror or exc}") from None


def check_target(path: Path | str, what: str) -> Path:
    """Refuse, before any work, an output path that cannot be written: a folder, in a missing folder,
    or a device that is no stream (a block device, a socket).

    Commands call it first (`collect -o` before collecting), so a typo costs nothing. A character
    device or a FIFO, named directly or by a link (`-o /dev/stdout`, `/dev/null`, a named pipe), is
    written through, never replaced: as root, a rename over /dev/null would put a file in its place.
    A link to anything else is replaced, not followed (see the module's docstring)."""
    path = Path(path)
    label = f"{what} {path}"
    if path.is_dir():
        raise UsageError(f"{label}: is a folder; give the name of a file to write")
    if not path.parent.is_dir():
        raise UsageError(f"{label}: the folder {path.parent} does not exist; create it or write elsewhere")
    try:
        own = os.lstat(path).st_mode
    except FileNotFoundError:
        return path
    if _is_stream(path) or stat.S_ISLNK(own):
        return path
    if not stat.S_ISREG(own):
        raise UsageError(f"{label}: is not a regular file (a {_kind(own)}); give the name of a file to write")
    return path


def distinct_targets(targets: list[tuple[str, Path]]) -> None:
    """Refuse two outputs of one command that name the same file (`--output-file junit=a.xml
    --output-file sarif=a.xml`, `collect -o b.tgz --bundle b.tgz`): the second would replace the first
    and the run would say it wrote both. A stream (`/dev/stdout`) may take several."""
    seen: dict[str, str] = {}
    for what, path in targets:
        if _is_stream(Path(path)):
            continue
        # a link at the path is replaced, not followed: the real folder and the name are what count
        key = os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(path))), os.path.basename(path))
        if key in seen:
            raise UsageError(f"{what} {path}: the same file as {seen[key]}; give each output its own file")
        seen[key] = f"{what} {path}"


def _is_stream(path: Path) -> bool:
    """A character device or a FIFO, itself or at the end of its links, or one of this process's open
    files by its descriptor (/dev/stdout, /dev/fd/N): written through, in order."""
    if _by_descriptor(path) is not None:
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


_OWN_DESCRIPTOR = re.compile(r"/(?:dev/fd|proc/self/fd|proc/thread-self/fd|proc/(?P<pid>\d+)/fd)/(?P<fd>\d+)")


def _by_descriptor(path: Path) -> int | None:
    """This process's descriptor that the path names, itself or by a link on its way (/dev/stdout is
    a link to /proc/self/fd/1), else None. `--output-file json=/dev/stdout` with stdout redirected
    to a file (`> report.txt`): renamed over, the link would become a regular file in /dev (for every
    process, as root); opened anew, its writes would land at offset 0 over the shell's own. It is
    written on that descriptor instead, where the rest of the output goes."""
    current = str(path)
    for _ in range(8):
        match = _OWN_DESCRIPTOR.fullmatch(current)
        if match and match.group("pid") in (None, str(os.getpid())):
            return int(match.group("fd"))
        try:
            target = os.readlink(current)
        except OSError:
            return None
        current = os.path.normpath(os.path.join(os.path.dirname(current), target))
    return None


def _kind(mode: int) -> str:
    """What is left once folders, files, links, character devices and FIFOs are taken out."""
    return "block device" if stat.S_ISBLK(mode) else "socket"


def _write_through(path: Path, raw: bytes) -> None:
    """Write to a character device or a FIFO as it is (no temp file, no rename, nothing created), or
    on this process's own descriptor that the path names (/dev/stdout)."""
    own = _by_descriptor(path)
    if own is not None:
        for stream in (sys.stdout, sys.stderr):  # what was printed before comes first
            if stream is not None:
                stream.flush()
        _write_all(own, raw)
        return
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):  # replaced since it was looked at
            raise OSError(0, "it is no longer a device or a pipe")
        _write_all(fd, raw)
    finally:
        os.close(fd)


def _write_all(fd: int, raw: bytes) -> None:
    view = memoryview(raw)
    while view:
        view = view[os.write(fd, view):]


def _replace(path: Path, raw: bytes, mode: int, durable: bool = True) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(raw)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def append_line(path: Path | str, line: str, mode: int = 0o600) -> None:
    """Append one line to a log file, never through a symlink and never into anything but a file."""
    path = Path(path)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        mode_now = os.lstat(path).st_mode
    except FileNotFoundError:
        mode_now = None
    if mode_now is not None and not stat.S_ISLNK(mode_now) and not stat.S_ISREG(mode_now):
        raise UsageError(f"{path} is not a regular file; refusing to write to it")
    try:
        fd = os.open(path, flags, mode)
    except OSError as exc:
        if path.is_symlink():
            raise UsageError(f"{path} is a symbolic link; refusing to write through it (remove it, or set "
                             "DVDOCTOR_AUDIT to a file)") from None
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UsageError(f"{path} is not a regular file; refusing to write to it")
        os.write(fd, (line.rstrip("\n") + "\n").encode("utf-8"))
    finally:
        os.close(fd)
