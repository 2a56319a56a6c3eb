"""`dvdoctor backup` end to end in the lab: the new backup, the gate, and a failing job."""

from __future__ import annotations

import json
import time

from dvdoctor.lab import break_lab
from dvdoctor.core.names import REPLICAS_ANNOTATION

SIDE = ("dv-api", "dv-caching", "dv-unified-console")


def test_backup_makes_a_complete_backup_and_puts_back_the_recorded_replicas(flow):
    flow.cluster().patch("deployments", "dv-api", {"spec": {"replicas": 2}})
    (first,) = flow.timestamps()

    code, out, _ = flow.backup("--yes")

    assert code == 0, out
    (new,) = set(flow.timestamps()) - {first}
    assert sorted(p.name for p in (flow.bar / new).iterdir()) == [
        "dv_backup.tar.gz", "dv_backup_dv_engine.tar.gz", "dv_backup_dv_metastore.tar.gz", "dvdoctor-manifest.json", "tmp"]
    assert flow.current() == new
    assert f"backup {new} complete" in out
    assert flow.markers == []
    assert flow.replicas() == {"dv-api": 2, "dv-caching": 1, "dv-unified-console": 1}
    for name in SIDE:
        assert REPLICAS_ANNOTATION not in flow.cluster().get("deployments", name)["metadata"].get("annotations", {})
    (log,) = flow.logs.glob("dv-backup-job-*.log")
    assert f"backup {new} complete" in log.read_text()
    entries = [(e["fix"], e["action"], [(c["before"], c["after"]) for c in e["changes"]]) for e in flow.audit_entries()]
    assert ("backup", "scale deployment/dv-api to 0 replicas", [("2", "0")]) in entries
    assert ("backup", "scale deployment/dv-api to 2 replicas", [("0", "2")]) in entries
    created = [e for e in entries if e[1].startswith("create job dv-backup-job")]
    assert created and created[0][2] == [("absent", "created")]
    scale_downs = [i for i, e in enumerate(entries) if e[1].endswith("to 0 replicas")]
    assert len(scale_downs) == 3 and max(scale_downs) < entries.index(created[0])


def test_a_backup_after_an_interrupted_one_scales_back_to_the_recorded_counts(flow):
    flow.cluster().patch("deployments", "dv-api", {"spec": {"replicas": 2}})
    break_lab(flow.lab, "side-deployments-left-down")  # 0 replicas, the counts recorded in the annotation
    assert set(flow.replicas().values()) == {0}

    code, out, _ = flow.backup("--yes")

    assert code == 0, out
    assert flow.replicas() == {"dv-api": 2, "dv-caching": 1, "dv-unified-console": 1}


def test_the_gate_stops_a_broken_backup_before_anything_changes(flow):
    break_lab(flow.lab, "bar-permissions")
    before = flow.snapshot()

    code, out, _ = flow.backup("--yes")

    assert code == 1
    assert "Preflight failed: nothing was changed" in out
    assert "dvdoctor fix --issue bar-permissions" in out
    assert "--ignore-check bar-permissions" in out
    assert flow.snapshot() == before
    assert "dv-backup-job" not in flow.object_names("jobs")
    assert flow.audit_entries() == []


def test_an_unknown_check_id_is_one_line_and_exit_2(flow):
    before = flow.snapshot()

    code, out, err = flow.backup("--yes", "--ignore-check", "no-such-check")

    assert code == 2
    assert err.count("\n") == 1 and "unknown check id 'no-such-check'" in err
    assert flow.snapshot() == before


def test_fix_repairs_the_gate_first_and_the_backup_succeeds(flow):
    break_lab(flow.lab, "bar-permissions")
    (first,) = flow.timestamps()

    code, out, _ = flow.backup("--yes", "--fix")

    assert code == 0, out
    assert "bar-permissions: ✓ verified" in out
    (new,) = set(flow.timestamps()) - {first}
    assert flow.current() == new
    assert [e["fix"] for e in flow.audit_entries()][0] == "bar-permissions"


