"""There is no complete backup, or the newest one is older than the allowed age.

Symptom: `ls -ltr /mnt/PV/bar` shows no timestamp folder with a combined `dv_backup.tar.gz`, or
only old ones; a restore now would lose everything since then, or be impossible.
Cause: backups were never taken, a schedule around dvcli.sh stopped (the runbook suggests wrapping
it in a scheduled job), or recent backups failed. Age is read from the folder's name, the UTC time
the backup started; the limit is thresholds.max_backup_age_hours (7 days by default).
Repair: manual, since a backup takes DV offline for its duration (38 minutes in the runbook's
listing): at a quiet time, run `dvdoctor backup` (it scales the side deployments down and back
up itself), then check again.
"""

from dvdoctor.backups import backups, human_bytes, newest_complete
from dvdoctor.facts import SECTION_BAR, Facts
from dvdoctor.registry import WARNING, Problem, check


@check(
    "no-recent-backup",
    "A complete backup exists and is recent",
    severity=WARNING,
    needs=[SECTION_BAR],
    tags=["backup-volume", "schedule"],
)
def run(facts: Facts):
    bar, names = facts.bar, facts.names
    items = backups(bar, names)
    newest = newest_complete(items, names)
    obj = f"persistentvolumeclaim/{names.bar_pvc}"
    limit = facts.thresholds.max_backup_age_hours
    if newest is None:
        others = ", ".join(b.timestamp for b in items) or "none"
        yield Problem(f"there is no complete backup on {names.bar_pvc}",
                      (f"backup folders: {others}; none holds a restorable {names.combined_tarball}",), obj)
        return
    hours = (facts.now - newest.time).total_seconds() / 3600
    if hours <= limit:
        return
    yield Problem(
        f"the newest complete backup, {newest.timestamp}, is {hours / 24:.1f} days old",
        (f"{newest.timestamp}/{names.combined_tarball}: {human_bytes(newest.combined_size(names))}, "
         f"started {hours:.0f} h before {facts.now.isoformat()}",
         f"limit: {limit:g} h ({limit / 24:g} days)"),
        obj,
    )
