"""Facts for check tests: a healthy DV namespace shaped like `collect` output, built from the runbook.

Everything here is the runbook's own evidence: namespace cpd30, the bigsql uid 1000322824, the
init-volume image `image-registry.openshift-image-registry.svc:5000/cpd30/dv-init-volume:v1.5.0.0-217`,
and the `ls -ltr` listing of /mnt/PV/bar (one backup, 2021-01-22-19-27-31, and the symlink to it).
The healthy namespace differs from the runbook's in one thing only: its backup volume is 60Gi, since
the runbook's 20Gi one (`20G 15G 5.3G 74% /mnt/PV/bar`) has no room for a second backup and is a
broken case of its own. Tests take `healthy()`, break one thing, and run one check.

`run_bar_probe` runs the real bar-probe.sh with bash on a directory tree (as another uid through
setpriv when the tests run as root), for facts that come from real files.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from dvdoctor.facts import probe
from dvdoctor.facts.model import Facts
from dvdoctor.lab.bar import template_text
from dvdoctor.verdicts.registry import Result, Run, run_checks

NS = "cpd30"
BAR_UID = 1000322824
IMAGE = "image-registry.openshift-image-registry.svc:5000/cpd30/dv-init-volume:v1.5.0.0-217"
COLLECTED_AT = "2021-01-23T08:00:00Z"
TS = "2021-01-22-19-27-31"
GIB = 1024**3

# The runbook's `ls -ltr` of /mnt/PV/bar: (path, type, size, modified "Jan 22 HH:MM", mode, uid).
RUNBOOK_LISTING = (
    (TS, "dir", 4096, "19:27", "755", BAR_UID),
    (f"{TS}/dv_backup_dv_metastore.tar.gz", "file", 31780526, "19:29", "644", BAR_UID),
    (f"{TS}/dv_backup_dv_engine.tar.gz", "file", 3152485198, "19:42", "644", BAR_UID),
    (f"{TS}/tmp", "dir", 4096, "19:42", "755", BAR_UID),
    (f"{TS}/dv_backup.tar.gz", "file", 3184300891, "20:05", "644", 0),
    ("dv_backup.tar.gz", "link", 48, "20:05", "777", BAR_UID),
)
RUNBOOK_LINK_TARGET = f"/mnt/PV/bar/{TS}/dv_backup.tar.gz"
#: The runbook's df line, `20G 15G 5.3G 74% /mnt/PV/bar`, in bytes.
RUNBOOK_DF = {"total": 20 * GIB, "used": 15 * GIB, "avail": int(5.3 * GIB)}
RUNBOOK_ERRNO13 = "Operation failed: [Errno 13] Permission denied: '/mnt/PV/bar/2021-01-14-19-20-07'"
RUNBOOK_SED = 'sed: 1: "dv-backup-job.yaml": extra characters at the end of d command'
RUNBOOK_EMPTY_IMAGE = "2021-01-14_14.40.42.3N_UTC INFO Use DV init image:  in dv-backup-job.yaml"


def jan22(hhmm: str) -> float:
    h, m = hhmm.split(":")
    return datetime(2021, 1, 22, int(h), int(m), tzinfo=timezone.utc).timestamp()


def marker(name: str) -> dict:
    """A marker file on DV's data volume, as the engine probe lists one (empty, made at 21:00)."""
    return {"name": name, "size": 0, "mtime": jan22("21:00")}


# ---- objects, shaped like the API's JSON -----------------------------------------------------------


def meta(name: str, **extra) -> dict:
    return {"name": name, "namespace": NS, "creationTimestamp": "2021-01-10T09:00:00Z", **extra}


def ready_status() -> dict:
    return {
        "phase": "Running",
        "startTime": "2021-01-22T20:10:00Z",
        "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}],
        "containerStatuses": [{"name": "main", "ready": True, "restartCount": 0, "state": {"running": {}}}],
    }