def test_the_gates_fix_logs_its_changes_to_the_audit_file_given(flow):
    """--audit-file holds the whole run: the gate's repair as well as the backup's own changes."""
    break_lab(flow.lab, "bar-permissions")
    given = flow.base / "given-audit.jsonl"

    code, out, _ = flow.backup("--yes", "--fix", "--audit-file", str(given))

    assert code == 0, out
    entries = [json.loads(line) for line in given.read_text().splitlines()]
    assert entries[0]["fix"] == "bar-permissions"
    assert "backup" in [e["fix"] for e in entries]
    assert flow.audit_entries() == []


def test_a_failed_job_is_reported_at_once_with_its_signature(flow):
    break_lab(flow.lab, "bar-permissions")

    started = time.monotonic()
    code, out, _ = flow.backup("--yes", "--ignore-check", "bar-permissions", "--timeout", "600")
    took = time.monotonic() - started

    assert code == 1
    assert took < 20, f"took {took:.0f} s: the failure was not seen at once"
    assert "1 warning (bar-permissions)" in out
    assert "Operation failed: [Errno 13] Permission denied: '/mnt/PV/bar/" in out
    assert "dvdoctor fix --issue bar-permissions" in out
    assert "dv-backup-job" not in flow.object_names("jobs")
    assert not [p for p in flow.object_names("pods") if p.startswith("dv-backup-job")]
    assert flow.markers == []
    assert flow.replicas() == {"dv-api": 1, "dv-caching": 1, "dv-unified-console": 1}
    assert list(flow.logs.glob("dv-backup-job-*.log")), "the failed job's log is saved too"


def test_a_folder_dated_minutes_ahead_is_not_taken_for_the_new_backup(flow):
    """Break-it review (low): a good backup folder named a few minutes ahead (a pod's clock, within the
    skew allowed) was named after the run's start too, so the backup took it for the new one: the
    postflight said the restore point "does not point at the new backup" and the run failed, and the
    manifest would have gone into that folder. The new backup is the folder the job wrote."""
    import shutil
    from datetime import datetime, timedelta, timezone

    (first,) = flow.timestamps()
    ahead = (datetime.now(timezone.utc) + timedelta(minutes=5)).strftime("%Y-%m-%d-%H-%M-%S")
    shutil.copytree(flow.bar / first, flow.bar / ahead, symlinks=True)  # a good backup, by a fast clock
    manifest = flow.bar / ahead / "dvdoctor-manifest.json"
    was = manifest.read_bytes() if manifest.exists() else None

    code, out, _ = flow.backup("--yes")

    assert code == 0, out
    (new,) = set(flow.timestamps()) - {first, ahead}
    assert flow.current() == new and f"backup {new} complete" in out, out
    assert (flow.bar / new / "dvdoctor-manifest.json").exists()
    assert (manifest.read_bytes() if manifest.exists() else None) == was  # the other folder's, untouched


def test_the_wait_for_dvs_pods_starts_no_inspection_pod(flow, monkeypatch):
    """After the job, DV's pods are awaited by reading the objects: each look of that wait once started
    (and waited for) an inspection pod on the backup volume, which it never reads."""
    from dvdoctor.cli import flow_cmd

    looks: list[bool] = []
    real_gather = flow_cmd.gather

    def gather(opts, *, no_pod, **kwargs):
        looks.append(no_pod)
        return real_gather(opts, no_pod=no_pod, **kwargs)

    monkeypatch.setattr(flow_cmd, "gather", gather)
    code, out, _ = flow.backup("--yes")
    assert code == 0, out
    assert "DV's pods are ready" in out
    assert looks[-1] is True  # the last look, the wait: no pod
    assert looks.count(False) == 2  # the gate's, and the one that reads the new backup back
