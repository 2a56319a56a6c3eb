"""Point the dv_backup.tar.gz restore-point symlink at the newest good backup, or at --to TIMESTAMP.

Only ever at a good backup: one whose combined tarball and the component tarballs inside it were
proven to read back (dvdoctor/facts/trust.py), never at an unverified or damaged one. The new link is
made beside the old one and renamed over it, so there is never a moment without a restore point.
Changes: the symlink on dv-bar-pvc; no backup file is touched.
"""

from typing import Sequence

from dvdoctor.facts.backups import link_timestamp, shown
from dvdoctor.core.errors import UsageError
from dvdoctor.facts.model import SECTION_BAR, Facts
from dvdoctor.repair.fixer import FixOptions, fix
from dvdoctor.repair.plan import BarScript, Plan
from dvdoctor.verdicts.registry import Problem
from dvdoctor.facts.trust import GOOD, Survey, survey


def good_backup(facts: Facts, ts: str, s: Survey | None = None) -> str:
    """--to, checked: the restore point only moves to a backup this run proved good (`s`: the
    volume's survey, when the caller has it)."""
    s = s or survey(facts)
    chosen = s.get(ts)
    if chosen is None or s.state(ts) != GOOD:
        good = ", ".join(b.timestamp for b in s.good()) or "none"
        what = f"it is {s.state(ts)}: {s.verdicts[ts].why}" if chosen else "no backup of that name"
        raise UsageError(f"--to {ts}: {what}; the restore point only moves to a good backup (good backups: {good})")
    return ts


def judge_to(facts: Facts, ts: str) -> str | None:
    """`fix --to TS`, judged before anything is planned: refused (UsageError) unless TS is a good
    backup; a note when the restore point already names another good one, which --to does not move
    (that is no repair, and restoring is its own command)."""
    s = survey(facts)
    good_backup(facts, ts, s)
    current = link_timestamp(facts.bar, facts.names)
    if current not in (None, ts) and s.state(current) == GOOD:
        return (f"the restore point already names a good backup, {current}; --to moves a broken one. "
                f"To restore DV from {ts}: dvdoctor restore --from {ts}")
    return None


@fix
def plan(facts: Facts, problems: Sequence[Problem], options: FixOptions) -> Plan:
    out = Plan()
    facts.require(SECTION_BAR)
    names = facts.names
    for problem in problems:  # the restore point missing, dangling, or not at a good backup
        # the link is not at a good backup, so wherever it goes (a good one) is a move
        chosen = good_backup(facts, options.to) if options.to else problem.data["newest_good"]
        if chosen is None:
            out.manual.append("No backup proven good exists to point at: take one with `dvdoctor backup`, or prove "
                              "an unverified one with `dvdoctor list --verify`.")
            return out
        target = problem.data["target"]
        out.actions.append(BarScript(("relink", chosen),
                                     f"point {names.bar_mount}/{names.symlink} at {chosen}/{names.combined_tarball}"
                                     f" (now: {shown(target) if target is not None else 'no link'})"))
    return out