def sts_pod(sts: str, ordinal: int = 0) -> dict:
    name = f"{sts}-{ordinal}"
    mounts = [{"name": "dv-data", "mountPath": "/mnt/PV/versioned", "subPath": "1.5.0"}]
    return {
        "metadata": meta(name, labels={"app": "dv"},
                         ownerReferences=[{"kind": "StatefulSet", "name": sts, "controller": True}]),
        "spec": {"containers": [{"name": sts, "image": f"cp.icr.io/cp/dv/{sts}:1.5.0", "volumeMounts": mounts}],
                 "volumes": [{"name": "dv-data", "persistentVolumeClaim": {"claimName": "dv-pvc"}}]},
        "status": ready_status(),
    }


def deployment_pod(deployment: str, rs_hash: str = "7c9f8d6b5", suffix: str = "x2k4p") -> dict:
    rs = f"{deployment}-{rs_hash}"
    return {
        "metadata": meta(f"{rs}-{suffix}", labels={"pod-template-hash": rs_hash},
                         ownerReferences=[{"kind": "ReplicaSet", "name": rs, "controller": True}]),
        "spec": {"containers": [{"name": deployment, "image": f"cp.icr.io/cp/dv/{deployment}:1.5.0"}]},
        "status": ready_status(),
    }


def job_pod(job: str, suffix: str = "5pfw2", phase: str = "Succeeded", restarts: int = 0,
            waiting: str | None = None, image: str = IMAGE) -> dict:
    state = {"waiting": {"reason": waiting}} if waiting else {"terminated": {"exitCode": 0 if phase == "Succeeded" else 1}}
    return {
        "metadata": meta(f"{job}-{suffix}", labels={"job-name": job},
                         ownerReferences=[{"kind": "Job", "name": job, "controller": True}]),
        "spec": {"containers": [{"name": job, "image": image}], "securityContext": {"runAsUser": BAR_UID}},
        "status": {"phase": phase, "startTime": "2021-01-22T19:27:00Z",
                   "containerStatuses": [{"name": job, "ready": False, "restartCount": restarts, "state": state}]},
    }


def job(name: str, state: str = "complete", finished: str = "2021-01-22T20:06:00Z", image: str = IMAGE,
        reason: str = "BackoffLimitExceeded", labels: dict | None = None) -> dict:
    status: dict = {"startTime": "2021-01-22T19:27:00Z"}
    if state == "complete":
        status |= {"succeeded": 1, "completionTime": finished,
                   "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": finished}]}
    elif state == "failed":
        status |= {"failed": 6, "conditions": [{"type": "Failed", "status": "True", "reason": reason,
                                                "message": "Job has reached the specified backoff limit",
                                                "lastTransitionTime": finished}]}
    else:
        status |= {"active": 1}
    return {
        "metadata": meta(name, labels=labels or {}),
        "spec": {"backoffLimit": 6, "template": {"spec": {
            "serviceAccountName": "dv-bar-sa", "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True, "runAsUser": BAR_UID},
            "containers": [{"name": name, "image": image}]}}},
        "status": status,
    }


def deployment(name: str, replicas: int = 1, annotations: dict | None = None) -> dict:
    return {"metadata": meta(name, annotations=annotations or {}), "spec": {"replicas": replicas},
            "status": {"replicas": replicas, "readyReplicas": replicas}}


def stale_lease(renewed: str = "2021-01-22T19:27:31.000000Z", holder: str = "ops@bastion:4242") -> dict:
    """dvdoctor's lock as a backup killed at 19:27 the day before COLLECTED_AT left it."""
    return {"metadata": meta("dvdoctor-lock", annotations={"dvdoctor.io/command": "dvdoctor backup --yes"}),
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 60, "acquireTime": renewed, "renewTime": renewed}}


def statefulset(name: str, replicas: int = 1) -> dict:
    return {"metadata": meta(name), "spec": {"replicas": replicas}, "status": {"replicas": replicas, "readyReplicas": replicas}}


