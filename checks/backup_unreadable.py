"""A backup on dv-bar-pvc cannot be read by the BAR job's uid.

Symptom: `dvdoctor list` shows a backup as unverified, `not readable by uid 1000320999`;
`ls -l /mnt/PV/bar/2021-01-22-19-27-31` shows its `dv_backup.tar.gz` owned by root with mode 600:
the runbook's `[Errno 13] Permission denied`, on a backup's file instead of the volume's folder.
DV's restore job reads it as that same uid: a restore from it would fail.
Cause: the file was copied or restored onto the volume as root (a copy by hand, a storage
migration that did not keep owners), or its mode was narrowed. It is a permission problem, not
damage: its bytes are unknown, so dvdoctor neither calls it damaged nor trusts a recorded read-back
for it, and never deletes it for it (prune and the repairs keep it).
Repair: manual: from a short-lived pod that mounts dv-bar-pvc as root (like the runbook's
dv-test-job), give the BAR job's uid read access to the file, e.g.
`chown 1000320999 /mnt/PV/bar/2021-01-22-19-27-31/dv_backup.tar.gz` (or `chmod g+r` for a group the
uid is in); then `dvdoctor list --verify` reads it back.
"""

from dvdoctor.facts.model import SECTION_BAR, Facts
from dvdoctor.verdicts.registry import NOW, WARNING, Problem, check
from dvdoctor.facts.trust import survey


@check(
    "The BAR job's uid can read every backup",
    severity=WARNING,
    applies=[NOW],
    needs=[SECTION_BAR],
    tags=["backup-volume", "runbook"],
)
def run(facts: Facts):
    names = facts.names
    s = survey(facts)
    entries = {e["path"]: e for e in facts.bar.get("entries", [])}
    for b in s.backups:
        verdict = s.verdicts[b.timestamp]
        if not verdict.unreadable:
            continue
        path = f"{b.timestamp}/{names.combined_tarball}"
        e = entries.get(path, {})
        yield Problem(
            f"backup {b.timestamp} cannot be read by uid {facts.bar.get('uid')}: {verdict.why}",
            (f"{names.bar_mount}/{path}: mode {e.get('mode', '?')}, owner uid {e.get('uid', '?')}; "
             f"the inspection ran as uid {facts.bar.get('uid')} (groups "
             f"{' '.join(map(str, facts.bar.get('gids', [])))}), as DV's BAR jobs do",),
            f"persistentvolumeclaim/{names.bar_pvc}",
        )
