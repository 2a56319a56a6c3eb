"""Create and destroy a lab: a healthy DV 1.5.0 namespace with one real, recent, complete backup.

The backup is made the way a user makes one: DV's backup template from dv-engine-0, its image
replaced by the dv-init-volume job's, run as a Job by the lab's machinery. Its measured size sets
the backup claim's capacity, so the healthy lab has room for exactly two more backups.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Iterable


from ..core import bounded
from ..core.errors import DvdoctorError, NoRoom, UsageError
from ..core.units import human_bytes
from . import api, contents, dbdata, runtime
from .cluster import LabCluster
from .bar import (backup_timeout, bar_job, du, engine_root, finished_job_pod, newest_backup_dir, run_job,
                  set_bar_capacity, template_text)
from .store import Store, mkdirs, now_iso, write_atomic

#: Room left on the backup claim after the first backup, in backups: two more fit, a third does not.
ROOM_IN_BACKUPS = 2.5
#: The file `lab create` writes first, with the lab's id: what `lab destroy` requires before removing a folder.
MARKER = ".dvdoctor-lab"
LAYOUT_DIRS = ("objects", "volumes", "pods")
#: Everything a lab holds at its top level (released/ once a claim was deleted with its volume kept).
LAYOUT_TOP = frozenset({MARKER, "lab.json", ".lock", "released", *LAYOUT_DIRS})


#: Room kept free beyond the data and its first backup: the lab's objects, pod logs, temp files.
ROOM_MARGIN = 256 * 1024**2
#: Errors that mean the disk (or the user's quota) is full.
FULL = (errno.ENOSPC, errno.EDQUOT)


def free_bytes(path: Path) -> int:
    """Free bytes on the disk that holds `path` (or would: its nearest existing parent)."""
    here = Path(path)
    while not here.exists() and here != here.parent:
        here = here.parent
    return shutil.disk_usage(here).free


def room_needed(data_size: int) -> int:
    """What `lab create --data-size` writes, about: the data, then its first backup, which DV keeps
    twice (component tarballs and the combined one) at about 3:1 compression, plus ROOM_MARGIN."""
    return data_size + 2 * data_size // 3 + ROOM_MARGIN


def _remove_half_made(path: Path, keep_folder: bool) -> None:
    """Undo what a failed `lab create` wrote in `path`: all of it was made by create (the folder was
    absent, empty or a lab --force replaced), so all of it goes; the folder too, unless it was there
    empty before. Best effort: the error that stopped create is the one the user must see."""
    try:
        _remove_tree(path, keep_folder)
    except OSError:
        pass


def _chown_tree(path: Path, uid: int) -> None:
    """Give a volume's content to the BAR uid, as an fsGroup or NFS volume would (root labs only).

    Never through a symbolic link: a link inside the volume (anyone with the volume can make one)
    may name any file of this machine, and root would hand it to the BAR uid. A link itself is
    given (lchown); os.walk does not descend into linked folders; a volume that is itself a link
    is left alone.
    """
    if os.geteuid() != 0 or path.is_symlink():
        return
    for dirpath, dirnames, filenames in os.walk(path):
        os.chown(dirpath, uid, 0, follow_symlinks=False)
        os.chmod(dirpath, 0o755)  # a real folder: walk yields no linked one
        for n in [*filenames, *(d for d in dirnames if os.path.islink(os.path.join(dirpath, d)))]:
            os.chown(os.path.join(dirpath, n), uid, 0, follow_symlinks=False)


def _install_engine_files(store: Store) -> None:
    """DV's BAR templates and caching script inside dv-engine-0, where dvcli.sh and the runbook find them."""
    names = contents.NAMES
    root = engine_root(store)
    template_dir = mkdirs(root / names.template_dir.lstrip("/"))
    for name in names.templates:
        write_atomic(template_dir / name, template_text(name))
    script = root / names.caching_script.lstrip("/")
    mkdirs(script.parent)
    write_atomic(script, resources.files("dvdoctor.lab").joinpath("engine", "dv-caching-bar.sh").read_bytes(), 0o755)
    log_dir = mkdirs(root / "var" / "log" / "dv")
    if os.geteuid() == 0:
        os.chown(log_dir, contents.BAR_UID, 0)


def _prepare_folder(path: Path, force: bool) -> None:
    if path.exists() and any(path.iterdir()):
        if not force:
            raise UsageError(f"{path} exists and is not empty (use --force to replace a lab there)")
        destroy_lab(path)  # only a folder `lab create` made; anything else is refused there
    mkdirs(path)
    path.chmod(0o755)
    write_atomic(path / MARKER, json.dumps({"lab_id": uuid.uuid4().hex, "created": now_iso()}) + "\n")
    for d in LAYOUT_DIRS:
        mkdirs(path / d)


