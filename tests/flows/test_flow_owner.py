"""DV's own job owns the namespace: after dvdoctor is killed mid-backup, DV's dv-backup-job runs on
(the lab's `--bar-hold` keeps it half-way, its marker and partial folder written). While it runs,
no dvdoctor command changes anything, whatever the lock says: restore, a second backup, prune and
the marker repair each refuse with one line naming the job, its age and what to do, and the dead
run's lock is not taken over. `check` names the unattended job; `fix --all` stops it as an
interrupted backup does. A job dvcli.sh started is left to dvcli.sh for its 60 minutes of waiting.
"""

from __future__ import annotations

import os
import json
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest

from dvdoctor.cluster import k8s
from dvdoctor.cluster.lock import LEASE_NAME
from dvdoctor.core.names import REPLICAS_ANNOTATION, RUN_ANNOTATION
from dvdoctor.lab import break_lab
from dvdoctor.lab.store import Store

from test_flow_faults import backup_files

REFUSED = "DV's own job owns namespace cpd30 while it runs"


def wait_for(what: str, condition, timeout: float = 120, proc: subprocess.Popen | None = None) -> None:
    """Wait for `condition`, failing at once when `proc` (the run that should bring it about) ends
    first. The bound is for a run that hangs, not a measure of speed: on a busy 2-core machine the
    lab's backup has taken over 30 s to reach half-way."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc is None or proc.poll() is None, f"the run ended before {what}: {proc.communicate()[0]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def kill_backup_mid_job(flow) -> str:
    """`dvdoctor backup` in a child, SIGKILLed once DV's job is half-way (its marker and its partial
    folder with the metastore tarball written, and holding there); returns the job's partial folder."""
    (previous,) = flow.timestamps()
    proc = subprocess.Popen([sys.executable, "-m", "dvdoctor", "--lab", str(flow.lab), "backup", "--yes",
                             "--log-dir", str(flow.logs)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for("the job half-way", lambda: len(flow.timestamps()) == 2 and ".bar" in flow.markers
                 and flow.holding("dv-backup-job"), proc=proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
    job = flow.cluster().get("jobs", "dv-backup-job")
    assert job is not None and k8s.job_state(job) == "active"  # DV's job runs on without dvdoctor
    (partial,) = [t for t in flow.timestamps() if t != previous]
    return partial


def test_a_future_dated_folder_is_never_the_running_jobs_nor_removed_with_it(held_flow) -> None:
    """Break-it review: with a folder dated next year on the volume, the backup recorded it as the
    newest before its job, so the folder the job was writing looked damaged, and stopping the job
    left that folder behind. A future-dated folder is never the newest nor a job's: the job's own
    folder is in progress, and stopping the job removes it and keeps the future one."""
    flow = held_flow
    future = (datetime.now(timezone.utc) + timedelta(days=365)).strftime("%Y-%m-%d-%H-%M-%S")
    (flow.bar / future).mkdir()
    (flow.bar / future / "notes.txt").write_text("someone's, with a wrong clock")
    (previous,) = [t for t in flow.timestamps() if t != future]
    proc = subprocess.Popen([sys.executable, "-m", "dvdoctor", "--lab", str(flow.lab), "backup", "--yes",
                             "--log-dir", str(flow.logs)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for("the job half-way", lambda: len(flow.timestamps()) == 3 and flow.holding("dv-backup-job"), proc=proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
    (partial,) = [t for t in flow.timestamps() if t not in (previous, future)]
    annotations = flow.cluster().get("jobs", "dv-backup-job")["metadata"]["annotations"]
    assert annotations["dvdoctor.io/newest-before"] == previous
    code, out, _ = flow.dv("check", "--only", "incomplete-backups")
    assert code == 0, out  # the folder being written is in progress, not damaged
    code, out, err = flow.dv("fix", "--issue", "bar-job-unattended", "--yes")
    assert code == 0, out + err
    assert f"delete the partial backup folder {partial} " in out and future not in out, out
    assert sorted(flow.timestamps()) == sorted([previous, future])
    assert (flow.bar / future / "notes.txt").exists()


def test_when_the_stop_fails_no_other_repair_acts_under_the_job(flow) -> None:
    """Break-it review (high): `fix --all` lets the other repairs act after bar-job-unattended stops
    DV's job; when that stop fails (here dvdoctor may not delete jobs; on a cluster, a pod stuck
    terminating), the job runs on, and none of them may act: the partial folder stays."""
    break_lab(flow.lab, "bar-job-unattended,incomplete-backups")
    store = Store(flow.lab)
    meta = store.meta()
    for rule in meta["rules"]:
        if "jobs" in rule["resources"]:
            rule["verbs"] = ["get", "list", "watch", "create", "update", "patch"]
    store.save_meta(meta)
    before = flow.timestamps()  # the good backup, the killed run's partial one, the damaged one
    code, out, err = flow.dv("fix", "--all", "--yes")
    assert code == 1, out + err
    flat = " ".join(out.split())
    # Either the stop is tried and refused, and the repairs after it do not act; or DV's running job
    # wrote its folder between the plan and the apply (a busy machine), and the re-check under the
    # lock changes nothing at all. Both leave everything to the job, which is what is tested.
    stopped_refused = ("✗ bar-job-unattended: delete job dv-backup-job" in flat and "forbidden" in flat
                       and "✗ incomplete-backups: not applied, since DV's job did not end: job dv-backup-job" in flat)
    rechecked = "nothing was changed: a backup folder or the restore point changed since the plan was made" in flat
    assert stopped_refused or rechecked, out
    assert set(before) <= set(flow.timestamps())  # nothing removed (the running job may have made its folder since)
    assert k8s.job_state(flow.cluster().get("jobs", "dv-backup-job")) == "active"


def test_a_backup_pod_whose_job_was_deleted_owns_the_namespace_and_is_stopped_cleanly(flow) -> None:
    """Break-it review: DV's backup Job deleted with --cascade=orphan, its pod's tar runs on. It was
    seen only as a leftover pod: every repair acted beside it, and leftover-bar-pods would have
    killed it half-way. It is DV's job at work: every change refuses, naming the pod. And nobody is
    attached to it (dvdoctor and dvcli.sh follow the Job), so `check` names it as it names an
    unattended job, and bar-job-unattended stops it as it stops one: the pod, its partial folder and
    the marker go, the side deployments come back, the good backup stays."""
    (good,) = flow.timestamps()
    break_lab(flow.lab, "bar-job-unattended")
    (pod,) = [p for p in flow.object_names("pods") if p.startswith("dv-backup-job-")]
    (flow.lab / "objects" / "jobs" / "dv-backup-job.json").unlink()  # the Job object only
    before, folders = flow.snapshot(), flow.timestamps()
    code, out, _ = flow.dv("check", "-o", "json")
    report = json.loads(out)
    # not a leftover (it is at work), and its marker and DV's stopped deployments are its business, as a job's
    assert code == 1 and [r["id"] for r in report["results"] if r["status"] != "pass" and r["status"] != "skip"] == [
        "bar-job-unattended"], out
    (result,) = [r for r in report["results"] if r["id"] == "bar-job-unattended"]
    (problem,) = result["problems"]
    assert problem["message"].startswith(f"pod {pod} of job dv-backup-job has been running for "), problem
    assert problem["message"].endswith("with nobody attached: its Job object was deleted, and dvdoctor and "
                                       "dvcli.sh follow the Job, not its pod"), problem
    assert result["fix"] == "dvdoctor fix --issue bar-job-unattended", result
    for args in (("fix", "--issue", "stale-bar-marker", "--yes"), ("fix", "--issue", "side-deployments-left-down", "--yes"),
                 ("backup", "--yes"), ("prune", "--keep", "1", "--yes")):
        code, out, err = flow.dv(*args)
        assert code == 2, (args, out, err)
        assert f"pod {pod} of job dv-backup-job, whose Job object was deleted, has been running" in err, err
        assert "stop it cleanly (pod, partial backup folder" in err, err
    assert {k: v for k, v in flow.snapshot().items() if not k.startswith("volumes/dv-bar-pvc")} == {
        k: v for k, v in before.items() if not k.startswith("volumes/dv-bar-pvc")}  # the pod's own writes aside
    assert set(folders) <= set(flow.timestamps()) and pod in flow.object_names("pods")

    code, out, err = flow.dv("fix", "--issue", "bar-job-unattended", "--yes")
    flat = " ".join(out.split())
    assert code == 0, out + err
    assert f"delete pod {pod} of job dv-backup-job, whose Job object was deleted" in flat, out
    assert pod not in flow.object_names("pods")
    assert flow.timestamps() == [good]  # its partial folder gone, the good backup kept
    assert ".bar" not in flow.markers and set(flow.replicas().values()) == {1}
    code, out, _ = flow.dv("check")
    assert code == 0, out


def job_uid(flow, name: str = "dv-backup-job") -> str | None:
    job = flow.cluster().get("jobs", name)
    return job["metadata"]["uid"] if job and k8s.job_state(job) == "active" else None


def one_line_refusal(err: str, command: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("dvdoctor: error: job dv-backup-job has been running for under a minute "
                               "(started by `dvdoctor backup` of "), lines[0]
    assert f"nobody is watching it): {REFUSED}, so `{command}` changed nothing" in lines[0]
    assert "`dvdoctor fix --issue bar-job-unattended`" in lines[0]
    return lines[0]


def test_restore_refuses_while_a_killed_backup_s_job_runs(held_flow) -> None:
    flow = held_flow
    kill_backup_mid_job(flow)
    uid, lease, data = job_uid(flow), flow.cluster().get("leases", LEASE_NAME), flow.data_digest()
    code, out, err = flow.restore("--yes", "--accept-unverified-origin")
    assert code == 2, out + err
    one_line_refusal(err, "dvdoctor restore")
    assert flow.data_digest() == data  # DV's data untouched
    assert ".bar" in flow.markers  # the job's marker is still its own
    assert job_uid(flow) == uid and "dv-restore-job" not in flow.object_names("jobs")
    # the dead run's lock was not taken over: it still names the killed run
    assert flow.cluster().get("leases", LEASE_NAME)["spec"]["holderIdentity"] == lease["spec"]["holderIdentity"]


def test_a_second_backup_never_deletes_the_running_job(held_flow) -> None:
    flow = held_flow
    partial = kill_backup_mid_job(flow)
    uid, replicas = job_uid(flow), flow.replicas()
    code, out, err = flow.backup("--yes")
    assert code == 2, out + err
    one_line_refusal(err, "dvdoctor backup")
    assert job_uid(flow) == uid  # the same job, still running: not deleted as "finished"
    assert partial in flow.timestamps() and flow.replicas() == replicas


def test_prune_never_deletes_the_folder_the_job_writes(held_flow) -> None:
    flow = held_flow
    partial = kill_backup_mid_job(flow)
    before = backup_files(flow)
    code, out, err = flow.dv("prune", "--keep", "1", "--yes")
    assert code == 2, out + err
    one_line_refusal(err, "dvdoctor prune --keep 1")
    assert partial in flow.timestamps()
    assert {k: v for k, v in backup_files(flow).items() if k in before} == before


def test_the_marker_repair_and_the_scale_down_refuse_too(held_flow) -> None:
    """Scaling the side deployments down is a change like any other: under DV's running job it refuses
    (break-it review, L3), and `check` says what to do instead."""
    flow = held_flow
    kill_backup_mid_job(flow)
    code, out, err = flow.dv("fix", "--issue", "stale-bar-marker", "--yes")
    assert code == 2, out + err
    one_line_refusal(err, "dvdoctor fix --issue stale-bar-marker")
    assert ".bar" in flow.markers
    flow.cluster().patch("deployments", "dv-api", {"spec": {"replicas": 1}})  # someone brings it up meanwhile
    code, out, _ = flow.dv("check", "--only", "side-deployments-running")
    assert code == 1 and "dv-api still runs while job dv-backup-job is running" in out, out
    assert "dvdoctor changes nothing while dv-backup-job runs" in out and "fix --issue bar-job-unattended" in out
    # no fix command that would only be refused: the report says why there is none now
    assert "fix: none while job dv-backup-job runs" in out and "fix: dvdoctor fix --issue side-deployments-running" not in out
    code, out, _ = flow.dv("check", "--only", "side-deployments-running", "-o", "junit")
    assert "fix: none while job dv-backup-job runs" in out, out
    code, out, err = flow.dv("fix", "--issue", "side-deployments-running", "--yes")
    assert code == 2, out + err
    one_line_refusal(err, "dvdoctor fix --issue side-deployments-running")
    assert flow.cluster().get("deployments", "dv-api")["spec"]["replicas"] == 1


def test_check_names_the_unattended_job_and_fix_all_stops_it_cleanly(held_flow) -> None:
    flow = held_flow
    (previous,) = flow.timestamps()
    link, before = os.readlink(flow.bar / "dv_backup.tar.gz"), backup_files(flow)
    partial = kill_backup_mid_job(flow)

    code, out, _ = flow.dv("check")
    assert code == 1
    assert "✗ bar-job-unattended" in out
    assert ("job dv-backup-job has been running for under a minute with nobody attached: "
            "the dvdoctor run that started it is gone") in out
    assert "job/dv-backup-job: active since " in out and ", a run that is gone" in out
    assert "fix: dvdoctor fix --issue bar-job-unattended" in out

    code, out, err = flow.dv("fix", "--all", "--yes")
    assert code == 0, out + err
    assert "bar-job-unattended: ✓ verified" in out
    assert f"delete the partial backup folder {partial} " in out
    assert flow.object_names("jobs") == ["dv-init-volume"] and not [
        p for p in flow.object_names("pods") if p.startswith("dv-backup-job")]
    assert flow.timestamps() == [previous]  # the partial folder is gone, the good backup stays
    assert backup_files(flow) == before
    assert os.readlink(flow.bar / "dv_backup.tar.gz") == link  # the restore point did not move
    assert ".bar" not in flow.markers
    assert set(flow.replicas().values()) == {1}
    assert flow.cluster().get("leases", LEASE_NAME) is None
    code, out, _ = flow.dv("check")
    assert code == 0 and "✗" not in out and "!" not in out.split("\n", 1)[1], out
    code, out, err = flow.dv("list", "--verify")
    assert code == 0 and any(previous in line and " good " in line for line in out.splitlines()), out + err


def test_fix_all_looks_again_for_what_stopping_the_job_uncovered(held_flow) -> None:
    """dv-api was scaled down by hand (no recorded count) while a killed run's job runs on: its check
    is not judged while the job runs, so the first plan has only bar-job-unattended. `fix --all`
    looks again after stopping the job, repairs side-deployments-left-down, and ends with DV up."""
    flow = held_flow
    kill_backup_mid_job(flow)
    flow.cluster().patch("deployments", "dv-api", {"metadata": {"annotations": {REPLICAS_ANNOTATION: None}}})
    assert flow.replicas()["dv-api"] == 0

    code, out, err = flow.dv("fix", "--all", "--yes")

    assert code == 0, out + err
    flat = " ".join(out.split())
    assert "bar-job-unattended: ✓ verified" in flat
    assert "Now failing, after the repairs above: side-deployments-left-down" in flat
    assert "side-deployments-left-down: ✓ verified" in flat
    assert set(flow.replicas().values()) == {1}
    assert flow.dv("check")[0] == 0


def test_stopping_the_job_and_the_left_down_repair_agree_on_a_recorded_zero(held_flow) -> None:
    """A recorded original count of 0 is no count to go back to: stopping the job scales the side
    deployments to 1, as side-deployments-left-down does (the runbook's value), never leaves them at 0."""
    flow = held_flow
    kill_backup_mid_job(flow)
    for name in ("dv-caching", "dv-api", "dv-unified-console"):
        flow.cluster().patch("deployments", name, {"metadata": {"annotations": {REPLICAS_ANNOTATION: "0"}}})

    code, out, err = flow.dv("fix", "--issue", "bar-job-unattended", "--yes")

    assert code == 0, out + err
    assert set(flow.replicas().values()) == {1}
    assert flow.dv("check")[0] == 0


def test_a_dvcli_job_is_left_to_dvcli_for_its_hour_and_reported_after(held_flow) -> None:
    """A job without dvdoctor's annotations (dvcli.sh's): every change refuses while it runs; `check`
    reports it only once it has run longer than dvcli.sh waits for it."""
    flow = held_flow
    lab = flow.cluster()
    from dvdoctor.lab.bar import bar_job
    from dvdoctor.lab import contents

    body = bar_job(lab, "dv-backup-job.yaml", contents.init_volume_image(lab.namespace))
    lab.create("jobs", body)
    wait_for("the dvcli.sh job's marker", lambda: ".bar" in flow.markers)
    code, out, err = flow.backup("--yes")
    assert code == 2
    assert "started by dvcli.sh, a schedule or by hand; watched by dvcli.sh, if it started it" in err
    assert f"{REFUSED}, so `dvdoctor backup` changed nothing; wait for it to end" in err
    code, out, _ = flow.dv("check", "--only", "bar-job-unattended")
    assert code == 0, out

    job = lab.store.read("jobs", "dv-backup-job")
    started = datetime.now(timezone.utc) - timedelta(minutes=75)
    job["status"]["startTime"] = started.strftime("%Y-%m-%dT%H:%M:%SZ")
    lab.store.write("jobs", job)
    code, out, _ = flow.dv("check", "--only", "bar-job-unattended")
    assert code == 1
    assert "job dv-backup-job has been running for 75 min with nobody attached: it has run longer than dvcli.sh waits" in out
    assert RUN_ANNOTATION not in k8s.annotations(job)


def test_dvcli_s_list_job_fails_the_gate_and_check_for_backup_alike_until_backup_fix_removes_it(flow) -> None:
    """dvcli.sh always leaves its list job running: `check --for backup` and `backup` give the same
    verdict (leftover-bar-pods, an error in the gate, exit 1, nothing changed), and `backup --fix`
    deletes the job first and backs up (a scheduled `backup --fix` does not fail every night)."""
    lab = flow.cluster()
    from dvdoctor.lab.bar import bar_job
    from dvdoctor.lab import contents

    lab.create("jobs", bar_job(lab, "dv-list-backups-job.yaml", contents.init_volume_image(lab.namespace)))
    def state() -> dict:  # all but the list job's own objects, which its controller keeps updating
        return {k: v for k, v in flow.snapshot().items() if "dv-list-backups-job" not in k}

    before = state()
    code, out, err = flow.dv("check", "--for", "backup", "-o", "json")
    assert code == 1, out + err
    [result] = [r for r in json.loads(out)["results"] if r["id"] == "leftover-bar-pods"]
    assert result["status"] == "fail" and "`dvdoctor backup --fix` deletes it first" in json.dumps(result)
    assert flow.dv("check")[0] == 0  # in the namespace as it is, a leftover job only warns
    code, out, err = flow.backup("--yes")
    assert code == 1, out + err
    assert "leftover-bar-pods" in out and "Preflight failed: nothing was changed" in " ".join(out.split())
    assert state() == before
    code, out, err = flow.backup("--yes", "--fix")
    assert code == 0, out + err
    assert "dv-list-backups-job" not in flow.object_names("jobs")
    assert len(flow.timestamps()) == 2


def test_check_for_backup_refuses_as_backup_does_under_a_running_backup_job(held_flow) -> None:
    """A dv-backup-job runs (a killed run's): `check --for backup` and `check --for restore` give the
    command's own verdict, the one-line refusal and exit 2, not a clean gate."""
    flow = held_flow
    kill_backup_mid_job(flow)
    for phase in ("backup", "restore"):
        for fmt in ("table", "json"):
            code, out, err = flow.dv("check", "--for", phase, "-o", fmt)
            assert code == 2, out + err
            assert f"{REFUSED}, so `dvdoctor {phase}` changed nothing" in " ".join(err.split())
            assert out == "", out  # no report: it said "clean (exit 0)" of a command that is refused
    code, out, err = flow.backup("--yes")
    assert code == 2
    one_line_refusal(err, "dvdoctor backup")


def test_restore_from_a_copy_refuses_before_it_writes_onto_the_volume(held_flow) -> None:
    flow = held_flow
    partial = kill_backup_mid_job(flow)
    before = backup_files(flow)
    code, out, err = flow.restore("--yes", "--from-copy", "2021-01-22-19-27-31")
    assert code == 2, out + err
    line = [ln for ln in err.splitlines() if ln.strip()]
    assert len(line) == 1 and f"{REFUSED}, so `dvdoctor restore --from-copy 2021-01-22-19-27-31` changed nothing" in line[0]
    assert backup_files(flow) == before and partial in flow.timestamps()


def test_a_killed_restore_s_job_is_named_left_to_finish_and_finished_after(held_flow) -> None:
    """dvdoctor killed while DV's restore job has untarred half of the backup: the job is never stopped
    half-way; `check` names it, every change refuses; once it has ended, `fix --all` finishes the rest."""
    flow = held_flow
    data = flow.data_digest()
    proc = subprocess.Popen([sys.executable, "-m", "dvdoctor", "--lab", str(flow.lab), "restore", "--yes",
                             "--accept-unverified-origin", "--log-dir", str(flow.logs)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    try:
        wait_for("the restore job half-way", lambda: flow.holding("dv-restore-job"))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
    uid = job_uid(flow, "dv-restore-job")
    assert uid is not None

    code, out, _ = flow.dv("check")
    assert code == 1 and "✗ bar-job-unattended" in out
    assert ("job dv-restore-job has been running for under a minute with nobody attached: "
            "the dvdoctor run that started it is gone") in out
    code, out, err = flow.dv("fix", "--all", "--yes")
    assert code == 2, out + err
    assert "a restore is never stopped half-way" in out
    assert "wait for it to end (stopping a restore half-way leaves DV's data half-replaced)" in err
    assert job_uid(flow, "dv-restore-job") == uid  # still running, never stopped half-way
    # the stop asked by name can do nothing under a restore: refused as every other change (it exited 1)
    code, out, err = flow.dv("fix", "--issue", "bar-job-unattended", "--yes")
    assert code == 2 and not out, out + err
    assert (f"{REFUSED}, so `dvdoctor fix --issue bar-job-unattended` changed nothing; wait for it to end "
            "(stopping a restore half-way") in err, err
    assert job_uid(flow, "dv-restore-job") == uid
    code, out, err = flow.backup("--yes")
    assert code == 2 and "job dv-restore-job has been running" in err

    flow.end_hold("dv-restore-job")
    done = flow.cluster().wait("jobs", "dv-restore-job", lambda j: j is None or k8s.job_state(j) != "active", 30)
    assert k8s.job_state(done) == "complete"
    code, out, err = flow.dv("fix", "--all", "--yes")
    assert code == 0, out + err
    code, out, _ = flow.dv("check")
    assert code == 0 and "✗" not in out, out
    assert flow.data_digest() == data  # restored whole, from the same backup


def test_a_restore_pod_that_fails_after_its_job_was_deleted_is_a_failed_restore_until_recorded(held_flow) -> None:
    """Break-it review (high): dvdoctor killed mid-restore, DV's restore Job then deleted with its pod
    orphaned, and the pod's untar failed. `check` named only a leftover pod and a stale marker, and
    `fix --all` deleted the pod (the only evidence) and the marker: DV came up half-restored, and the
    next `check` was clean. The failed pod is a failed restore: `check` names it, the repair that
    deletes it records it first, and `check` keeps naming it after."""
    flow = held_flow
    proc = subprocess.Popen([sys.executable, "-m", "dvdoctor", "--lab", str(flow.lab), "restore", "--yes",
                             "--accept-unverified-origin", "--log-dir", str(flow.logs)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for("the restore job half-way", lambda: flow.holding("dv-restore-job"), proc=proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
    (pod,) = [p for p in flow.object_names("pods") if p.startswith("dv-restore-job-")]
    (flow.lab / "objects" / "jobs" / "dv-restore-job.json").unlink()  # the Job object only
    (engine,) = (flow.lab / "volumes" / "dv-pvc").rglob(".dv_restore/dv_backup_dv_engine.tar.gz")
    engine.write_bytes(engine.read_bytes()[:1000])  # the untar that comes next fails
    flow.end_hold("dv-restore-job")
    wait_for("the pod to fail", lambda: k8s.pod_phase(flow.cluster().get("pods", pod)) == "Failed", timeout=60)

    code, out, _ = flow.dv("check", "--only", "restore-incomplete")
    flat = " ".join(out.split())
    assert code == 1 and f"pod {pod} of job dv-restore-job failed after its Job object was deleted" in flat, out
    code, out, err = flow.dv("fix", "--all", "--yes")
    flat = " ".join(out.split())
    assert "record on statefulset/dv-engine (annotation dvdoctor.io/restore-incomplete)" in flat, out + err
    assert pod not in flow.object_names("pods")  # deleted, once recorded
    code, out, _ = flow.dv("check")
    assert code == 1 and "✗ restore-incomplete" in out, out
