"""The dv_backup.tar.gz symlink, DV's restore point, is missing, dangling or aimed at the wrong thing.

Symptom: a restore fails, or restores something other than intended. In the runbook's listing the
link is `dv_backup.tar.gz -> /mnt/PV/bar/2021-01-22-19-27-31/dv_backup.tar.gz`: DV's restore job
reads whatever it points at.
Cause: every backup moves the link to its own combined tarball at the end. A backup that died
before that, a folder deleted by hand, or a hand edit (the runbook's way to restore an older
backup is to repoint the link) can leave it missing, pointing at a file that is gone, at a backup
whose combined tarball is incomplete, or at something that is not a backup folder's tarball.
Repair: point the link at the newest complete backup, or at a chosen one:
`dvdoctor fix --issue broken-backup-symlink [--to TIMESTAMP]`. The new link is renamed over the
old one, so a restore point exists at every moment.
"""

from dvdoctor.core.units import human_bytes
from dvdoctor.facts.backups import shown as printable
from dvdoctor.facts.model import SECTION_BAR, Facts
from dvdoctor.verdicts.registry import RESTORE, Problem, check
from dvdoctor.facts.trust import DAMAGED, survey
from dvdoctor.core.words import plural


@check(
    "The dv_backup.tar.gz restore point names a good backup",
    applies=[RESTORE],
    needs=[SECTION_BAR],
    tags=["runbook", "backup-volume", "restore"],
)
def run(facts: Facts):
    bar, names = facts.bar, facts.names
    if not bar.get("exists", True):
        return
    s = survey(facts)
    items = s.backups
    newest = s.newest_good()
    at = f"{names.bar_mount}/{names.symlink}"
    obj = f"persistentvolumeclaim/{names.bar_pvc}"
    hint = f"newest good backup: {newest.timestamp}" if newest else "no backup is proven good"
    link = bar.get("link")
    # for the repair: where the link points now, and the backup it moves to unless told another
    found = {"target": link["target"] if link else None, "newest_good": newest.timestamp if newest else None}
    if link is None:
        if not items:
            return  # nothing to point at yet; no-recent-backup says so
        plain = next((e for e in bar.get("entries", []) if e["path"] == names.symlink), None)
        what = f"{at} is a {plain['type']}, not a symlink" if plain else f"{at}: no such link"
        yield Problem(f"there is no restore-point symlink {at}, though {plural(len(items), 'backup folder')} {'exists' if len(items) == 1 else 'exist'}",
                      (what, f"backup folders: {', '.join(b.timestamp for b in items)}", hint), obj, data=found)
        return
    shown = f"{at} -> {printable(link['target'])}"
    if not link["target_exists"]:
        yield Problem(f"the restore-point symlink is dangling: {printable(link['target'])} does not exist",
                      (shown, "target: no such file", hint), obj, data=found)
        return
    ts = s.link_ts
    if ts is None:
        yield Problem(f"the restore-point symlink does not point at a backup folder's {names.combined_tarball}",
                      (shown, f"expected a target like {names.bar_mount}/YYYY-MM-DD-HH-MM-SS/{names.combined_tarball}", hint),
                      obj, data=found)
        return
    chosen = s.get(ts)
    if chosen is None:
        odd = next((o for o in s.odd if o.name == ts), None)
        if odd is not None:
            yield Problem(f"the restore point {ts} is no backup: {odd.why}", (shown, hint), obj, data=found)
        return
    if s.state(ts) == DAMAGED:
        files = ", ".join(f"{n} {human_bytes(size)} ({size} B)" for n, size in sorted(chosen.files.items())) or "no files"
        yield Problem(f"the restore point {ts} is a damaged backup: {s.verdicts[ts].why}",
                      (shown, f"{ts}: {files}", hint), obj, data=found)
