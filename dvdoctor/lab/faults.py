"""The runbook's failure modes, switched on one at a time: one fault per check id, named by it.

Each fault changes the lab the way the failure happens on a cluster (a deleted pod, a root-owned
folder, a job that ran into a wall), so that exactly its check fails and every other check still
passes or skips. Faults act as a cluster administrator would: RBAC does not stop them.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable

from ..cluster import k8s
from ..core.errors import ClusterError, UsageError
from ..core.names import REPLICAS_ANNOTATION
from ..core.units import ISO_Z, TIMESTAMP_FORMAT as TS_FORMAT, is_timestamp, timestamp_time
from . import contents, runtime, status
from .cluster import LabCluster
from .bar import MIB, backup_dirs, finished_job_pod, bar_job, du, engine_root, newest_backup_dir, set_bar_capacity

NAMES = contents.NAMES
#: The runbook's own log line of a backup pod that could not create its folder.
RUNBOOK_ERRNO13 = "Operation failed: [Errno 13] Permission denied: '/mnt/PV/bar/2021-01-14-19-20-07'"
#: Where a dangling restore-point link points: the runbook's backup, which this volume never held.
MISSING_TARGET = "/mnt/PV/bar/2021-01-22-19-27-31/dv_backup.tar.gz"


@dataclass(frozen=True)
class Need:
    """Something of a healthy lab that a fault acts on, and that another fault may take away."""

    what: str
    present: Callable[[LabCluster], bool]


def _template_dir(lab: LabCluster) -> Path:
    """Where dvcli.sh finds DV's BAR job templates, inside dv-engine-0."""
    return engine_root(lab.store) / NAMES.template_dir.lstrip("/")


def _templates_present(lab: LabCluster) -> bool:
    return all((_template_dir(lab) / name).is_file() for name in NAMES.templates)


def _bar_writable(lab: LabCluster) -> bool:
    """The lab itself can write the backup folder (always as root; as a user, unless bar-permissions)."""
    return os.geteuid() == 0 or os.access(bar_dir(lab), os.W_OK | os.X_OK)


def _bar_uid_writes(lab: LabCluster) -> bool:
    """DV's backup job (the BAR uid; a non-root lab's pods run as the lab's user) can write the backup folder."""
    if os.geteuid() != 0:
        return _bar_writable(lab)
    try:
        st = bar_dir(lab).stat()
    except FileNotFoundError:
        return False
    return st.st_uid == contents.BAR_UID and bool(st.st_mode & 0o200)


#: What faults act on, by name. Faults combine freely (`--break A,B`) except where one takes away
#: what a later one needs: bar-low-space has no claim to shrink once bar-pvc-missing deleted it.
NEEDS: dict[str, Need] = {
    "bar-claim": Need(f"the backup claim {NAMES.bar_pvc}",
                      lambda lab: lab.store.read("persistentvolumeclaims", NAMES.bar_pvc) is not None),
    "bar-writable": Need("a backup folder the lab can write", _bar_writable),
    "bar-uid-writes": Need("a backup folder DV's backup job can write", _bar_uid_writes),
    "bar-sa": Need(f"the service account {NAMES.bar_sa}",
                   lambda lab: lab.store.read("serviceaccounts", NAMES.bar_sa) is not None),
    "bar-templates": Need("DV's BAR job templates in dv-engine-0", _templates_present),
    "no-backup-job": Need(f"a namespace with no {NAMES.backup_job} job in it (DV runs one backup at a time)",
                          lambda lab: lab.store.read("jobs", NAMES.backup_job) is None),
    "no-list-job": Need(f"a namespace with no {NAMES.list_job} job in it",
                        lambda lab: lab.store.read("jobs", NAMES.list_job) is None),
    "lease-api": Need("the Lease API (Kubernetes 1.12 or later)", lambda lab: lab.served("leases") is not None),
}
#: A BAR job of DV's own: it runs in a pod as dv-bar-sa, from a template in dv-engine-0, on the claim.
_RUNS_BAR_POD = ("bar-claim", "bar-sa", "bar-templates")


