"""The lab's state on disk: one folder that separate processes share as one namespace.

Layout (all plain files a person can read):
  .dvdoctor-lab                     the lab's id, written first by `lab create`: `lab destroy` needs it
  lab.json                          the same id, namespace, creation time, settings, RBAC rules
  objects/<kind>/<name>.json        API-shaped objects (metadata.uid, creationTimestamp, resourceVersion)
  volumes/<claim>/<subPath>/        the data of each bound claim
  released/<pv>/                    data of claims deleted while their volume was retained
  pods/<pod>/                       log, exitcode, pid, launch.json, rootfs/ (the pod's mount view)
Every write is atomic (temp file + rename) and read-modify-write runs under one flock, so a
dvdoctor run, a lab runner and `lab status` never see half an object. lab.json and the objects are
JSON on one line (`jq .` or `python -m json.tool` shows them indented): Python's C encoder writes that,
its indenting one is pure Python, and every API write rewrites lab.json (its counter) and the object.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from ..core import bounded, files
from ..core.errors import UsageError
from ..core.units import ISO_Z

#: Folders a pod's non-root uid must traverse: never more open than this.
DIR_MODE = 0o755
#: lab.json holds settings and RBAC rules: a few KiB.
META_MAX_BYTES = 4 * 1024 * 1024


def now_iso() -> str:
    """Kubernetes' timestamp format: RFC 3339 in UTC with a Z, to the second."""
    return datetime.now(timezone.utc).strftime(ISO_Z)


