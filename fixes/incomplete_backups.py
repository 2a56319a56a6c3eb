"""Delete backup folders that hold no restorable combined tarball.

Never the folder an active backup job is writing, never the symlink's target, never the newest
complete backup (the shared retention rule). Changes: removes those folders from dv-bar-pvc.
"""

from dvdoctor.backups import backups, human_bytes, link_timestamp
from dvdoctor.facts import SECTION_BAR, Facts
from dvdoctor.fixer import FixOptions, fix
from dvdoctor.plan import BarScript, Plan
from dvdoctor.retention import folder_being_written, protected


@fix("incomplete-backups")
def plan(facts: Facts, options: FixOptions) -> Plan:
    out = Plan("incomplete-backups")
    bar = facts.require(SECTION_BAR)
    names = facts.names
    items = backups(bar, names)
    keep = protected(items, link_timestamp(bar, names), names) | {folder_being_written(facts, items)}
    doomed = [b for b in items if not b.complete(names) and b.timestamp not in keep]
    if doomed:
        out.actions.append(BarScript(("remove", *[b.timestamp for b in doomed]),
                                     f"delete {len(doomed)} incomplete backup folders, freeing {human_bytes(sum(b.size() for b in doomed))}"))
        out.notes += [f"{b.timestamp}: {human_bytes(b.size())}, missing {', '.join(b.missing(names))}" for b in doomed]
    return out
