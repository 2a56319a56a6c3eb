"""Delete backup folders that hold a damaged backup (one that would not restore).

Never the folder an active backup job is writing, never the symlink's target, never the newest
good backup, and nothing at all when no backup proven good would remain (the shared retention
rule). Folders a restore from a copy left half-written (`.dvdoctor-rehydrate-TS`) are removed
whatever the backups hold, since they are no backup; never one a running `restore --from-copy`
still writes. Changes: removes those folders from dv-bar-pvc.
"""

from typing import Sequence

from dvdoctor.core.units import human_bytes
from dvdoctor.facts.model import SECTION_BAR, Facts
from dvdoctor.repair.fixer import FixOptions, fix
from dvdoctor.repair.plan import BarScript, Plan
from dvdoctor.verdicts.registry import Problem
from dvdoctor.repair.retention import WHY_DAMAGED, no_good_left, prunable
from dvdoctor.facts.trust import survey
from dvdoctor.core.words import plural


@fix
def plan(facts: Facts, problems: Sequence[Problem], options: FixOptions) -> Plan:
    out = Plan()
    facts.require(SECTION_BAR)
    s = survey(facts)
    # the half-written folders the check found (none a restore from a copy still writes)
    partial = [problem.data["partial"] for problem in problems if "partial" in problem.data]
    if partial:
        # no backup, whatever the retention rule says of the backups: removed first, on their own
        out.actions.append(BarScript(("remove", *[p.name for p in partial]),
                                     f"delete {plural(len(partial), 'half-written folder')} of a restore from a copy, "
                                     f"freeing {human_bytes(sum(p.bytes for p in partial))}"))
        out.notes += [f"{p.name}: {human_bytes(p.bytes)}, backup {p.timestamp} half-written back from a copy"
                      for p in partial]
    doomed = [r for r in prunable(s, keep=len(s.backups)) if r.why == WHY_DAMAGED]
    refused = no_good_left(s, doomed, facts.names)
    if refused:
        out.manual.append(f"{refused}. To free the space anyway, remove the damaged folders by hand "
                          "once you are sure nothing in them is needed.")
        return out
    if doomed:
        out.actions.append(BarScript(("remove", *[r.path for r in doomed]),
                                     f"delete {plural(len(doomed), 'damaged backup folder')}, freeing {human_bytes(sum(r.bytes for r in doomed))}"))
        out.notes += [f"{r.path}: {human_bytes(r.bytes)}, {s.verdicts[r.path].why}" for r in doomed]
    return out
