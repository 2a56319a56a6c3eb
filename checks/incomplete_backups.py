"""Backup folders on dv-bar-pvc hold a damaged backup: one that would not restore, or half of one.

Symptom: `ls -ltr /mnt/PV/bar/*` shows timestamp folders without the combined `dv_backup.tar.gz`
(compare the runbook's whole one: `dv_backup_dv_metastore.tar.gz`, `dv_backup_dv_engine.tar.gz`,
`tmp/`, `dv_backup.tar.gz`), or with one that is empty, is not gzip, or does not read back to its
end, or whose inner component tarball (`dv_backup_dv_engine.tar.gz` inside it) is cut short.
They take space and are no restore point: DV's restore job would empty DV's volumes and then fail
in the untar. A hidden `.dvdoctor-rehydrate-TS` folder (`ls -la /mnt/PV/bar`) is a backup that
`dvdoctor restore --from-copy` was writing back from its copy and never finished: no listing shows
it, and it may hold gigabytes.
Cause: a backup job that failed or was deleted midway (no space left, permissions, files changed
during tar) leaves its folder behind. A full volume may cut the engine's tarball while the combined
one around it still gunzips: only reading the inner tarballs back shows it. Which backups are good
is decided by one rule (docs/architecture.md: a backup is trusted only when proven); a folder an
active dv-backup-job is writing is in progress, not damaged. A restore from a copy whose copy
program was killed (kill -9, a lost node, the Job's deadline) leaves its hidden folder; one that a
running `restore --from-copy` still writes (it holds dvdoctor's lock, or its copy Job runs) is in
progress, not reported.
Repair: `dvdoctor fix --issue incomplete-backups` deletes damaged folders, never the restore
point's, never the newest good backup, and not at all when no good backup would remain. It also
removes the half-written `.dvdoctor-rehydrate-TS` folders (the next `restore --from-copy` of that
backup would remove its own as well).
"""

from datetime import datetime, timezone

from dvdoctor.core.units import human_bytes
from dvdoctor.facts.model import SECTION_BAR, Facts
from dvdoctor.facts.partials import partial_folders
from dvdoctor.verdicts.registry import WARNING, Problem, check, module_id
from dvdoctor.facts.trust import DAMAGED, survey

ID = module_id(__name__)


@check(
    "No backup folder holds a damaged backup",
    severity=WARNING,
    needs=[SECTION_BAR],
    tags=["backup-volume"],
)
def run(facts: Facts):
    names = facts.names
    s = survey(facts)
    for b in s.with_state(DAMAGED):
        files = ", ".join(f"{n} {human_bytes(size)} ({size} B)" for n, size in sorted(b.files.items())) or "no files"
        evidence = [f"{names.bar_mount}/{b.timestamp}: {files}"]
        modified = datetime.fromtimestamp(b.mtime, timezone.utc) if b.mtime else None
        if modified:
            evidence.append(f"last written {max(0.0, (facts.now - modified).total_seconds()) / 3600:.1f} h ago")
        yield Problem(f"backup {b.timestamp} is damaged: {s.verdicts[b.timestamp].why}", tuple(evidence),
                      f"persistentvolumeclaim/{names.bar_pvc}")
    for p in partial_folders(facts):
        if p.in_progress:
            continue
        if p.link is not None:
            yield Problem(f"{names.bar_mount}/{p.name} is a symbolic link to {p.link or '(nothing)'}, not a folder "
                          f"dvdoctor wrote: a restore --from-copy of backup {p.timestamp} would remove it; "
                          f"dvdoctor fix --issue {ID} removes the link (never what it points at)",
                          (f"link {names.bar_mount}/{p.name} -> {p.link}",),
                          f"persistentvolumeclaim/{names.bar_pvc}", data={"partial": p})
            continue
        evidence = [f"folder {names.bar_mount}/{p.name}: {human_bytes(p.bytes)} ({p.bytes} B) in its files"]
        if p.mtime:
            written = datetime.fromtimestamp(p.mtime, timezone.utc)
            evidence.append(f"last written {max(0.0, (facts.now - written).total_seconds()) / 3600:.1f} h ago")
        yield Problem(f"{names.bar_mount}/{p.name} is backup {p.timestamp} half-written back from a copy by a "
                      f"restore --from-copy that stopped; it holds {human_bytes(p.bytes)} and is no backup: "
                      f"dvdoctor fix --issue {ID} removes it", tuple(evidence),
                      f"persistentvolumeclaim/{names.bar_pvc}", data={"partial": p})
