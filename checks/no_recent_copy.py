"""The newest good backup has no copy off the backup volume, or the newest copy is too old.

Symptom: `dvdoctor list --copies` ends before the newest backup `dvdoctor list` shows, or its
newest copy is days old. Nothing fails until the day dv-bar-pvc's volume is lost: then every
backup on it is gone with it (the runbook's own warning), and only copies remain.
Cause: copies are configured (`copies:` in dvdoctor.yaml) but `dvdoctor copy` was not run after
the last backups, or its scheduled run failed (a wrong password, a repository out of reach).
The limit is copies.max_age_hours (36 hours by default: a daily copy may be late by half a day).
A warning, as no-recent-backup is: when to copy is the site's decision; only `dvdoctor check`
runs it, so a missing copy never holds up a backup (which makes a new backup to copy).
Repair: run `dvdoctor copy`, which copies the restore point's backup (with `--all-new`, every
good backup not copied yet); it reads the backup volume only, and DV stays up.
"""

from dvdoctor.facts.backups import link_timestamp
from dvdoctor.core.units import is_timestamp, timestamp_time
from dvdoctor.facts.model import SECTION_BAR, SECTION_COPIES, Facts
from dvdoctor.verdicts.registry import NOW, WARNING, Problem, Skip, check
from dvdoctor.facts.trust import survey


@check(
    "The newest good backup is copied off the backup volume, recently",
    severity=WARNING,
    applies=[NOW],
    needs=[SECTION_BAR, SECTION_COPIES],
    tags=["copies", "schedule"],
)
def run(facts: Facts):
    names = facts.names
    if facts.section(SECTION_COPIES).get("error"):
        raise Skip(f"the copies could not be listed: {facts.section(SECTION_COPIES)['error']} (see copies-unusable)")
    copies = [s for s in facts.section(SECTION_COPIES)["snapshots"] if s.get("complete")]
    copied = {s.get("backup") for s in copies if is_timestamp(str(s.get("backup")))}  # a tag set by hand may be anything
    good = survey(facts).good()
    obj = f"persistentvolumeclaim/{names.bar_pvc}"
    if good and good[-1].timestamp not in copied:
        newest = good[-1]
        yield Problem(
            f"the newest good backup, {newest.timestamp}, has no copy off {names.bar_pvc}",
            (f"backups on {names.bar_pvc}: {', '.join(b.timestamp for b in good)}"
             + (f" (restore point: {link_timestamp(facts.bar, names)})" if link_timestamp(facts.bar, names) else ""),
             f"copies in the repository: {', '.join(sorted(c for c in copied if c)) or 'none'}"),
            obj,
            data={"backup": newest.timestamp},  # what a copy now would copy
        )
        return
    limit = facts.settings.copies.max_age_hours if facts.settings.copies else 36.0
    stamps = sorted(c for c in copied if c)
    if not stamps:
        return
    hours = (facts.now - timestamp_time(stamps[-1])).total_seconds() / 3600
    if hours > limit:
        yield Problem(
            f"the newest copy, of backup {stamps[-1]}, is {hours:.0f} hours old",
            (f"limit: copies.max_age_hours {limit:g}", "a newer backup must be taken first: dvdoctor backup, "
                                                        "then dvdoctor copy"),
            obj,
        )