@dataclass(frozen=True)
class Fault:
    id: str
    summary: str
    apply: Callable[[LabCluster], None]
    needs: tuple[str, ...] = ()
    takes: tuple[str, ...] = ()


FAULTS: dict[str, Fault] = {}


def fault(fault_id: str, summary: str, needs: tuple[str, ...] = (), takes: tuple[str, ...] = ()
          ) -> Callable[[Callable[[LabCluster], None]], Callable[[LabCluster], None]]:
    def register(fn: Callable[[LabCluster], None]) -> Callable[[LabCluster], None]:
        FAULTS[fault_id] = Fault(fault_id, summary, fn, needs, takes)
        return fn

    return register


def resolve(ids: Iterable[str]) -> list[Fault]:
    """Fault ids (comma-separated allowed) to faults, each once, in the order first named; an unknown
    id is a UsageError naming the known ones."""
    out: list[Fault] = []
    for raw in ids:
        for part in (p.strip() for p in str(raw).split(",")):
            if not part:
                continue
            if part not in FAULTS:
                raise UsageError(f"unknown fault {part!r}; known faults: {', '.join(sorted(FAULTS))}")
            if FAULTS[part] not in out:
                out.append(FAULTS[part])
    return out


def check_order(faults: list[Fault], lab: LabCluster | None = None) -> None:
    """Refuse, before any fault is applied, one that cannot act on the lab as the faults before it
    leave it (a UsageError naming both and what is missing). `lab` None is a new lab, which has all
    that any fault needs; an existing lab is asked what it still has."""
    have = {key for key, need in NEEDS.items() if lab is None or need.present(lab)}
    history = [b for b in (lab.store.meta().get("breaks") or []) if b in FAULTS] if lab is not None else []
    taken_by: dict[str, str] = {}
    for f in faults:
        for key in f.needs:
            if key in have:
                continue
            by = taken_by.get(key)
            if by:
                raise UsageError(f"fault {f.id} needs {NEEDS[key].what}, which fault {by} takes away: "
                                 f"name {f.id} before {by}, or leave one out")
            had = next((b for b in reversed(history) if key in FAULTS[b].takes), None)
            why = f" (it has fault {had})" if had else ""
            raise UsageError(f"fault {f.id} needs {NEEDS[key].what}, which this lab no longer has{why}")
        for key in f.takes:
            have.discard(key)
            taken_by[key] = f.id


def break_lab(path: Path | str, fault_id: str) -> None:
    """Switch one more fault (or several, comma-separated, applied in order) on in an existing lab;
    nothing is applied when one of them could not be (check_order)."""
    faults = resolve([fault_id])
    lab = LabCluster(path, admin=True)
    check_order(faults, lab)
    for f in faults:
        f.apply(lab)
        meta = lab.store.meta()
        meta.setdefault("breaks", []).append(f.id)
        lab.store.save_meta(meta)


# ---- helpers --------------------------------------------------------------------------------
def bar_dir(lab: LabCluster) -> Path:
    return lab.store.volume_dir(NAMES.bar_pvc) / "1.5.0"


def marker_dir(lab: LabCluster) -> Path:
    return lab.store.volume_dir(NAMES.data_pvc) / "marker_files"


def _owned(path: Path) -> None:
    if os.geteuid() == 0:
        os.lchown(path, contents.BAR_UID, 0)


def _age_tree(path: Path, when: datetime) -> None:
    """Set mtimes under a backup folder (deepest first) to the time it was written."""
    t = when.timestamp()
    for p in sorted(path.rglob("*"), key=lambda q: -len(q.parts)):
        os.utime(p, (t, t), follow_symlinks=False)
    os.utime(path, (t, t))


def _relink(lab: LabCluster, target: str) -> None:
    """Point the restore-point symlink at an absolute pod path, atomically."""
    link = bar_dir(lab) / NAMES.symlink
    tmp = link.with_name(f".{NAMES.symlink}.lab")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    _owned(tmp)
    os.replace(tmp, link)