def pvc(name: str, size: str, volume: str, phase: str = "Bound", storage_class: str = "ibmc-file-gold-gid") -> dict:
    out = {"metadata": meta(name), "spec": {"storageClassName": storage_class, "accessModes": ["ReadWriteMany"],
                                            "resources": {"requests": {"storage": size}}},
           "status": {"phase": phase}}
    if phase == "Bound":
        out["spec"]["volumeName"] = volume
        out["status"]["capacity"] = {"storage": size}
    return out


def pv(name: str, claim: str, size: str, policy: str = "Retain") -> dict:
    return {"metadata": {"name": name}, "spec": {"capacity": {"storage": size}, "persistentVolumeReclaimPolicy": policy,
                                                 "storageClassName": "ibmc-file-gold-gid",
                                                 "claimRef": {"namespace": NS, "name": claim}},
            "status": {"phase": "Bound"}}


#: DV's backup job template: the lab's stand-in, the one copy of its shape in the project.
BACKUP_TEMPLATE = template_text("dv-backup-job.yaml")


# ---- the in-pod sections ---------------------------------------------------------------------------


def entry(path: str, type_: str, size: int, mtime: float, mode: str = "644", uid: int = BAR_UID,
          target: str | None = None) -> dict:
    return {"path": path, "type": type_, "size": size, "mtime": mtime, "mode": mode, "uid": uid, "target": target}


def runbook_bar_volume(df: dict | None = None) -> dict:
    """bar-probe facts of the runbook's listing; df is the healthy 60Gi volume unless given."""
    entries = [entry(p, t, s, jan22(hhmm), mode, uid, RUNBOOK_LINK_TARGET if t == "link" else None)
               for p, t, s, hhmm, mode, uid in RUNBOOK_LISTING]
    used = sum(e["size"] for e in entries if e["type"] == "file") + 3 * 4096
    return {
        "complete": True, "exists": True, "uid": BAR_UID, "gids": [0, BAR_UID],
        "dir": {"mode": "775", "uid": 0, "gid": BAR_UID}, "writable": True, "write_error": "",
        "df": df or {"total": 60 * GIB, "used": used, "avail": 60 * GIB - used},
        "used_bytes": used, "entries": entries,
        "link": {"name": "dv_backup.tar.gz", "target": RUNBOOK_LINK_TARGET, "target_exists": True},
        # the inspection read the runbook's backup back: combined and inner tarballs whole
        "stamps": {TS: f"3184300891:{int(jan22('20:05'))}"},
        "read_back": {TS: {"state": "good", "sha256": "ab" * 32, "message": ""}},
        "manifests": {},
    }


def add_backup(bar: dict, ts: str, files: dict[str, int], read_back: str | None = "good", message: str = "") -> None:
    """Another timestamp folder with these files (name -> bytes), written at the folder's time.

    With a combined tarball, the inspection read it back with this result (`good`, `damaged`), or
    did not read it (`None`: unverified unless a manifest records it).
    """
    when = datetime.strptime(ts, "%Y-%m-%d-%H-%M-%S").replace(tzinfo=timezone.utc).timestamp()
    bar["entries"].append(entry(ts, "dir", 4096, when, "755"))
    for name, size in files.items():
        bar["entries"].append(entry(f"{ts}/{name}", "file", size, when + 60))
    if "dv_backup.tar.gz" in files:
        bar.setdefault("stamps", {})[ts] = f"{files['dv_backup.tar.gz']}:{int(when + 60)}"
        if read_back:
            bar.setdefault("read_back", {})[ts] = {"state": read_back, "sha256": "cd" * 32 if read_back == "good" else "",
                                                   "message": message}


def engine_section(markers: tuple[dict, ...] = ()) -> dict:
    templates = {
        "dv-backup-job.yaml": BACKUP_TEMPLATE,
        "dv-restore-job.yaml": template_text("dv-restore-job.yaml"),
        "dv-bar-pvc.yaml": template_text("dv-bar-pvc.yaml"),
        "dv-list-backups-job.yaml": template_text("dv-list-backups-job.yaml"),
    }
    return {"complete": True, "marker_dir_exists": True, "markers": list(markers), "templates": templates,
            "missing_templates": [], "caching_script": True}