def lab_id(path: Path) -> str:
    """The id `lab create` wrote in DIR's marker, once DIR is checked to be laid out as a lab.

    `lab destroy` and `lab create --force` remove a whole folder: a file named lab.json is no proof
    that the folder is a lab (anyone may have one), so it takes the marker, the lab's folders as
    real folders, lab.json agreeing with the marker when it can be read, and nothing else at the top.
    A lab whose lab.json is damaged can still be removed: its marker says what it is."""
    def refuse(reason: str) -> UsageError:
        return UsageError(f"{path} was not made by `dvdoctor lab create` ({reason}); refusing to remove it")

    if not path.is_dir():
        raise refuse("not a folder")
    marker = path / MARKER
    if marker.is_symlink() or not marker.is_file():
        raise refuse(f"no {MARKER} marker file")
    try:
        found = bounded.json_loads(bounded.read_text(marker, 4096), 4096)
    except (OSError, ValueError) as exc:
        raise refuse(f"its {MARKER} cannot be read: {exc}") from None
    ident = found.get("lab_id") if isinstance(found, dict) else None
    if not isinstance(ident, str) or not ident:
        raise refuse(f"its {MARKER} names no lab id")
    for d in LAYOUT_DIRS:
        if (path / d).is_symlink() or not (path / d).is_dir():
            raise refuse(f"{d}/ is not a folder")
    if (path / "lab.json").is_symlink():
        raise refuse("lab.json is a symbolic link")
    try:
        meta_id = Store(path).meta().get("lab_id")
    except UsageError:
        meta_id = ident  # damaged state: the marker alone says it is a lab
    if meta_id != ident:
        raise refuse(f"lab.json names lab {meta_id!r}, its marker {ident!r}")
    extra = sorted(p.name for p in path.iterdir() if p.name not in LAYOUT_TOP and not _leftover_temp(p.name))
    if extra:
        raise refuse(f"it holds {extra[0]!r}, which a lab does not; move it out first")
    return ident


def _leftover_temp(name: str) -> bool:
    """A temp file of an interrupted atomic write at the top (`.lab.json.XXXX.tmp`)."""
    return name.startswith(".") and name.endswith(".tmp")


def create_lab(path: Path | str, breaks: Iterable[str] = (), namespace: str = "cpd30", *, force: bool = False,
               bar_hold: float = 0, data_size: int = 0, files_scale: float = 1.0) -> LabCluster:
    """A healthy DV namespace on disk, with `breaks` (fault ids, see faults.py) applied in order.

    `bar_hold` (settings.bar_hold in lab.json) makes every later backup job wait that many seconds half-way
    (its marker written, its folder holding one tarball), as DV's 38-minute backup would: long enough to
    interrupt dvdoctor mid-watch, with a partial folder on the volume.
    `data_size` adds that many bytes of database-shaped data to DV's volume (see dbdata.py): backups
    then have the size and the day-to-day changes that copies are measured on.
    `files_scale` writes DV's own files (contents.DATA_FILES) at that fraction of their sizes: the test
    suite's session labs use a tenth and half, since every backup, read-back and restore gzips or
    gunzips them and a run makes hundreds. The backup claim is sized in whole MiB, so below about
    half the size more than two further backups fit.
    Returns the port as dvdoctor sees it (bound by the lab's RBAC rules); setup itself acts as admin."""
    from .faults import check_order, resolve

    faults = resolve(breaks)
    check_order(faults)  # a fault that another one leaves nothing to act on: refused before anything is made
    path = Path(path).resolve()
    if data_size:
        free, need = free_bytes(path), room_needed(data_size)
        if free < need:
            raise NoRoom(f"lab create --data-size {human_bytes(data_size)}: {human_bytes(free)} free on the disk "
                         f"under {path}; the data and its first backup need about {human_bytes(need)}")
    keep_folder = path.is_dir() and not path.is_symlink() and not any(path.iterdir())
    made = False
    try:
        _prepare_folder(path, force)  # refuses (a folder not empty, not a lab) before it changes anything
        made = True
        return _create(path, faults, namespace, bar_hold, data_size, files_scale)
    except DvdoctorError as exc:
        if not made:
            raise
        _remove_half_made(path, keep_folder)  # e.g. a fault whose job's pod did not start on a busy machine
        raise type(exc)(f"lab create: {exc}; the half-made lab was removed") from exc
    except OSError as exc:
        if exc.errno not in FULL:
            raise
        _remove_half_made(path, keep_folder)
        what = f" writing {exc.filename}" if exc.filename else ""
        need = f"; the data and its first backup need about {human_bytes(room_needed(data_size))}" if data_size else ""
        raise NoRoom(f"lab create: no room left on the disk under {path}{what} ({human_bytes(free_bytes(path))} free"
                     f"{need}); the half-made lab was removed") from None


