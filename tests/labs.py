"""Lab folders for tests: where they go, how a prepared one is copied, how one is removed.

Labs live under /tmp in folders every uid can traverse: a lab's pods run as the BAR uid when the
tests run as root, and pytest's own tmp_path parents are 0700. Creating a lab runs a real backup
job (the slow part), so one healthy lab is made per run (`golden_lab` in tests/conftest.py,
shared by the xdist workers: `made_once_per_run`)
and each test gets a copy made with `cp -a` (owners, modes, symlinks and mtimes kept); tests
about creation itself call create_lab on an empty folder.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from dvdoctor.lab import destroy_lab
from dvdoctor.lab.store import Store


def traversable_dir(prefix: str = "dvdoctor-labtest-") -> Path:
    """A new 0755 folder under the system's temp folder (a lab's pods must be able to reach it)."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    base.chmod(0o755)
    return base


def copy_lab(golden: Path, path: Path, bar_hold: float = 0) -> Path:
    """A copy of the golden lab at `path`, as create_lab(path, bar_hold=...) would have made it."""
    subprocess.run(["cp", "-a", str(golden), str(path)], check=True)
    if bar_hold:
        store = Store(path)
        meta = store.meta()
        meta["settings"]["bar_hold"] = bar_hold
        store.save_meta(meta)
    return path


def remove_lab(base: Path) -> None:
    """Kill the pod processes of the lab at base/lab (if there is one) and remove `base`."""
    if (base / "lab" / "lab.json").exists():
        destroy_lab(base / "lab")
    shutil.rmtree(base, ignore_errors=True)


def run_common_folder(tmp_path_factory) -> Path | None:
    """The folder every xdist worker of this run sees (None when pytest runs alone): each worker's
    basetemp is inside it, so what the workers share (their locks, their counts) goes there."""
    return tmp_path_factory.getbasetemp().parent if os.environ.get("PYTEST_XDIST_WORKER") else None


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on the file at `path` (made if missing): the run's workers are processes, so
    what they make once and share is made and counted under a file's lock, not a thread's."""
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def made_once_per_run(common: Path | None, name: str, make: Callable[[Path], None]) -> Iterator[Path]:
    """A traversable folder `make(folder)` fills, for a session fixture to yield from: made once per run
    and shared by its xdist workers, removed (its lab's pods killed) when the last worker using it is done.

    `common`: the run's folder all workers see (None: this process alone). The first worker to need it
    makes it under the lock and records where; the others wait, then use it; each counts itself in and
    out. A worker that comes after the last one left makes it anew. Why: what such a folder holds (a
    lab, a repository holding a copy of its backup) must be one and the same for every worker when a
    prepared thing made from it is shared too, and made once it costs once, not once per worker.
    A `make` that fails leaves nothing behind (its lab's pods killed, its folder removed)."""
    if common is None:
        base = _made(make)
        try:
            yield base
        finally:
            remove_lab(base)
        return
    lock, record, users = (common / f"{name}{suffix}" for suffix in (".lock", ".path", ".users"))
    with locked(lock):
        base = Path(record.read_text()) if record.exists() else None
        if base is None or not base.is_dir():
            base = _made(make)
            record.write_text(str(base))
        users.write_text(str(int(users.read_text() or 0) + 1 if users.exists() else 1))
    try:
        yield base
    finally:
        with locked(lock):
            left = int(users.read_text() or 1) - 1
            users.write_text(str(left))
            if left <= 0:
                record.unlink(missing_ok=True)
                remove_lab(base)


def _made(make: Callable[[Path], None]) -> Path:
    """A new traversable folder filled by `make`; removed again if `make` fails."""
    base = traversable_dir()
    try:
        make(base)
    except BaseException:
        remove_lab(base)
        raise
    return base
