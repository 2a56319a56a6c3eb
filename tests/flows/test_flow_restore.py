"""`dvdoctor restore` end to end in the lab: DV's data back byte for byte, from the current or an older backup."""

from __future__ import annotations

import json

ENGINE = "1.5.0/engine"


def damage(flow) -> None:
    """Change a file, delete one, add one: what a restore must undo."""
    changed = next(p for p in sorted((flow.data / ENGINE).rglob("*")) if p.is_file())
    changed.write_bytes(b"damaged after the backup")
    (flow.data / "unified_console_data" / "console" / "logs" / "console.log").unlink()
    (flow.data / "uc_dsserver_shared" / "added-after-backup.txt").write_text("must not survive a restore")


def restore_env(flow) -> dict[str, str]:
    job = json.loads((flow.lab / "objects" / "jobs" / "dv-restore-job.json").read_text())
    return {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_restore_brings_back_every_file_byte_for_byte(flow):
    backed_up = flow.data_digest()
    damage(flow)
    assert flow.data_digest() != backed_up

    code, out, _ = flow.restore("--yes", "--accept-unverified-origin")  # the lab's backup is dvcli.sh's: no manifest

    assert code == 0, out
    (ts,) = flow.timestamps()
    assert f"restored {ts}" in out and "DV's pods are ready" in out
    assert flow.data_digest() == backed_up  # same set of files (the added one gone), same bytes
    assert flow.markers == []  # the runbook's manual post-step: .bar_restored.txt removed
    assert "remove /mnt/marker_files/.bar_restored.txt" in out
    assert list(flow.logs.glob("dv-restore-job-*.log"))
    assert restore_env(flow)["DV_BACKUP_TARBALL"] == f"{ts}/dv_backup.tar.gz"
    assert [e["fix"] for e in flow.audit_entries()][0] == "restore"


def test_restore_from_an_older_backup_restores_that_one(flow):
    (older,) = flow.timestamps()
    at_older = flow.data_digest()
    (flow.data / ENGINE / "written-between-backups.dat").write_bytes(b"only in the newer backup")
    assert flow.backup("--yes")[0] == 0
    (newer,) = set(flow.timestamps()) - {older}
    assert flow.current() == newer
    damage(flow)

    code, out, _ = flow.restore("--from", older, "--yes", "--accept-unverified-origin")

    assert code == 0, out
    assert restore_env(flow)["DV_BACKUP_TARBALL"] == f"{older}/dv_backup.tar.gz"
    assert flow.data_digest() == at_older
    assert flow.current() == newer  # the restore point is not moved by restoring an older one


def test_restore_from_a_backup_that_is_not_there_changes_nothing(flow):
    before = flow.snapshot()

    code, _, err = flow.restore("--from", "2001-01-01-00-00-00", "--yes")

    assert code == 2
    assert "no backup 2001-01-01-00-00-00" in err
    assert flow.snapshot() == before


def test_the_post_restore_steps_are_verified_by_their_check(flow):
    """The runbook's post-steps are a repair the restore makes on its way: verified as `fix` verifies
    one, by its check passing on facts collected after it, and audited under the repair's id."""
    code, out, _ = flow.restore("--yes", "--accept-unverified-origin")

    assert code == 0, out
    assert "restore-marker-left: ✓ verified: check restore-marker-left passes" in out
    assert "restore-marker-left" in [e["fix"] for e in flow.audit_entries()]
    assert flow.markers == []
