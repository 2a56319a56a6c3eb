"""Point the dv_backup.tar.gz restore-point symlink at the newest good backup, or at --to TIMESTAMP.

Only ever at a good backup: one whose combined tarball and the component tarballs inside it were
proven to read back (dvdoctor/facts/trust.py), never at an unverified or damaged one. The new link is
made beside the old one and renamed over it, so there is never a moment without a restore point.
Changes: the symlink on dv-bar-pvc; no backup file is touched.
"""

from typing import Sequence

from dvdoctor.facts.backups import shown
from dvdoctor.core.errors import UsageError
from dvdoctor.facts.model import SECTION_BAR, Facts
from dvdoctor.repair.fixer import FixOptions, fix
from dvdoctor.repair.plan import BarScript, Plan
from dvdoctor.verdicts.registry import Problem
from dvdoctor.facts.trust import GOOD, survey


@fix
def plan(facts: Facts, problems: Sequence[Problem], options: FixOptions) -> Plan:
    out = Plan()
    bar = facts.require(SECTION_BAR)
    names = facts.names
    s = survey(facts)
    if options.to:
        chosen = s.get(options.to)
        if chosen is None or s.state(options.to) != GOOD:
            good = ", ".join(b.timestamp for b in s.good()) or "none"
            what = f"it is {s.state(options.to)}: {s.verdicts[options.to].why}" if chosen else "no backup of that name"
            raise UsageError(f"--to {options.to}: {what}; the restore point only moves to a good backup "
                             f"(good backups: {good})")
    else:
        chosen = s.newest_good()
        if chosen is None:
            out.manual.append("No backup proven good exists to point at: take one with `dvdoctor backup`, or prove "
                              "an unverified one with `dvdoctor list --verify`.")
            return out
    link = bar.get("link")
    if link and link["target_exists"] and s.link_ts == chosen.timestamp:
        return out
    out.actions.append(BarScript(("relink", chosen.timestamp),
                                 f"point {names.bar_mount}/{names.symlink} at {chosen.timestamp}/{names.combined_tarball}"
                                 f" (now: {shown(link['target']) if link else 'no link'})"))
    return out
