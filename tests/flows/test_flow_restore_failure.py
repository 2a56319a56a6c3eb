"""A restore that fails part-way is never silent: DV's restore job, given a backup that reads back,
fails while it untars it (a folder on DV's volume it cannot write). dvdoctor records the failure on
the dv-engine StatefulSet, says in plain words that DV's data was partly replaced and gives the
command that recovers; `check` fails `restore-incomplete` and the backup gate refuses until a
restore succeeds, which clears the record.
"""

from __future__ import annotations

import json
import os

import pytest

from dvdoctor.core.names import RESTORE_INCOMPLETE_ANNOTATION

from test_flow_faults import backup_files

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: the lab's restore pod must run as the BAR uid to meet a folder it cannot write")


def record(flow) -> dict | None:
    value = (flow.cluster().get("statefulsets", "dv-engine")["metadata"].get("annotations") or {}).get(
        RESTORE_INCOMPLETE_ANNOTATION)
    return json.loads(value) if value is not None else None


def test_a_restore_that_fails_part_way_is_recorded_said_and_cleared_by_the_next(flow) -> None:
    code, out, err = flow.backup("--yes")
    assert code == 0, out + err
    older, newer = flow.timestamps()
    before = backup_files(flow)
    added = flow.data / "1.5.0" / "metastore" / "written-after-the-backup.txt"
    added.write_text("a row DV wrote after the backup\n")
    locked = flow.data / "1.5.0" / "engine" / "bigsql"  # DV's restore job cannot write here
    owner = locked.stat()
    os.chown(locked, 0, 0)
    locked.chmod(0o755)
    try:
        code, out, err = flow.restore("--yes")
    finally:
        os.chown(locked, owner.st_uid, owner.st_gid)
        locked.chmod(owner.st_mode & 0o7777)
    assert code == 1, out + err
    assert "Traceback" not in out + err
    assert (f"✗ DV's data was partly replaced: job dv-restore-job failed after it had begun replacing DV's data "
            f"with backup {newer}. DV now holds neither its data from before nor that backup's") in out
    assert "recorded on statefulset/dv-engine (annotation dvdoctor.io/restore-incomplete)" in out
    assert f"recover with: dvdoctor restore --from {newer}" in out
    assert f"restore the previous good backup: dvdoctor restore --from {older}" in out
    assert not added.exists()  # the metastore was already replaced: DV's data really is half-restored
    got = record(flow)
    assert got["backup"] == newer and got["job"] == "dv-restore-job" and got["when"].endswith("Z")
    assert "BackoffLimitExceeded" in got["why"] and "untar of dv_backup_dv_engine.tar.gz failed" in got["why"]
    assert ".bar" not in flow.markers  # the failed job's marker was removed so DV can start
    assert backup_files(flow) == before  # the backups themselves are untouched

    code, out, _ = flow.dv("check")
    assert code == 1
    assert "✗ restore-incomplete" in out
    assert f"the restore of backup {newer} failed part-way at {got['when']}: DV's data is partly replaced" in out
    code, out, err = flow.backup("--yes")  # a backup of half-restored data must not become the restore point
    assert code == 1 and "restore-incomplete" in out and "Preflight failed: nothing was changed" in out
    assert flow.timestamps() == [older, newer]

    code, out, err = flow.restore("--yes", "--from", newer)
    assert code == 0, out + err
    assert f"remove the record of the failed restore of {newer} from statefulset/dv-engine" in out
    assert record(flow) is None
    code, out, _ = flow.dv("check")
    assert code == 0 and "✗" not in out, out


def test_a_failed_restore_job_of_dvcli_is_reported_and_kept_as_a_record_when_its_job_is_deleted(flow) -> None:
    """dvcli.sh's restore failed (no dvdoctor record): `check` still says DV's data may be partly
    replaced, and `fix --issue bar-job-failed` records it before it deletes the job."""
    from dvdoctor.lab import contents
    from dvdoctor.lab.bar import bar_job

    lab = flow.cluster()
    body = bar_job(lab, "dv-restore-job.yaml", contents.init_volume_image(lab.namespace))
    body["spec"]["backoffLimit"] = 0
    for env in body["spec"]["template"]["spec"]["containers"][0]["env"]:
        if env["name"] == "DV_BACKUP_TARBALL":
            env["value"] = "1999-01-01-00-00-00/dv_backup.tar.gz"  # no such backup: the job fails
    lab.create("jobs", body)
    from dvdoctor.cluster import k8s

    done = lab.wait("jobs", "dv-restore-job", lambda j: j is not None and k8s.job_state(j) != "active", 30)
    assert k8s.job_state(done) == "failed"
    code, out, _ = flow.dv("check")
    assert "✗ restore-incomplete" in out
    assert "job dv-restore-job failed: DV's data may be partly replaced by backup 1999-01-01-00-00-00" in out
    code, out, err = flow.dv("fix", "--issue", "bar-job-failed", "--yes")
    assert code == 0, out + err
    assert flow.object_names("jobs") == ["dv-init-volume"]
    assert record(flow)["backup"] == "1999-01-01-00-00-00"
    code, out, _ = flow.dv("check")
    assert "✗ restore-incomplete" in out and "the restore of backup 1999-01-01-00-00-00 failed part-way" in out
