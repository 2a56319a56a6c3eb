"""The record of a restore that failed part-way (restore_record.py) and the checks that read the
ownership of DV's namespace (restore-incomplete, bar-job-unattended), as pure functions of the
facts; the record's write and removal through the real client against tests/fakeapi.py."""

from __future__ import annotations

import json
from pathlib import Path


import builders as b
from dvdoctor.repair.audit import AuditLog
from dvdoctor.cluster.kube import connect
from dvdoctor.facts.model import Facts
from dvdoctor.core.names import RESTORE_INCOMPLETE_ANNOTATION
from dvdoctor.facts.bar_jobs import BarJob, folders_being_written, folders_of_job
from dvdoctor.facts.backups import backups
from dvdoctor.repair.plan import Plan, Runner, execute
from dvdoctor.facts.restore_record import Incomplete, backup_of_job, recorded
from dvdoctor.repair.restore_record import clear_action, record_action

from fakeapi import FakeApi

RECORD = Incomplete("2021-01-23T08:00:00Z", "2021-01-22-19-27-31", "BackoffLimitExceeded (untar failed)", "dv-restore-job")


def with_record(data: dict, record: Incomplete = RECORD) -> dict:
    b.find(data, "statefulsets", "dv-engine")["metadata"].setdefault("annotations", {})[
        RESTORE_INCOMPLETE_ANNOTATION] = record.to_json()
    return data


def test_restore_incomplete_fails_on_the_record_with_when_which_backup_and_why():
    result = b.run_one("restore-incomplete", with_record(b.healthy()))
    assert result.status == "fail"
    (problem,) = result.problems
    assert problem.message == ("the restore of backup 2021-01-22-19-27-31 failed part-way at 2021-01-23T08:00:00Z: "
                               "DV's data is partly replaced")
    assert problem.object == "statefulset/dv-engine"
    assert "why: BackoffLimitExceeded (untar failed)" in problem.evidence


def test_restore_incomplete_passes_without_a_record_and_once_a_restore_succeeded_since():
    assert b.run_one("restore-incomplete", b.healthy()).status == "pass"
    data = with_record(b.healthy())
    data["objects"]["jobs"].append(b.job("dv-restore-job", finished="2021-01-23T09:00:00Z"))  # dvcli.sh's, later
    assert b.run_one("restore-incomplete", data).status == "pass"
    data = with_record(b.healthy())
    data["objects"]["jobs"].append(b.job("dv-restore-job", finished="2021-01-23T07:00:00Z"))  # before the failure
    assert b.run_one("restore-incomplete", data).status == "fail"


def _orphan_restore_pod(phase: str, started: str, suffix: str = "r3st0") -> dict:
    """A dv-restore-job pod whose Job object was deleted (`--cascade=orphan`)."""
    pod = b.job_pod("dv-restore-job", suffix=suffix, phase=phase)
    pod["status"]["startTime"] = started
    pod["spec"]["containers"][0]["env"] = [{"name": "DV_BACKUP_TARBALL", "value": "2021-01-20-19-27-31/dv_backup.tar.gz"}]
    return pod


