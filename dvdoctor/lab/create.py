"""Create and destroy a lab: a healthy DV 1.5.0 namespace with one real, recent, complete backup.

The backup is made the way a user makes one: DV's backup template from dv-engine-0, its image
replaced by the dv-init-volume job's, run as a Job by the lab's machinery. Its measured size sets
the backup claim's capacity, so the healthy lab has room for exactly two more backups.
"""

from __future__ import annotations

import copy
import math
import os
import shutil
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Iterable

import yaml

from .. import k8s
from ..errors import ClusterError, UsageError
from . import api, contents, runtime, status
from .cluster import LabCluster
from .controllers import suffix
from .store import Store, mkdirs, now_iso

MIB = 1024 * 1024
#: Room left on the backup claim after the first backup, in backups: two more fit, a third does not.
ROOM_IN_BACKUPS = 2.5
BACKUP_TIMEOUT = 60


def _chown_tree(path: Path, uid: int) -> None:
    """Give a volume's content to the BAR uid, as an fsGroup or NFS volume would (root labs only)."""
    if os.geteuid() != 0:
        return
    for dirpath, dirnames, filenames in os.walk(path):
        os.chown(dirpath, uid, 0)
        os.chmod(dirpath, 0o755)
        for n in filenames:
            os.chown(os.path.join(dirpath, n), uid, 0)


def template_text(name: str) -> str:
    return resources.files("dvdoctor.lab").joinpath("templates", name).read_text(encoding="utf-8")


def engine_root(store: Store) -> Path:
    return store.pod_dir(contents.NAMES.engine_pod) / "rootfs"


def _install_engine_files(store: Store) -> None:
    """DV's BAR templates and caching script inside dv-engine-0, where dvcli.sh and the runbook find them."""
    names = contents.NAMES
    root = engine_root(store)
    template_dir = mkdirs(root / names.template_dir.lstrip("/"))
    for name in names.templates:
        (template_dir / name).write_text(template_text(name), encoding="utf-8")
    script = root / names.caching_script.lstrip("/")
    mkdirs(script.parent)
    script.write_bytes(resources.files("dvdoctor.lab").joinpath("engine", "dv-caching-bar.sh").read_bytes())
    script.chmod(0o755)
    log_dir = mkdirs(root / "var" / "log" / "dv")
    if os.geteuid() == 0:
        os.chown(log_dir, contents.BAR_UID, 0)


def finished_job_pod(store: Store, job: dict, started: str, finished: str, log: str, rc: int) -> dict:
    """A pod of a Job that ended before the lab was looked at: its status, and its log on disk."""
    spec = copy.deepcopy(job["spec"]["template"]["spec"])
    name = f"{k8s.name(job)}-{suffix()}"
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": job["metadata"]["namespace"], "creationTimestamp": started,
                     "labels": {**(job["spec"]["template"].get("metadata") or {}).get("labels", {}),
                                "controller-uid": job["metadata"]["uid"], "job-name": k8s.name(job)},
                     "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": k8s.name(job),
                                          "uid": job["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]},
        "spec": spec,
        "status": status.terminated(spec, started, rc),
    }
    for cs in pod["status"]["containerStatuses"]:
        cs["state"]["terminated"]["finishedAt"] = finished
    for cond in pod["status"]["conditions"]:
        cond["lastTransitionTime"] = finished
    pod_dir = runtime.ensure_pod_dir(store.pod_dir(name))
    (pod_dir / "log").write_text(log, encoding="utf-8")
    (pod_dir / "exitcode").write_text(f"{rc}\n")
    return store.write("pods", pod)


def bar_job(lab: LabCluster, template: str, image: str) -> dict:
    """DV's job template from dv-engine-0 with the BAR image set: what dvcli.sh (or dvdoctor) creates."""
    body = yaml.safe_load((engine_root(lab.store) / contents.NAMES.template_dir.lstrip("/") / template).read_text())
    for c in k8s.job_pod_spec(body)["containers"]:
        c["image"] = image
    return body


def run_job(lab: LabCluster, body: dict, timeout: float = BACKUP_TIMEOUT) -> dict:
    """Create a Job and wait for it to end; the finished Job (ClusterError if it did not end well)."""
    name = body["metadata"]["name"]
    lab.create("jobs", body)
    job = lab.wait("jobs", name, lambda j: j is None or k8s.job_state(j) != "active", timeout)
    if job is None or k8s.job_state(job) != "complete":
        pods = lab.list("pods", label_selector=f"job-name={name}")
        log = lab.logs(k8s.name(pods[-1])) if pods else ""
        raise ClusterError(f"job {name} did not complete ({k8s.job_failure(job or {}) or 'timeout'}): {log[-400:]}")
    return job