def _write_marker(lab: LabCluster, name: str, text: str, age: timedelta) -> None:
    path = marker_dir(lab) / name
    runtime.write_file_as(path, text, contents.BAR_UID if os.geteuid() == 0 else None)
    t = (datetime.now(timezone.utc) - age).timestamp()
    os.utime(path, (t, t))


def _older_folder(newest: Path) -> tuple[Path, datetime]:
    """A new backup folder a day before `newest`, or a day before that if another fault took that name."""
    when = timestamp_time(newest.name)
    while True:
        when -= timedelta(days=1)
        folder = newest.parent / when.strftime(TS_FORMAT)
        if not folder.exists() and not folder.is_symlink():
            folder.mkdir()
            return folder, when


def _wait_running(lab: LabCluster, job: str, timeout: float = 15) -> dict:
    def running(j: dict | None) -> bool:
        pods = lab.list("pods", label_selector=f"job-name={job}")
        return bool(pods) and k8s.pod_phase(pods[-1]) == "Running"

    lab.wait("jobs", job, running, timeout)
    pods = lab.list("pods", label_selector=f"job-name={job}")
    if not pods or k8s.pod_phase(pods[-1]) != "Running":
        raise ClusterError(f"the pod of job {job} did not start")
    return pods[-1]


# ---- the faults -----------------------------------------------------------------------------
@fault("init-volume-pod-missing", "the dv-init-volume job's pod was deleted (dvcli.sh reads the BAR image from it)")
def _init_volume_pod(lab: LabCluster) -> None:
    for pod in lab.list("pods", label_selector=f"job-name={NAMES.init_volume_job}"):
        lab.delete("pods", k8s.name(pod))


@fault("init-volume-job-missing", "the dv-init-volume job was deleted, and its pod with it")
def _init_volume_job(lab: LabCluster) -> None:
    lab.delete("jobs", NAMES.init_volume_job)


@fault("bar-permissions", "the backup folder is root's and the BAR uid cannot write it (the runbook's Errno 13)",
       needs=("bar-claim",), takes=("bar-uid-writes",) if os.geteuid() == 0 else ("bar-uid-writes", "bar-writable"))
def _bar_permissions(lab: LabCluster) -> None:
    folder = bar_dir(lab)
    if os.geteuid() == 0:
        os.chown(folder, 0, 0)
        folder.chmod(0o755)
    else:
        folder.chmod(0o555)