ALL_ACCESS = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]


def healthy() -> dict:
    """A healthy DV 1.5.0 namespace, the morning after the runbook's backup."""
    sts = ("dv-engine", "dv-metastore", "dv-utils", "dv-worker")
    sides = ("dv-caching", "dv-api", "dv-unified-console")
    return {
        "schema": "dvdoctor/facts/v1",
        "dvdoctor_version": "0.1.0",
        "collected_at": COLLECTED_AT,
        "namespace": NS,
        "source": {"kind": "bundle", "where": "tests/builders.py"},
        "objects": {
            "pods": [sts_pod(s) for s in sts] + [deployment_pod(d) for d in sides]
                    + [job_pod("dv-init-volume", suffix="8xq2z")],
            "jobs": [job("dv-init-volume", finished="2021-01-10T09:10:00Z")],
            "deployments": [deployment(d) for d in sides],
            "statefulsets": [statefulset(s) for s in sts],
            "persistentvolumeclaims": [pvc("dv-pvc", "40Gi", "pvc-data-0458"), pvc("dv-bar-pvc", "60Gi", "pvc-bar-0472")],
            "serviceaccounts": [{"metadata": meta(n)} for n in ("default", "dv-bar-sa")],
            "events": [],
            "leases": [],
            "persistentvolumes": [pv("pvc-data-0458", "dv-pvc", "40Gi"), pv("pvc-bar-0472", "dv-bar-pvc", "60Gi")],
            "storageclasses": [{"metadata": {"name": "ibmc-file-gold-gid"}, "provisioner": "ibm.io/ibmc-file",
                                "reclaimPolicy": "Delete", "allowVolumeExpansion": True}],
        },
        "logs": {},
        "bar_volume": runbook_bar_volume(),
        "engine": engine_section(),
        "access": {"rules": copy.deepcopy(ALL_ACCESS)},
        "server": {"version": "1.19", "lease": "coordination.k8s.io/v1"},  # OpenShift 4.6
        # the site keeps copies, the runbook's backup was copied that night, and restic check
        # (check --verify) found the repository whole
        "copies": {"snapshots": [copy_of(TS)], "repository_check": {"ok": True, "error": None}},
        "skipped": {},
        "errors": [],
    }


def copy_of(ts: str, snapshot: str = "4f3c2a1b", complete: bool = True) -> dict:
    """A copy in the restic repository, as `dvdoctor.copies.job snapshots` lists it."""
    return {"snapshot": snapshot, "time": "2021-01-22T20:30:00Z", "backup": ts, "instance": "uid-dv-engine",
            "namespace": NS, "added": 3_184_300_891, "tarball": 3_184_300_891, "complete": complete,
            "origin": "uid-dv-engine", "checksums": {}}


def quiesced(data: dict) -> dict:
    """The namespace as dvdoctor leaves it just before a backup: side deployments at 0, counts recorded."""
    from dvdoctor.core.names import REPLICAS_ANNOTATION

    for name in ("dv-caching", "dv-api", "dv-unified-console"):
        dep = find(data, "deployments", name)
        dep["metadata"]["annotations"][REPLICAS_ANNOTATION] = str(dep["spec"]["replicas"])
        dep["spec"]["replicas"] = 0
        dep["status"] = {"replicas": 0, "readyReplicas": 0}
        data["objects"]["pods"] = [p for p in data["objects"]["pods"] if not p["metadata"]["name"].startswith(name + "-")]
    return data


# ---- editing and running ---------------------------------------------------------------------------


def find(data: dict, kind: str, name: str) -> dict:
    return next(o for o in data["objects"][kind] if o["metadata"]["name"] == name)


