"""DV's BAR jobs run for real in the lab: backup, restore, failures, retries, deadlines, deletion."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys

import pytest

from dvdoctor.cluster import k8s
from dvdoctor.lab import break_lab, controllers
from dvdoctor.lab.contents import BAR_UID, PLACEHOLDER_IMAGE, init_volume_image
from dvdoctor.lab.bar import bar_job, run_job

ROOT = os.geteuid() == 0
TS = re.compile(r"^\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}$")


def backup_job(lab, template="dv-backup-job.yaml"):
    return bar_job(lab, template, init_volume_image(lab.namespace))


def bar(lab):
    return lab.store.volume_dir("dv-bar-pvc") / "1.5.0"


def markers(lab):
    return sorted(p.name for p in (lab.store.volume_dir("dv-pvc") / "marker_files").iterdir())


def digest(lab) -> dict[str, str]:
    root = lab.store.volume_dir("dv-pvc")
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "marker_files" not in p.parts}


def alive(pid: int) -> bool:
    """A process that has not exited (a zombie nobody reaped counts as gone)."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def ended(job):
    return job is None or k8s.job_state(job) != "active"


def pods_of(lab, job):
    return sorted(lab.list("pods", label_selector=f"job-name={job}"), key=lambda p: p["metadata"]["creationTimestamp"])


def test_backup_job_from_dvs_template_makes_a_complete_backup(lab):
    before = {p.name for p in bar(lab).iterdir() if TS.match(p.name)}
    job = run_job(lab, backup_job(lab))
    assert k8s.job_state(job) == "complete"
    (new,) = {p.name for p in bar(lab).iterdir() if TS.match(p.name)} - before
    files = {p.name for p in (bar(lab) / new).iterdir()}
    assert files == {"dv_backup_dv_metastore.tar.gz", "dv_backup_dv_engine.tar.gz", "tmp", "dv_backup.tar.gz"}
    assert os.readlink(bar(lab) / "dv_backup.tar.gz") == f"/mnt/PV/bar/{new}/dv_backup.tar.gz"
    assert markers(lab) == []
    (pod,) = pods_of(lab, "dv-backup-job")
    assert pod["metadata"]["labels"]["controller-uid"] == job["metadata"]["uid"]
    assert re.fullmatch(r"dv-backup-job-[a-z0-9]{5}", k8s.name(pod))
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "Job"
    log = lab.logs(k8s.name(pod))
    assert f"wrote /mnt/PV/bar/{new}/dv_backup.tar.gz (" in log
    if ROOT:
        assert (bar(lab) / new / "dv_backup.tar.gz").stat().st_uid == BAR_UID


def test_unwritable_backup_folder_fails_with_errno_13_then_backoff_limit(lab):
    break_lab(lab.store.root, "bar-permissions")
    lab.create("jobs", backup_job(lab))
    job = lab.wait("jobs", "dv-backup-job", ended, 30)
    assert k8s.job_failure(job).startswith("BackoffLimitExceeded")
    pods = pods_of(lab, "dv-backup-job")
    assert len(pods) == 3 == job["status"]["failed"]  # backoffLimit 2: the first try and two retries
    assert all(k8s.pod_phase(p) == "Failed" for p in pods)
    log = lab.logs(k8s.name(pods[0]))
    assert re.search(r"^Operation failed: \[Errno 13\] Permission denied: '/mnt/PV/bar/\d{4}(-\d\d){5}'$", log, re.M)
    assert markers(lab) == [".bar"]  # the job wrote its marker before it failed, as DV's does