def _create(path: Path, faults: list, namespace: str, bar_hold: float, data_size: int,
            files_scale: float) -> LabCluster:
    """create_lab's work, in a folder _prepare_folder made ready, once the room is known good."""
    store = Store(path)
    installed = datetime.now(timezone.utc) - timedelta(days=60)
    ident = json.loads((path / MARKER).read_text(encoding="utf-8"))["lab_id"]
    store.save_meta({"lab": 1, "lab_id": ident, "namespace": namespace, "created": now_iso(), "bar_uid": contents.BAR_UID,
                     "images": contents.images(namespace), "rules": api.full_rules(), "resource_version": 0,
                     "settings": {"room_in_backups": ROOM_IN_BACKUPS}, "breaks": []})
    lab = LabCluster(path, admin=True)
    with store.locked():
        lab.create("storageclasses", contents.storage_class())
        for sa in ("default", "builder", "deployer", contents.NAMES.bar_sa):
            lab.create("serviceaccounts", contents.service_account(sa))
        lab.create("persistentvolumeclaims", contents.claim(contents.NAMES.data_pvc, contents.DATA_SIZE))
        data = store.volume_dir(contents.NAMES.data_pvc)
        contents.write_data(data, scale=files_scale)
        if data_size:
            dbdata.write(data, data_size)
        mkdirs(data / "marker_files")
        _chown_tree(data, contents.BAR_UID)
        lab.create("persistentvolumeclaims", contents.claim(contents.NAMES.bar_pvc, "20Gi"))
        pvc = store.read("persistentvolumeclaims", contents.NAMES.bar_pvc)
        lab.patch("persistentvolumes", pvc["spec"]["volumeName"], {"spec": {"persistentVolumeReclaimPolicy": "Retain"}})
        for name in contents.NAMES.statefulsets:
            sts = store.write("statefulsets", contents.statefulset(name, namespace))
            lab.controllers.workload_pod(sts, f"{name}-0", "StatefulSet", name)
        _install_engine_files(store)
        for name in contents.NAMES.side_deployments:
            lab.create("deployments", contents.deployment(name, namespace))
        job = store.write("jobs", contents.init_volume_job(namespace, installed))
        job["metadata"]["namespace"] = namespace
        finished_job_pod(store, job, job["status"]["startTime"], job["status"]["completionTime"],
                          "DV volumes initialized\n", 0)
    backup = bar_job(lab, "dv-backup-job.yaml", contents.init_volume_image(namespace))
    run_job(lab, backup, backup_timeout(data_size))
    lab.delete("jobs", backup["metadata"]["name"])
    size = du(newest_backup_dir(store))
    used = du(store.volume_dir(contents.NAMES.bar_pvc) / "1.5.0")
    capacity = set_bar_capacity(store, int(used + ROOM_IN_BACKUPS * size))
    meta = store.meta()
    meta["settings"].update({"backup_bytes": size, "bar_capacity": capacity})
    if bar_hold:
        meta["settings"]["bar_hold"] = bar_hold
    if data_size:
        meta["settings"]["data_size"] = data_size
    store.save_meta(meta)
    for fault in faults:
        fault.apply(lab)
        meta = store.meta()
        meta["breaks"].append(fault.id)
        store.save_meta(meta)
    return LabCluster(path)


def destroy_lab(path: Path | str) -> None:
    """Kill every pod process of the lab, then remove its folder (only a folder `lab create` made, see lab_id)."""
    path = Path(path).resolve()
    lab_id(path)
    _remove_tree(path, keep_folder=False)


def _remove_tree(path: Path, keep_folder: bool) -> None:
    """Kill the lab's pod processes and remove what is in `path` (and `path` unless keep_folder)."""
    pods = path / "pods"
    for pod_dir in sorted(pods.iterdir()) if pods.is_dir() and not pods.is_symlink() else []:
        runtime.kill(pod_dir)
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:  # folders a fault made read-only must be writable to be removed
            full = os.path.join(dirpath, d)
            if not os.path.islink(full):
                os.chmod(full, 0o755)
    if not keep_folder:
        shutil.rmtree(path)
        return
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def churn_lab(path: Path | str, percent: float, *, scattered: float = 0.1, uniform: bool = False,
              seed: int | None = None) -> dict[str, int]:
    """A day of use on DV's data volume (see dbdata.churn); files stay the BAR uid's, as DV's are."""
    store = Store(Path(path).resolve())
    data = store.volume_dir(contents.NAMES.data_pvc)
    meta = store.meta()
    day = int(meta["settings"].get("churn_days", 0)) + 1
    try:
        done = dbdata.churn(data, percent, scattered=scattered, uniform=uniform,
                            seed=seed if seed is not None else day)
    except OSError as exc:
        if exc.errno not in FULL:
            raise
        raise NoRoom(f"lab churn: no room left on the disk under {path} ({human_bytes(free_bytes(data))} free); "
                     f"this day's churn appends about {human_bytes(dbdata.growth(data, percent, uniform=uniform))} "
                     f"to the logs and stopped part-way") from None
    _chown_tree(data, contents.BAR_UID)
    meta["settings"]["churn_days"] = day
    store.save_meta(meta)
    return done
