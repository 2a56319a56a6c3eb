"""DV's BAR in a lab: its job templates and the Jobs made from them, a finished job's pod, and the
backup volume's size and newest folder.

`lab create` builds a lab with these, and the faults (faults.py) reach into the same pieces to
break one; both import this module, so neither imports the other.
"""

from __future__ import annotations

import copy
import math
import os
from importlib import resources
from pathlib import Path

import yaml

from ..cluster import k8s
from ..core.errors import ClusterError
from ..core.units import is_timestamp
from . import contents, runtime, status
from .cluster import LabCluster
from .controllers import suffix
from .store import Store, write_atomic

MIB = 1024 * 1024


BACKUP_TIMEOUT = 60
#: The slowest rate a lab's backup job is given for its data (gzip on a busy 2-core machine writes
#: about 10 MiB/s): `lab create --data-size 1Gi` waits for its first backup as long as that takes.
SLOWEST_BACKUP_RATE = 2 * MIB


def backup_timeout(data_size: int) -> float:
    """How long a lab's backup job may take for `data_size` bytes of database data."""
    return BACKUP_TIMEOUT + data_size / SLOWEST_BACKUP_RATE


def template_text(name: str) -> str:
    return resources.files("dvdoctor.lab").joinpath("templates", name).read_text(encoding="utf-8")


def engine_root(store: Store) -> Path:
    return store.pod_dir(contents.NAMES.engine_pod) / "rootfs"


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
    write_atomic(pod_dir / "log", log)
    write_atomic(pod_dir / "exitcode", f"{rc}\n")
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
    """Declare the backup claim's size (claim request, capacity, and its volume), in whole MiB (rounded up)."""
    size = f"{math.ceil(size_bytes / MIB)}Mi"
    pvc = store.read("persistentvolumeclaims", contents.NAMES.bar_pvc)
    pvc["spec"]["resources"]["requests"]["storage"] = size
    pvc["status"]["capacity"]["storage"] = size
    store.write("persistentvolumeclaims", pvc)
    pv = store.read("persistentvolumes", pvc["spec"]["volumeName"])
    pv["spec"]["capacity"]["storage"] = size
    store.write("persistentvolumes", pv)
    return size


def claim_capacity(store: Store, claim: str) -> str | None:
    """A claim's capacity as its status says now (None: no such claim, or none said)."""
    pvc = store.read("persistentvolumeclaims", claim)
    return ((pvc or {}).get("status") or {}).get("capacity", {}).get("storage")


def backup_dirs(store: Store) -> list[Path]:
    """The backup volume's folders named as DV names a backup (its UTC start time), oldest first; a
    fault's odd folders (a newline in the name, month 13) are no backup to size or copy by."""
    bar = store.volume_dir(contents.NAMES.bar_pvc) / "1.5.0"
    return sorted(p for p in bar.iterdir() if p.is_dir() and not p.is_symlink() and is_timestamp(p.name)) \
        if bar.is_dir() else []


def newest_backup_dir(store: Store) -> Path | None:
    """The newest folder that holds a combined tarball: a folder dated next year with nothing in it
    (odd-backup-folders) is not the backup other faults copy, age or record."""
    found = [d for d in backup_dirs(store) if (d / contents.NAMES.combined_tarball).is_file()]
    return found[-1] if found else None
