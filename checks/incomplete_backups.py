"""Backup folders on dv-bar-pvc hold no restorable backup.

Symptom: `ls -ltr /mnt/PV/bar/*` shows timestamp folders without the combined `dv_backup.tar.gz`
(compare the runbook's complete one: `dv_backup_dv_metastore.tar.gz`, `dv_backup_dv_engine.tar.gz`,
`tmp/`, `dv_backup.tar.gz`), or with an empty one, or one that `gzip -t` cannot read (with
`dvdoctor collect --verify`). They take space and are no restore point.
Cause: a backup job that failed or was deleted midway (no space, permissions, files changed
during tar) leaves its folder behind. DV writes the component tarballs first and the combined one
last, so a folder with its combined tarball is complete even when its components were pruned (the
combined tarball contains them); a folder an active dv-backup-job is writing is not reported.
Repair: `dvdoctor fix --issue incomplete-backups` deletes such folders, never the restore point's
and never the newest complete backup.
"""

from datetime import datetime, timezone

from dvdoctor.backups import backups, human_bytes
from dvdoctor.facts import SECTION_BAR, Facts
from dvdoctor.registry import WARNING, Problem, check


@check(
    "incomplete-backups",
    "Every backup folder holds a complete backup",
    severity=WARNING,
    fix="incomplete-backups",
    needs=[SECTION_BAR],
    tags=["backup-volume"],
)
def run(facts: Facts):
    bar, names = facts.bar, facts.names
    items = backups(bar, names)
    writing = items[-1].timestamp if items and names.backup_job in facts.active_bar_jobs() else None
    for b in items:
        if b.complete(names) or b.timestamp == writing:
            continue
        files = ", ".join(f"{n} {human_bytes(s)} ({s} B)" for n, s in sorted(b.files.items())) or "no files"
        evidence = [f"{names.bar_mount}/{b.timestamp}: {files}"]
        if b.verified is False:
            evidence.append(f"{b.timestamp}/{names.combined_tarball} does not read back: {b.verify_message or 'unreadable'}")
            what = "its combined tarball is unreadable"
        else:
            what = f"missing {', '.join(b.missing(names))}"
        modified = datetime.fromtimestamp(b.mtime, timezone.utc) if b.mtime else None
        if modified:
            evidence.append(f"last written {(facts.now - modified).total_seconds() / 3600:.1f} h ago")
        yield Problem(f"backup {b.timestamp} is incomplete: {what}", tuple(evidence),
                      f"persistentvolumeclaim/{names.bar_pvc}")
