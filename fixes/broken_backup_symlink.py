"""Point the dv_backup.tar.gz restore-point symlink at the newest complete backup, or at --to TIMESTAMP.

The new link is made beside the old one and renamed over it, so there is never a moment without a
restore point. Changes: the symlink on dv-bar-pvc; no backup file is touched.
"""

from dvdoctor.backups import backups, link_timestamp, newest_complete
from dvdoctor.errors import UsageError
from dvdoctor.facts import SECTION_BAR, Facts
from dvdoctor.fixer import FixOptions, fix
from dvdoctor.plan import BarScript, Plan


@fix("broken-backup-symlink")
def plan(facts: Facts, options: FixOptions) -> Plan:
    out = Plan("broken-backup-symlink")
    bar = facts.require(SECTION_BAR)
    names = facts.names
    items = backups(bar, names)
    if options.to:
        chosen = next((b for b in items if b.timestamp == options.to), None)
        if chosen is None or not chosen.complete(names):
            complete = ", ".join(b.timestamp for b in items if b.complete(names)) or "none"
            raise UsageError(f"--to {options.to}: no complete backup of that name; complete backups: {complete}")
    else:
        chosen = newest_complete(items, names)
        if chosen is None:
            out.manual.append("No complete backup exists to point at: take one with `dvdoctor backup`.")
            return out
    current = link_timestamp(bar, names)
    link = bar.get("link")
    if link and link["target_exists"] and current == chosen.timestamp:
        return out
    out.actions.append(BarScript(("relink", chosen.timestamp),
                                 f"point {names.bar_mount}/{names.symlink} at {chosen.timestamp}/{names.combined_tarball}"
                                 f" (now: {link['target'] if link else 'no link'})"))
    return out