@pytest.mark.mib_backups  # the claim's whole MiB hold exactly two more of its backups
def test_full_volume_fails_with_no_space_and_leaves_the_partial_backup(lab):
    for _ in range(2):  # the healthy lab has room for exactly two more backups
        run_job(lab, backup_job(lab))
        lab.delete("jobs", "dv-backup-job")
    lab.create("jobs", backup_job(lab))
    job = lab.wait("jobs", "dv-backup-job", ended, 30)
    assert k8s.job_state(job) == "failed"
    log = lab.logs(k8s.name(pods_of(lab, "dv-backup-job")[-1]))
    assert "No space left on device" in log
    link = os.readlink(bar(lab) / "dv_backup.tar.gz")
    partial = [p for p in bar(lab).iterdir() if TS.match(p.name) and not (p / "dv_backup.tar.gz").exists()]
    assert partial and link.split("/")[4] not in {p.name for p in partial}
    assert markers(lab) == [".bar"]


def test_restore_brings_the_data_back_byte_for_byte(lab):
    before = digest(lab)
    data = lab.store.volume_dir("dv-pvc")
    victim = data / "1.5.0" / "engine" / "bigsql" / "db2inst" / "NODE0000" / "BIGSQL" / "T0000002" / "C0000000.LRG"
    victim.write_bytes(b"damaged")
    (data / "unified_console_data" / "console" / "logs" / "console.log").unlink()
    (data / "uc_dsserver_shared" / "created-after-backup.txt").write_text("new")
    (data / "1.5.0" / "metastore" / "junk").mkdir()
    assert digest(lab) != before
    run_job(lab, backup_job(lab, "dv-restore-job.yaml"))
    assert digest(lab) == before
    assert markers(lab) == [".bar_restored.txt"]


def test_restore_of_an_older_backup_named_in_the_env(lab):
    (old,) = [p.name for p in bar(lab).iterdir() if TS.match(p.name)]
    before = digest(lab)
    (lab.store.volume_dir("dv-pvc") / "1.5.0" / "engine" / "later.dat").write_bytes(b"after the first backup")
    run_job(lab, backup_job(lab))
    lab.delete("jobs", "dv-backup-job")
    job = backup_job(lab, "dv-restore-job.yaml")
    env = k8s.job_pod_spec(job)["containers"][0]["env"]
    (chosen,) = [e for e in env if e["value"] == "dv_backup.tar.gz"]
    chosen["value"] = f"{old}/dv_backup.tar.gz"
    run_job(lab, job)
    assert digest(lab) == before


def test_deleting_a_job_kills_its_process_and_takes_its_pods(lab):
    lab.create("jobs", backup_job(lab, "dv-list-backups-job.yaml"))
    listed = "dv_backup.tar.gz -> /mnt/PV/bar/"
    # running, and its listing written (a busy machine may show the pod running before `ls` has printed)
    lab.wait("jobs", "dv-list-backups-job",
             lambda j: any(k8s.pod_phase(p) == "Running" and listed in lab.logs(k8s.name(p))
                           for p in pods_of(lab, "dv-list-backups-job")), 10)
    (pod,) = pods_of(lab, "dv-list-backups-job")
    pid = int((lab.store.pod_dir(k8s.name(pod)) / "pid").read_text())
    assert alive(pid)
    assert "dv_backup.tar.gz -> /mnt/PV/bar/" in lab.logs(k8s.name(pod))
    assert lab.delete("jobs", "dv-list-backups-job") is True
    assert not alive(pid)
    assert pods_of(lab, "dv-list-backups-job") == []
    assert lab.delete("jobs", "dv-list-backups-job") is False


def test_active_deadline_kills_the_pod(lab):
    job = backup_job(lab)
    job["spec"]["activeDeadlineSeconds"] = 1
    k8s.job_pod_spec(job)["containers"][0]["env"].append({"name": "DV_LAB_HOLD", "value": "60"})
    lab.create("jobs", job)
    done = lab.wait("jobs", "dv-backup-job", ended, 10)
    assert k8s.job_failure(done).startswith("DeadlineExceeded")
    (pod,) = pods_of(lab, "dv-backup-job")
    assert k8s.pod_phase(pod) == "Failed" and pod["status"]["reason"] == "DeadlineExceeded"
    assert not (lab.store.pod_dir(k8s.name(pod)) / "exitcode").exists()