@fault("bar-low-space", "the backup claim is too small for the next backup", needs=("bar-claim",))
def _bar_low_space(lab: LabCluster) -> None:
    """Room for half a backup at most (the biggest folder: another fault's folders may be near empty),
    in whole MiB rounded down so that the claim stays too small whatever the backups' size, and never
    below what the volume already holds (no real claim is smaller than its data)."""
    sizes = [du(d) for d in backup_dirs(lab.store)]
    if not sizes:
        raise ClusterError("the lab has no backup to size the next one by")
    used = du(bar_dir(lab))
    set_bar_capacity(lab.store, max(math.ceil(used / MIB), (used + max(sizes) // 2) // MIB) * MIB)


@fault("stale-bar-marker", "a .bar marker left by a backup that is no longer running")
def _stale_marker(lab: LabCluster) -> None:
    _write_marker(lab, NAMES.bar_marker, "", timedelta(hours=3))


@fault("restore-marker-left", "the .bar_restored.txt marker a restore leaves was never removed")
def _restore_marker(lab: LabCluster) -> None:
    _write_marker(lab, NAMES.restore_marker, "restored from /mnt/PV/bar/dv_backup.tar.gz\n", timedelta(days=1))


@fault("broken-backup-symlink", "the dv_backup.tar.gz restore point names a backup that does not exist",
       needs=("bar-claim", "bar-writable"))
def _broken_link(lab: LabCluster) -> None:
    _relink(lab, MISSING_TARGET)


@fault("side-deployments-running", "a backup runs while dv-caching, dv-api and dv-unified-console still run",
       needs=(*_RUNS_BAR_POD, "bar-uid-writes", "no-backup-job"), takes=("no-backup-job",))
def _side_running(lab: LabCluster) -> None:
    body = bar_job(lab, "dv-backup-job.yaml", contents.init_volume_image(lab.namespace))
    k8s.job_pod_spec(body)["containers"][0]["env"].append({"name": "DV_LAB_HOLD", "value": "86400"})
    lab.create("jobs", body)
    _wait_running(lab, NAMES.backup_job)
    marker = marker_dir(lab) / NAMES.bar_marker
    lab.wait("jobs", NAMES.backup_job, lambda j: marker.exists(), 10)


@fault("bar-job-unattended", "dvdoctor was killed mid-backup on another machine; DV's dv-backup-job runs on alone",
       needs=(*_RUNS_BAR_POD, "bar-uid-writes", "no-backup-job"), takes=("no-backup-job",))
def _unattended(lab: LabCluster) -> None:
    from ..core.names import RUN_ANNOTATION, STARTED_BY_ANNOTATION  # the annotations land with their own check

    _side_down(lab)  # the killed run had scaled them down, recording their counts
    body = bar_job(lab, "dv-backup-job.yaml", contents.init_volume_image(lab.namespace))
    body["metadata"]["annotations"] = {STARTED_BY_ANNOTATION: "dvdoctor backup",
                                       RUN_ANNOTATION: "admin@bastion-1.example.com:48213"}
    k8s.job_pod_spec(body)["containers"][0]["env"].append({"name": "DV_LAB_HOLD", "value": "86400"})
    lab.create("jobs", body)
    _wait_running(lab, NAMES.backup_job)
    marker = marker_dir(lab) / NAMES.bar_marker
    lab.wait("jobs", NAMES.backup_job, lambda j: marker.exists(), 10)


@fault("restore-incomplete", "a restore failed part-way yesterday (No space left on device); none succeeded since",
       needs=("bar-claim",))
def _restore_incomplete(lab: LabCluster) -> None:
    from ..core.names import RESTORE_INCOMPLETE_ANNOTATION  # the record lands with its own check

    when = (datetime.now(timezone.utc) - timedelta(days=1)).strftime(ISO_Z)
    record = {"when": when, "backup": newest_backup_dir(lab.store).name, "job": NAMES.restore_job,
              "why": "BackoffLimitExceeded: Job has reached the specified backoff limit "
                     "(tar: versioned/engine/bigsql: Cannot write: No space left on device)"}
    sts = lab.store.read("statefulsets", "dv-engine")
    sts["metadata"].setdefault("annotations", {})[RESTORE_INCOMPLETE_ANNOTATION] = json.dumps(record, sort_keys=True)
    lab.store.write("statefulsets", sts)


@fault("side-deployments-left-down", "dvdoctor scaled the side deployments to 0 and an interrupted run left them there")
def _side_down(lab: LabCluster) -> None:
    for name in NAMES.side_deployments:
        dep = lab.store.read("deployments", name)
        dep["metadata"].setdefault("annotations", {})[REPLICAS_ANNOTATION] = str(k8s.spec_replicas(dep))
        dep["spec"]["replicas"] = 0
        lab.controllers.scale_deployment(dep)
        lab.store.write("deployments", dep)


@fault("bar-job-failed", "dv-backup-job failed: each pod hit the runbook's Errno 13, then BackoffLimitExceeded",
       needs=("bar-templates", "no-backup-job"), takes=("no-backup-job",))
def _bar_job_failed(lab: LabCluster) -> None:
    body = bar_job(lab, "dv-backup-job.yaml", contents.init_volume_image(lab.namespace))
    now = datetime.now(timezone.utc)
    limit = int(body["spec"].get("backoffLimit", 6))
    started = now - timedelta(minutes=2 * (limit + 1) + 1)
    body["metadata"]["namespace"] = lab.namespace
    job = lab.store.write("jobs", body)
    job["spec"]["template"]["metadata"]["labels"].update({"controller-uid": job["metadata"]["uid"],
                                                          "job-name": k8s.name(job)})
    runbook_ts = datetime(2021, 1, 14, 19, 20, 7, tzinfo=timezone.utc)
    for attempt in range(limit + 1):
        begin = started + timedelta(minutes=2 * attempt)
        ts = (runbook_ts + timedelta(seconds=23 * attempt)).strftime(TS_FORMAT)
        log = (f"{ts} marker {NAMES.marker_dir}/.bar written: DV components stop\n"
               f"{RUNBOOK_ERRNO13.replace('2021-01-14-19-20-07', ts)}\n")
        finished_job_pod(lab.store, job, contents.stamp(begin), contents.stamp(begin + timedelta(seconds=20)), log, 1)
    job["status"] = {"startTime": contents.stamp(started), "failed": limit + 1,
                     "conditions": [status.job_condition("Failed", "BackoffLimitExceeded",
                                                         "Job has reached the specified backoff limit")]}
    lab.store.write("jobs", job)


@fault("leftover-bar-pods", "dvcli.sh's list pod, left running as it always is",
       needs=(*_RUNS_BAR_POD, "no-list-job"), takes=("no-list-job",))
def _leftover_list(lab: LabCluster) -> None:
    lab.create("jobs", bar_job(lab, "dv-list-backups-job.yaml", contents.init_volume_image(lab.namespace)))
    _wait_running(lab, NAMES.list_job)


@fault("bar-pvc-missing", "the claim dv-bar-pvc was deleted (its volume, Retain, is Released)",
       needs=("bar-claim",), takes=("bar-claim",))
def _bar_pvc_missing(lab: LabCluster) -> None:
    lab.delete("persistentvolumeclaims", NAMES.bar_pvc)


@fault("bar-sa-missing", "the service account dv-bar-sa was deleted", needs=("bar-sa",), takes=("bar-sa",))
def _bar_sa_missing(lab: LabCluster) -> None:
    lab.delete("serviceaccounts", NAMES.bar_sa)


@fault("bar-templates-missing", "DV's BAR job templates are gone from dv-engine-0", takes=("bar-templates",))
def _templates_missing(lab: LabCluster) -> None:
    for name in NAMES.templates:
        (_template_dir(lab) / name).unlink(missing_ok=True)


@fault("bar-pv-reclaim-delete", "dv-bar-pvc's volume has reclaim policy Delete", needs=("bar-claim",))
def _reclaim_delete(lab: LabCluster) -> None:
    pvc = lab.get("persistentvolumeclaims", NAMES.bar_pvc)
    lab.patch("persistentvolumes", pvc["spec"]["volumeName"], {"spec": {"persistentVolumeReclaimPolicy": "Delete"}})


@fault("incomplete-backups", "an older backup folder holds only its metastore tarball (its job died)",
       needs=("bar-claim", "bar-writable"))
def _incomplete(lab: LabCluster) -> None:
    newest = newest_backup_dir(lab.store)
    if newest is None:
        raise ClusterError("the lab has no backup to put an incomplete one before")
    folder, when = _older_folder(newest)
    name = NAMES.component_tarballs[0]
    (folder / name).write_bytes((newest / name).read_bytes())
    for p in (folder, folder / name):
        _owned(p)
    _age_tree(folder, when + timedelta(minutes=2))


@fault("backup-unreadable", "an older backup's dv_backup.tar.gz, intact, is root-owned with mode 600 (the runbook's Errno 13)",
       needs=("bar-claim", "bar-writable"))
def _unreadable(lab: LabCluster) -> None:
    newest = newest_backup_dir(lab.store)
    if newest is None:
        raise ClusterError("the lab has no backup to put an unreadable one before")
    folder, when = _older_folder(newest)
    _owned(folder)
    tarball = folder / NAMES.combined_tarball
    tarball.write_bytes((newest / NAMES.combined_tarball).read_bytes())
    if os.geteuid() == 0:
        os.chown(tarball, 0, 0)
        tarball.chmod(0o600)
    else:  # the lab's pods run as this user: only taking its read permission away stands for root's file
        tarball.chmod(0o000)
    _age_tree(folder, when + timedelta(minutes=2))


@fault("odd-backup-folders", "folders on the backup volume named with a newline and a tab, and one dated next year",
       needs=("bar-claim", "bar-writable"))
def _odd_folders(lab: LabCluster) -> None:
    now = datetime.now(timezone.utc)
    # switched on again, the same folder dated next year (a second later is another name)
    future = next((d.name for d in sorted(bar_dir(lab).iterdir()) if is_timestamp(d.name)
                   and timestamp_time(d.name) > now + timedelta(days=300)), None) \
        or (now + timedelta(days=365)).strftime(TS_FORMAT)
    for name in ("copy of\nbackup", "2021-13-01-00-00-00\tkeep", future):
        folder = bar_dir(lab) / name
        folder.mkdir(exist_ok=True)  # switched on again: the same folders
        _owned(folder)


@fault("no-recent-backup", "the only backup is 30 days old", needs=("bar-claim", "bar-writable"))
def _old_backup(lab: LabCluster) -> None:
    newest = newest_backup_dir(lab.store)
    if newest is None:
        raise ClusterError("the lab has no backup to age")
    when = timestamp_time(newest.name) - timedelta(days=30)
    old = newest.with_name(when.strftime(TS_FORMAT))
    newest.rename(old)
    _age_tree(old, when + timedelta(minutes=1))
    _relink(lab, f"{NAMES.bar_mount}/{old.name}/{NAMES.combined_tarball}")
    t = (when + timedelta(minutes=1)).timestamp()
    os.utime(bar_dir(lab) / NAMES.symlink, (t, t), follow_symlinks=False)


@fault("dv-pods-not-ready", "dv-worker-0 crash-loops: Running, not Ready, restarting")
def _worker_not_ready(lab: LabCluster) -> None:
    pod = lab.store.read("pods", "dv-worker-0")
    pod["status"] = status.crash_looping(pod["spec"], 7, "liveness probe failed: DV worker not started")
    lab.store.write("pods", pod)
    sts = lab.store.read("statefulsets", "dv-worker")
    sts["status"].pop("readyReplicas", None)
    lab.store.write("statefulsets", sts)


@fault("stale-dvdoctor-lock", "dvdoctor's lock left by a backup run killed two hours ago on another machine",
       needs=("lease-api",))
def _stale_lock(lab: LabCluster) -> None:
    from ..cluster.lock import COMMAND_ANNOTATION, LEASE_NAME, micro_time  # the lock lands with its own check

    killed = datetime.now(timezone.utc) - timedelta(hours=2)
    lab.create("leases", {
        "metadata": {"name": LEASE_NAME, "annotations": {COMMAND_ANNOTATION: "dvdoctor backup --yes"}},
        "spec": {"holderIdentity": "admin@bastion-1.example.com:48213", "leaseDurationSeconds": 60,
                 "acquireTime": micro_time(killed - timedelta(minutes=5)), "renewTime": micro_time(killed)},
    })


@fault("dvdoctor-permissions", "dvdoctor's role lacks watch on jobs (no command can follow a BAR job) and patch on "
       "deployments (fix and backup cannot scale the side deployments)")
def _permissions(lab: LabCluster) -> None:
    meta = lab.store.meta()
    rules = []
    taken = {("apps", "deployments"): ["get", "list", "watch", "create", "update", "delete"],
             ("batch", "jobs"): ["get", "list", "create", "update", "patch", "delete"]}
    for rule in meta["rules"]:
        hit = [(g, r) for (g, r) in taken if g in rule["apiGroups"] and r in rule["resources"]]
        if hit:
            others = [r for r in rule["resources"] if r not in {r for _, r in hit}]
            if others:
                rules.append({**rule, "resources": others})
            rules += [{"apiGroups": [g], "resources": [r], "verbs": taken[(g, r)]} for g, r in hit]
        else:
            rules.append(rule)
    meta["rules"] = rules
    lab.store.save_meta(meta)


@fault("server-too-old", "the lab models OpenShift 3.11's Kubernetes 1.11: no Lease API, no server-side dry run",
       takes=("lease-api",))
def _server_too_old(lab: LabCluster) -> None:
    meta = lab.store.meta()
    meta["kubernetes"] = "1.11"
    lab.store.save_meta(meta)