def du(path: Path) -> int:
    """Apparent bytes under a folder, as `du -sb` counts them (what the bar probe reports)."""
    total = path.lstat().st_size
    for dirpath, dirnames, filenames in os.walk(path):
        for n in dirnames + filenames:
            total += os.lstat(os.path.join(dirpath, n)).st_size
    return total


def set_bar_capacity(store: Store, size_bytes: int) -> str:
    """Declare the backup claim's size (claim request, capacity, and its volume), in whole MiB."""
    size = f"{math.ceil(size_bytes / MIB)}Mi"
    pvc = store.read("persistentvolumeclaims", contents.NAMES.bar_pvc)
    pvc["spec"]["resources"]["requests"]["storage"] = size
    pvc["status"]["capacity"]["storage"] = size
    store.write("persistentvolumeclaims", pvc)
    pv = store.read("persistentvolumes", pvc["spec"]["volumeName"])
    pv["spec"]["capacity"]["storage"] = size
    store.write("persistentvolumes", pv)
    return size


def newest_backup_dir(store: Store) -> Path | None:
    bar = store.volume_dir(contents.NAMES.bar_pvc) / "1.5.0"
    found = sorted(p for p in bar.iterdir() if p.is_dir() and not p.name.startswith(".")) if bar.is_dir() else []
    return found[-1] if found else None


def _prepare_folder(path: Path, force: bool) -> None:
    if path.exists() and any(path.iterdir()):
        if not force:
            raise UsageError(f"{path} exists and is not empty (use --force to replace a lab there)")
        if not (path / "lab.json").is_file():
            raise UsageError(f"{path} is not a lab; --force only replaces a lab folder, never other files")
        destroy_lab(path)
    mkdirs(path)
    path.chmod(0o755)


def create_lab(path: Path | str, breaks: Iterable[str] = (), namespace: str = "cpd30", *, force: bool = False,
               bar_hold: float = 0) -> LabCluster:
    """A healthy DV namespace on disk, with `breaks` (fault ids, see faults.py) applied in order.

    `bar_hold` (settings.bar_hold in lab.json) makes every later backup job wait that many seconds after
    writing its marker, as DV's 38-minute backup would: long enough to interrupt dvdoctor mid-watch.
    Returns the port as dvdoctor sees it (bound by the lab's RBAC rules); setup itself acts as admin."""
    from .faults import resolve

    faults = resolve(breaks)
    path = Path(path).resolve()
    _prepare_folder(path, force)
    store = Store(path)
    installed = datetime.now(timezone.utc) - timedelta(days=60)
    store.save_meta({"lab": 1, "namespace": namespace, "created": now_iso(), "bar_uid": contents.BAR_UID,
                     "images": contents.images(namespace), "rules": api.full_rules(), "resource_version": 0,
                     "settings": {"room_in_backups": ROOM_IN_BACKUPS}, "breaks": []})
    for d in ("objects", "volumes", "pods"):
        mkdirs(path / d)
    lab = LabCluster(path, admin=True)
    with store.locked():
        lab.create("storageclasses", contents.storage_class())
        for sa in ("default", "builder", "deployer", contents.NAMES.bar_sa):
            lab.create("serviceaccounts", contents.service_account(sa))
        lab.create("persistentvolumeclaims", contents.claim(contents.NAMES.data_pvc, contents.DATA_SIZE))
        data = store.volume_dir(contents.NAMES.data_pvc)
        contents.write_data(data)
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
    run_job(lab, backup)
    lab.delete("jobs", backup["metadata"]["name"])
    size = du(newest_backup_dir(store))
    used = du(store.volume_dir(contents.NAMES.bar_pvc) / "1.5.0")
    capacity = set_bar_capacity(store, int(used + ROOM_IN_BACKUPS * size))
    meta = store.meta()
    meta["settings"].update({"backup_bytes": size, "bar_capacity": capacity})
    if bar_hold:
        meta["settings"]["bar_hold"] = bar_hold
    store.save_meta(meta)
    for fault in faults:
        fault.apply(lab)
        meta = store.meta()
        meta["breaks"].append(fault.id)
        store.save_meta(meta)
    return LabCluster(path)


def destroy_lab(path: Path | str) -> None:
    """Kill every pod process of the lab, then remove its folder (only a folder that is a lab)."""
    path = Path(path).resolve()
    if not (path / "lab.json").is_file():
        raise UsageError(f"{path} is not a dvdoctor lab; refusing to remove it")
    pods = path / "pods"
    for pod_dir in sorted(pods.iterdir()) if pods.is_dir() else []:
        runtime.kill(pod_dir)
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:  # folders a fault made read-only must be writable to be removed
            full = os.path.join(dirpath, d)
            if not os.path.islink(full):
                os.chmod(full, 0o755)
    shutil.rmtree(path)