def test_ttl_after_finished_removes_the_job_and_its_pods(lab):
    job = backup_job(lab)
    job["spec"]["ttlSecondsAfterFinished"] = 0
    lab.create("jobs", job)
    assert lab.wait("jobs", "dv-backup-job", lambda j: j is None, 20) is None
    assert pods_of(lab, "dv-backup-job") == []


def test_placeholder_image_stays_pending_with_errimagepull(lab, monkeypatch):
    job = backup_job(lab)
    k8s.job_pod_spec(job)["containers"][0]["image"] = PLACEHOLDER_IMAGE
    lab.create("jobs", job)
    (pod,) = pods_of(lab, "dv-backup-job")
    assert k8s.pod_phase(pod) == "Pending"
    assert k8s.waiting_reasons(pod) == ["ErrImagePull"]
    monkeypatch.setattr(controllers, "PULL_BACKOFF_AFTER", 0)
    (pod,) = pods_of(lab, "dv-backup-job")
    assert k8s.waiting_reasons(pod) == ["ImagePullBackOff"]
    assert k8s.job_state(lab.get("jobs", "dv-backup-job")) == "active"
    assert markers(lab) == []


def test_missing_claim_stays_pending_then_starts_when_it_appears(lab):
    break_lab(lab.store.root, "bar-pvc-missing")
    lab.create("jobs", backup_job(lab, "dv-list-backups-job.yaml"))
    (pod,) = pods_of(lab, "dv-list-backups-job")
    assert k8s.pod_phase(pod) == "Pending"
    assert 'persistentvolumeclaim "dv-bar-pvc" not found' in k8s.pod_unschedulable(pod)
    assert any(e["reason"] == "FailedScheduling" for e in lab.list("events"))
    lab.create("persistentvolumeclaims", {"metadata": {"name": "dv-bar-pvc"}, "spec": {
        "storageClassName": "ibmc-file-gold-gid", "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": "50Mi"}}}})
    (pod,) = pods_of(lab, "dv-list-backups-job")
    assert k8s.pod_phase(pod) == "Running"


def test_another_process_sees_the_same_namespace(lab):
    lab.create("jobs", backup_job(lab, "dv-list-backups-job.yaml"))
    code = ("import sys; from dvdoctor.lab import LabCluster; c = LabCluster(sys.argv[1]); "
            "print(sorted(p['status']['phase'] for p in c.list('pods', label_selector='job-name=dv-list-backups-job')))")
    out = subprocess.run([sys.executable, "-c", code, str(lab.store.root)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['Running']"


@pytest.mark.skipif(not ROOT, reason="dropping to the BAR uid needs root; a non-root lab runs pods as its own uid")
def test_pods_and_exec_run_as_the_pods_uid(lab):
    result = lab.exec("dv-engine-0", ["id", "-u"], container="dv-engine")
    assert (result.rc, result.stdout.strip()) == (0, str(BAR_UID))
    for path in lab.store.volume_dir("dv-bar-pvc").rglob("*"):
        assert path.lstat().st_uid == BAR_UID


def test_a_pod_started_by_a_run_killed_before_it_recorded_so_is_never_started_twice(lab):
    """A dvdoctor process killed between launching a job's pod and writing its status leaves it Pending
    with its process running: the next look adopts that process (as a kubelet knows its containers),
    it does not start a second one beside it (two backup jobs writing at once)."""
    lab.create("jobs", backup_job(lab, "dv-list-backups-job.yaml"))
    (pod,) = pods_of(lab, "dv-list-backups-job")
    pod_dir = lab.store.pod_dir(k8s.name(pod))
    pid = (pod_dir / "pid").read_text()
    pod["status"] = {"phase": "Pending"}  # what the killed run had recorded
    lab.store.write("pods", pod)
    (pod,) = pods_of(lab, "dv-list-backups-job")
    assert k8s.pod_phase(pod) == "Running"
    assert (pod_dir / "pid").read_text() == pid and alive(int(pid))