def test_a_restore_pod_that_failed_after_its_job_was_deleted_counts_until_a_restore_ran_since():
    """Break-it review (high): with the Job object deleted, a failed restore pod was only a leftover."""
    data = b.healthy()
    data["objects"]["pods"].append(_orphan_restore_pod("Failed", "2021-01-23T08:00:00Z"))
    r = b.run_one("restore-incomplete", data)
    (problem,) = r.problems
    assert problem.message == ("pod dv-restore-job-r3st0 of job dv-restore-job failed after its Job object was deleted: "
                               "DV's data may be partly replaced by backup 2021-01-20-19-27-31"), problem.message
    assert problem.object == "pod/dv-restore-job-r3st0" and "Error, exit code 1" in b.evidence(r)
    # its repair records it before deleting the pod, the only evidence
    plan = b.fix_plan("leftover-bar-pods", Facts(data))
    assert [a.describe().split(" (")[0] for a in plan.actions][:1] == ["record on statefulset/dv-engine"]
    assert "failed part-way" in plan.actions[0].describe() and len(plan.actions) == 2
    assert json.loads(plan.actions[0].patch["metadata"]["annotations"][RESTORE_INCOMPLETE_ANNOTATION])["backup"] == \
        "2021-01-20-19-27-31"
    # a restore that ran after it: a later pod that succeeded, or a restore Job started after it
    later = _orphan_restore_pod("Succeeded", "2021-01-23T09:00:00Z", suffix="n3xt0")
    assert b.run_one("restore-incomplete", {**data, "objects": {**data["objects"], "pods": [
        *data["objects"]["pods"], later]}}).status == "pass"
    job = b.job("dv-restore-job", finished="2021-01-23T10:00:00Z")
    job["status"]["startTime"] = "2021-01-23T09:30:00Z"
    job["metadata"]["uid"] = "uid-of-the-later-run"
    data["objects"]["jobs"].append(job)
    assert b.run_one("restore-incomplete", data).status == "pass"
    # its own Job still there: judged as the Job (bar-job-failed records it), not as a pod
    data = b.healthy()
    data["objects"]["pods"].append(_orphan_restore_pod("Failed", "2021-01-23T08:00:00Z"))
    data["objects"]["jobs"].append(b.job("dv-restore-job", state="failed"))
    (problem,) = b.run_one("restore-incomplete", data).problems
    assert problem.object == "job/dv-restore-job"


def test_leftover_bar_pods_records_a_failed_restore_job_it_deletes():
    """A failed dv-restore-job that ended over an hour ago is a leftover: deleting it must not delete
    the evidence of a restore that failed part-way (bar-job-failed records it; so does this repair)."""
    data = b.healthy()
    data["objects"]["jobs"].append(b.job("dv-restore-job", state="failed", finished="2021-01-22T20:06:00Z"))
    data["collected_at"] = "2021-01-23T08:00:00Z"
    plan = b.fix_plan("leftover-bar-pods", Facts(data))
    assert [type(a).__name__ for a in plan.actions] == ["Patch", "StopJob"], [a.describe() for a in plan.actions]
    assert b.fix_plan("leftover-bar-pods", Facts(with_record(data))).actions[0].describe().startswith("delete job")


def test_a_failed_restore_job_without_a_record_counts_too():
    data = b.healthy()
    job = b.job("dv-restore-job", state="failed")
    job["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "DV_BACKUP_TARBALL",
                                                                "value": "2021-01-20-19-27-31/dv_backup.tar.gz"}]
    data["objects"]["jobs"].append(job)
    (problem,) = b.run_one("restore-incomplete", data).problems
    assert problem.message == ("job dv-restore-job failed: DV's data may be partly replaced by backup "
                               "2021-01-20-19-27-31")


def test_a_record_someone_edited_is_still_a_record():
    data = b.healthy()
    b.find(data, "statefulsets", "dv-engine")["metadata"].setdefault("annotations", {})[
        RESTORE_INCOMPLETE_ANNOTATION] = "half done, ask Bob"
    found = recorded(Facts(data))
    assert found.backup == "?" and "not dvdoctor's JSON: 'half done, ask Bob'" in found.why
    assert b.run_one("restore-incomplete", data).status == "fail"


def test_the_restore_gate_lets_the_recovering_restore_through_and_the_backup_gate_does_not():
    data = with_record(b.healthy())
    from dvdoctor.flows.gate import HANDLED_BY_FLOW

    assert "restore-incomplete" in HANDLED_BY_FLOW["restore"]
    assert [r.status for r in b.results(data, phase="backup", only=("restore-incomplete",))] == ["fail"]