def write_atomic(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    """dvdoctor.core.files.write_atomic, with the folder made first: readers see old or new, never half.

    Not flushed to disk (durable=False): the lab is a simulation that lives and dies with this
    machine, and a flow writes a few hundred of these small files; an fsync each was most of the
    lab's own time."""
    mkdirs(path.parent)
    files.write_atomic(path, data, mode, durable=False)


def mkdirs(path: Path) -> Path:
    """Create a folder and its missing parents, each 0755 (umask would otherwise decide)."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir(exist_ok=True)
        d.chmod(DIR_MODE)
    return path


class _FolderLock:
    """flock on `<lab>/.lock`, shared by every Store of that folder in this process and reentrant:
    two flocks from one process on separate descriptors would wait for each other for ever."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.thread_lock = threading.RLock()
        self.depth = 0
        self.fd: int | None = None


_LOCKS: dict[Path, _FolderLock] = {}
#: The last lab.json text of each lab that passed bounded's size and depth checks (see Store.meta).
_CHECKED_META: dict[Path, str] = {}
_LOCKS_GUARD = threading.Lock()


class Store:
    """Objects and folders of one lab; the lock is reentrant within a process, exclusive across them."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        #: Paths made once: every API call of a lab looks at lab.json and a kind's folder, and a
        #: Path joined anew each time was a tenth of the lab's own Python time.
        self.meta_path = self.root / "lab.json"
        self._kind_dirs: dict[str, Path] = {}
        with _LOCKS_GUARD:
            self._lock = _LOCKS.setdefault(self.root, _FolderLock(self.root / ".lock"))

    # ---- paths ----------------------------------------------------------------------
    def kind_dir(self, kind: str) -> Path:
        folder = self._kind_dirs.get(kind)
        if folder is None:
            folder = self._kind_dirs[kind] = self.root / "objects" / kind
        return folder

    def object_path(self, kind: str, name: str) -> Path:
        return self.kind_dir(kind) / f"{name}.json"

    def volume_dir(self, claim: str) -> Path:
        return self.root / "volumes" / claim

    def released_dir(self, pv: str) -> Path:
        return self.root / "released" / pv

    def pod_dir(self, pod: str) -> Path:
        return self.root / "pods" / pod

    # ---- lock -----------------------------------------------------------------------
    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the lab's lock for a read-modify-write; nested uses in one process share it."""
        lock = self._lock
        with lock.thread_lock:
            if lock.depth == 0:
                lock.fd = os.open(lock.path, os.O_RDWR | os.O_CREAT, 0o644)
                fcntl.flock(lock.fd, fcntl.LOCK_EX)
            lock.depth += 1
            try:
                yield
            finally:
                lock.depth -= 1
                if lock.depth == 0 and lock.fd is not None:
                    fcntl.flock(lock.fd, fcntl.LOCK_UN)
                    os.close(lock.fd)
                    lock.fd = None

    # ---- meta -----------------------------------------------------------------------
    def meta(self) -> dict:
        """lab.json; damaged (not JSON, cut short, nested absurdly) it is one UsageError, not a traceback.

        Every API call reads it (the RBAC rules) and every write bumps its counter, so the same text is
        read again and again: text already found within the bounds is parsed without measuring it again.
        """
        try:
            text = bounded.read_text(self.meta_path, META_MAX_BYTES)
            if _CHECKED_META.get(self.meta_path) == text:
                meta = json.loads(text)
            else:
                meta = bounded.json_loads(text, META_MAX_BYTES)
                _CHECKED_META[self.meta_path] = text
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise UsageError(f"{self.meta_path}: the lab's state cannot be read ({reason}); "
                             f"make a new lab: dvdoctor lab create --force {self.root}") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("namespace"), str):
            raise UsageError(f"{self.meta_path}: the lab's state is damaged (no namespace in it); "
                             f"make a new lab: dvdoctor lab create --force {self.root}")
        return meta

    def save_meta(self, meta: dict) -> None:
        text = json.dumps(meta, sort_keys=True) + "\n"
        write_atomic(self.meta_path, text)
        if len(text) <= META_MAX_BYTES:  # what the lab itself wrote, from state it read within the bounds
            _CHECKED_META[self.meta_path] = text

    # ---- objects --------------------------------------------------------------------
    def read(self, kind: str, name: str) -> dict | None:
        try:
            return json.loads(self.object_path(kind, name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    def read_all(self, kind: str) -> list[dict]:
        folder = self.kind_dir(kind)
        if not folder.is_dir():
            return []
        out = []
        for path in sorted(folder.glob("*.json")):
            try:
                out.append(json.loads(path.read_text(encoding="utf-8")))
            except FileNotFoundError:
                continue  # deleted by another process between glob and read
        return out

    def versions(self, kind: str) -> list[tuple[str, tuple[int, int, int]]]:
        """Each stored object of a kind, by file, with what tells this version of it from any other
        (inode, mtime, size: every write is a new file renamed into place), read without parsing it.
        Files by their path as text: the lab's controllers look at every pod and Job at each API read."""
        folder = str(self.kind_dir(kind))
        out = []
        try:
            names = sorted(os.listdir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return []
        for name in names:
            if not name.endswith(".json"):
                continue
            path = os.path.join(folder, name)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue  # deleted by another process meanwhile
            out.append((path, (st.st_ino, st.st_mtime_ns, st.st_size)))
        return out

    @staticmethod
    def read_file(path: str) -> dict | None:
        """One stored object by its file (see versions); None when it was deleted meanwhile."""
        try:
            with open(path, encoding="utf-8") as fh:
                return json.loads(fh.read())
        except FileNotFoundError:
            return None

    def write(self, kind: str, obj: dict) -> dict:
        """Store an object, bumping its resourceVersion (a counter kept in lab.json)."""
        with self.locked():
            meta = self.meta()
            meta["resource_version"] = int(meta.get("resource_version", 0)) + 1
            self.save_meta(meta)
            md = obj.setdefault("metadata", {})
            md["resourceVersion"] = str(meta["resource_version"])
            md.setdefault("uid", str(uuid.uuid4()))
            md.setdefault("creationTimestamp", now_iso())
            self.kind_dir(kind).mkdir(parents=True, exist_ok=True)
            write_atomic(self.object_path(kind, md["name"]), json.dumps(obj, sort_keys=True) + "\n")
            return obj

    def remove(self, kind: str, name: str) -> bool:
        """Delete an object; a kind left with none loses its folder, so a lab looks as it did before
        a short-lived object (dvdoctor's lock) came and went."""
        try:
            self.object_path(kind, name).unlink()
        except FileNotFoundError:
            return False
        try:
            self.kind_dir(kind).rmdir()
        except OSError:
            pass  # other objects of the kind remain
        return True
