"""There is no backup proven good, or the newest good one is older than the allowed age.

Symptom: `ls -ltr /mnt/PV/bar` shows no timestamp folder with a combined `dv_backup.tar.gz`, or
only old ones, or only ones that do not read back; a restore now would lose everything since
then, or be impossible.
Cause: backups were never taken, a schedule around dvcli.sh stopped (the runbook suggests wrapping
it in a scheduled job), or recent backups failed. A backup counts only when proven good (its
combined tarball and the component tarballs inside it read back, now or when dvdoctor took it);
one that was not read back in this run is named with how to prove it. Age is read from the
folder's name, the UTC time the backup started; the limit is thresholds.max_backup_age_hours
(7 days by default).
Repair: manual, since a backup takes DV offline for its duration (38 minutes in the runbook's
listing): at a quiet time, run `dvdoctor backup` (it scales the side deployments down and back
up itself), then check again; `dvdoctor list --verify` reads back every unverified backup.
"""

from dvdoctor.core.units import human_bytes
from dvdoctor.facts.model import SECTION_BAR, Facts
from dvdoctor.verdicts.registry import WARNING, Problem, check
from dvdoctor.facts.trust import UNVERIFIED, survey


@check(
    "A backup proven good exists and is recent",
    severity=WARNING,
    needs=[SECTION_BAR],
    tags=["backup-volume", "schedule"],
)
def run(facts: Facts):
    names = facts.names
    s = survey(facts)
    newest = s.newest_good()
    obj = f"persistentvolumeclaim/{names.bar_pvc}"
    limit = facts.thresholds.max_backup_age_hours
    unverified = s.with_state(UNVERIFIED)
    if newest is None:
        states = ", ".join(f"{b.timestamp} ({s.verdicts[b.timestamp].state})" for b in s.backups) or "none"
        evidence = [f"backup folders: {states}; none is proven to hold a restorable {names.combined_tarball}"]
        if unverified:
            evidence.append(f"not read back yet: {', '.join(b.timestamp for b in unverified)}; "
                            "prove them with: dvdoctor list --verify")
        yield Problem(f"there is no backup proven good on {names.bar_pvc}", tuple(evidence), obj)
        return
    hours = (facts.now - newest.time).total_seconds() / 3600
    if hours <= limit:
        return
    yield Problem(
        f"the newest good backup, {newest.timestamp}, is {hours / 24:.1f} days old",
        (f"{newest.timestamp}/{names.combined_tarball}: {human_bytes(newest.combined_size(names))}, "
         f"started {hours:.0f} h before {facts.now.isoformat()}",
         f"limit: {limit:g} h ({limit / 24:g} days)")
        + ((f"newer but not read back: {', '.join(b.timestamp for b in unverified if b.time > newest.time)}",)
           if any(b.time > newest.time for b in unverified) else ()),
        obj,
    )