def test_backup_of_job_reads_the_env_value_dvdoctor_and_dvcli_set():
    job = b.job("dv-restore-job", state="failed")
    names = Facts(b.healthy()).names
    assert backup_of_job(job, names) == "the one dv_backup.tar.gz marked"
    job["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "X", "value": "2021-01-20-19-27-31/dv_backup.tar.gz"}]
    assert backup_of_job(job, names) == "2021-01-20-19-27-31"


# -- bar-job-unattended and the folders of a job ------------------------------------------------


def active_backup(annotations: dict | None = None, started: str = "2021-01-22T20:00:00Z") -> dict:
    job = b.job("dv-backup-job", state="active")
    job["status"]["startTime"] = started
    job["metadata"]["annotations"] = annotations or {}
    return job


def test_a_dvdoctor_job_whose_run_holds_the_lock_is_attended_and_one_whose_run_is_gone_is_not():
    data = b.healthy()
    data["collected_at"] = "2021-01-22T20:10:00Z"
    data["objects"]["jobs"].append(active_backup({"dvdoctor.io/started-by": "dvdoctor backup",
                                                  "dvdoctor.io/run": "ops@bastion:4242"}))
    data["objects"]["leases"] = [b.stale_lease(renewed="2021-01-22T20:09:50.000000Z")]  # ops@bastion:4242, alive
    assert b.run_one("bar-job-unattended", data).status == "pass"
    data["objects"]["leases"] = [b.stale_lease(renewed="2021-01-22T20:00:00.000000Z")]  # expired
    (problem,) = b.run_one("bar-job-unattended", data).problems
    assert problem.message == ("job dv-backup-job has been running for 10 min with nobody attached: "
                               "the dvdoctor run that started it is gone")
    data["objects"]["leases"] = [b.stale_lease(renewed="2021-01-22T20:09:50.000000Z", holder="someone@else:1")]
    assert b.run_one("bar-job-unattended", data).status == "fail"  # the lock is another run's


def test_without_the_right_to_read_the_lock_a_dvdoctor_job_is_never_called_unattended():
    data = b.healthy()
    data["collected_at"] = "2021-01-22T23:00:00Z"
    data["objects"]["jobs"].append(active_backup({"dvdoctor.io/run": "ops@bastion:4242"}))
    del data["objects"]["leases"]
    result = b.run_one("bar-job-unattended", data)
    assert result.status == "skip" and "Leases could not be listed" in result.reason
    assert b.fix_plan("bar-job-unattended", Facts(data)).empty  # nothing is stopped


def test_a_dvcli_job_is_attended_for_its_hour_and_a_list_job_never_reported_here():
    data = b.healthy()
    data["collected_at"] = "2021-01-22T20:59:00Z"
    data["objects"]["jobs"].append(active_backup())
    data["objects"]["jobs"].append(b.job("dv-list-backups-job", state="active"))
    assert b.run_one("bar-job-unattended", data).status == "pass"
    data["collected_at"] = "2021-01-22T21:01:00Z"
    (problem,) = b.run_one("bar-job-unattended", data).problems
    assert problem.object == "job/dv-backup-job"
    assert "it has run longer than dvcli.sh waits for its job" in problem.message


def test_the_folders_of_a_job_are_after_its_recorded_newest_before_and_never_the_restore_point():
    data = b.healthy()
    bar = data["bar_volume"]
    b.add_backup(bar, "2021-01-22-20-00-01", {"dv_backup_dv_metastore.tar.gz": 10})
    items = backups(bar, Facts(data).names)
    recorded_job = BarJob.of(active_backup({"dvdoctor.io/newest-before": "2021-01-22-19-27-31"},
                                           started="2021-01-22T19:27:33Z"))
    assert folders_of_job(items, recorded_job, "2021-01-22-19-27-31") == ["2021-01-22-20-00-01"]
    dvcli_job = BarJob.of(active_backup(started="2021-01-22T19:27:33Z"))  # 2 s after the restore point's folder
    assert folders_of_job(items, dvcli_job, "2021-01-22-19-27-31") == ["2021-01-22-20-00-01"]
    assert "2021-01-22-19-27-31" in folders_of_job(items, dvcli_job, None)  # within the clock slack
    data["objects"]["jobs"].append(active_backup(started="2021-01-22T19:59:30Z"))
    assert folders_being_written(Facts(data), items) == {"2021-01-22-20-00-01"}
    # its pod at work after the Job object was deleted writes it just the same: never pruned beside it
    data["objects"]["jobs"].pop()
    assert folders_being_written(Facts(data), items) == set()
    pod = b.job_pod("dv-backup-job", suffix="t4r00", phase="Running")
    pod["status"]["startTime"] = "2021-01-22T19:59:30Z"
    data["objects"]["pods"].append(pod)
    assert folders_being_written(Facts(data), items) == {"2021-01-22-20-00-01"}


# -- the record through the Kubernetes adapter -------------------------------------------------


def test_the_record_is_a_merge_patch_of_one_annotation_and_its_removal_too(api: FakeApi, tmp_path: Path) -> None:
    cluster = connect(str(api.kubeconfig(tmp_path / "config", namespace=b.NS)), None, None)
    sts = b.statefulset("dv-engine")
    sts["metadata"]["annotations"] = {"site/owner": "dba-team"}
    api.put("statefulsets", sts)
    data = b.healthy()
    run = Runner(cluster, Facts(data), AuditLog(tmp_path / "audit.jsonl"))
    execute(Plan("restore", [record_action(Facts(data), RECORD)]), run)
    stored = api.stored("statefulsets", "dv-engine")["metadata"]["annotations"]
    assert json.loads(stored[RESTORE_INCOMPLETE_ANNOTATION]) == {
        "when": RECORD.when, "backup": RECORD.backup, "why": RECORD.why, "job": RECORD.job}
    assert stored["site/owner"] == "dba-team"  # nothing else of the StatefulSet changes
    (patch,) = api.requests_to("PATCH", "/statefulsets/dv-engine$")
    assert patch.headers["content-type"] == "application/merge-patch+json"

    execute(Plan("restore", [clear_action(Facts(with_record(b.healthy())))]), run)
    assert api.stored("statefulsets", "dv-engine")["metadata"]["annotations"] == {"site/owner": "dba-team"}
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [e["action"].split(" (")[0] for e in audit] == [
        "record on statefulset/dv-engine", "remove the record of the failed restore of 2021-01-22-19-27-31 from "
                                           "statefulset/dv-engine: this restore succeeded"]
    assert clear_action(Facts(b.healthy())) is None


def test_a_restore_job_whose_pod_never_ran_leaves_no_record():
    import io

    from rich.console import Console

    from dvdoctor.facts.backups import Backup
    from dvdoctor.flows.jobs import JobOutcome
    from dvdoctor.flows.restore import record_failure

    out = io.StringIO()
    never_ran = JobOutcome("Stuck", "dv-restore-job-x7k2p", "pod dv-restore-job-x7k2p: ErrImagePull", "")
    # no runner: nothing may be written to the cluster
    assert record_failure(None, Facts(b.healthy()), Backup("2021-01-22-19-27-31"), "dv-restore-job", never_ran,
                          Console(file=out)) is None
    assert "DV's data was not touched: the pod of job dv-restore-job never ran" in out.getvalue()


def test_times_no_api_server_sends_are_times_not_known_not_crashes():
    """Break-it review (low): a pod's startTime of "garbage" (an edited lab object) crashed
    restore-incomplete and leftover-bar-pods, and a time without a zone crashed leftover-bar-pods."""
    for started in ("garbage", "2021-01-23T08:00:00", 12):
        data = b.healthy()
        pod = _orphan_restore_pod("Failed", started)
        data["objects"]["pods"].append(pod)
        for check_id in ("restore-incomplete", "leftover-bar-pods"):
            r = b.run_one(check_id, data)
            assert r.status in ("fail", "warn"), (started, check_id, r.status, r.reason)
