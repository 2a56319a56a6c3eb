"""Something on the backup volume is not a backup: an odd name, an impossible or a future date.

Symptom: `ls -ltr /mnt/PV/bar` shows, beside DV's timestamp folders and the `dv_backup.tar.gz`
link, a folder or file whose name is no UTC timestamp (a newline, a tab, spaces, quotes, `$(...)`
or a leading `-` in it), a timestamp of a date that does not exist (month 13), a timestamp in the
future, or a file or link where a backup folder should be.
Cause: a copy or a rename by hand, a script that went wrong, a node whose clock was ahead. DV
names each backup folder by its UTC start time and nothing else; such an entry is never counted as
a backup: a future-dated folder is never "the newest", and nothing dvdoctor does removes,
restores or points at it. A clock skew of up to 10 minutes is allowed.
Repair: manual, since dvdoctor never guesses what such an entry holds: look at it from a pod that
mounts the volume (as the runbook's dv-test-job does) and rename it to its real timestamp, or
remove it.
"""

from dvdoctor.facts.backups import shown
from dvdoctor.facts.model import SECTION_BAR, Facts
from dvdoctor.verdicts.registry import WARNING, Problem, check
from dvdoctor.facts.trust import survey


@check(
    "Everything on the backup volume is a backup folder DV could have made",
    severity=WARNING,
    needs=[SECTION_BAR],
    tags=["backup-volume"],
)
def run(facts: Facts):
    names = facts.names
    for odd in survey(facts).odd:
        yield Problem(f"{names.bar_mount}/{shown(odd.name)} is no backup: {odd.why}",
                      (f"{odd.kind} {names.bar_mount}/{shown(odd.name)} (name shown with escapes: "
                       f"{len(odd.name)} characters)",),
                      f"persistentvolumeclaim/{names.bar_pvc}")