def remove(data: dict, kind: str, name: str) -> None:
    data["objects"][kind] = [o for o in data["objects"][kind] if o["metadata"]["name"] != name]


def results(data: dict, phase: str = "now", only: tuple[str, ...] = (), command: str | None = None) -> list[Result]:
    return run_checks(Facts(copy.deepcopy(data)), Run(phase=phase, command=command or ""), only=only)


def run_one(check_id: str, data: dict, phase: str = "now", command: str | None = None) -> Result:
    [result] = results(data, phase, (check_id,), command)
    return result


def fix_plan(fix_id: str, facts: Facts, options=None):
    """A fix's plan as `dvdoctor fix` makes it: handed the problems its check finds in these facts."""
    from dvdoctor.repair.fixer import FixOptions, judged, load_all
    from dvdoctor.repair.runner import to_repair

    fx = load_all()[fix_id]
    return fx.plan(facts, to_repair(judged(fx, facts)), options or FixOptions())


def evidence(result: Result) -> str:
    """All messages and evidence lines of a result, one string, for `in` assertions."""
    return "\n".join(line for p in result.problems for line in (p.message, *p.evidence))


# ---- the real probe ----------------------------------------------------------------------------------

IS_ROOT = os.geteuid() == 0
HAS_SETPRIV = shutil.which("setpriv") is not None
HAS_UNSHARE = shutil.which("unshare") is not None


def own_mounts(setup: str) -> tuple[str, ...]:
    """A command line that runs what follows it in a mount namespace of its own, after the shell
    command `setup` (e.g. a tmpfs over /proc); root only."""
    return ("unshare", "-m", "--", "sh", "-c", f'{setup} && exec "$@"', "own-mounts")


def pod_root() -> Path:
    """A temporary pod root with an empty /mnt/PV/bar that every uid can traverse (mkdtemp is 0700)."""
    base = Path(tempfile.mkdtemp(prefix="dvdoctor-probe-"))
    for d in (base, base / "mnt", base / "mnt" / "PV", base / "mnt" / "PV" / "bar"):
        d.mkdir(exist_ok=True)
        d.chmod(0o755)
    return base


def bar_of(root: Path) -> Path:
    """The backup volume's mount point under a pod root."""
    return root / "mnt" / "PV" / "bar"


def write_backup(bar: Path, ts: str, sizes: dict[str, int]) -> None:
    """A backup folder of sparse files with the given apparent sizes (the runbook's are gigabytes);
    a tarball starts with gzip's magic bytes, so only reading it back to the end can tell it is no
    real one."""
    (bar / ts).mkdir(mode=0o755)
    for name, size in sizes.items():
        with open(bar / ts / name, "wb") as fh:
            if name.endswith(".gz") and size >= 2:
                fh.write(b"\x1f\x8b")
            fh.truncate(size)


def run_bar_probe(root: Path, uid: int | None = None, verify: bool | probe.ReadBack = False, skip: str = "",
                  wrap: tuple[str, ...] = ()) -> dict:
    """bar-probe.sh for real, with the pod's view of /mnt/PV/bar under `root`; as `uid` via setpriv.

    verify: True reads back every backup nothing proves (as `--verify`), False none, or a policy.
    wrap: a command line the probe's own is appended to (e.g. one that changes what /bin/sh is)."""
    policy = verify if isinstance(verify, probe.ReadBack) else (
        probe.EVERY_UNPROVEN if verify else probe.ReadBack(mode="recorded"))
    env = {"PATH": "/usr/bin:/bin", "DV_ROOT": str(root), "BAR_DIR": "/mnt/PV/bar",
           "SYMLINK": "dv_backup.tar.gz", **policy.env(skip)}
    argv = ["bash", "-c", probe.script("bar-probe.sh"), "bar-probe"]
    if uid is not None:
        argv = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"] + argv
    proc = subprocess.run([*wrap, *argv], env=env, capture_output=True, timeout=60, check=True)
    return probe.parse_bar_probe(proc.stdout.decode("utf-8", "replace"))
