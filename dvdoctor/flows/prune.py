"""`prune`: which backups go, by the one deletion rule, as a plan; and the proof afterwards that
exactly those went and the kept ones are untouched.

The CLI gathers the facts (every backup read back in this run), shows the plan and asks; what to
remove, applying it through the repair runner's executor (audited), and how to tell it worked are
decided here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..cluster.port import Cluster
from ..core.units import human_bytes
from ..core.words import plural
from ..facts.model import SECTION_BAR, Facts
from ..facts.trust import GOOD, Survey, survey
from ..repair.plan import BarScript, Plan, execute
from ..repair.retention import Removal, protected, prunable, refuse_unless_good_remains
from ..repair.runner import open_runner


def prune_plan(facts: Facts, keep: int) -> tuple[list[Removal], list[str], Plan]:
    """What to remove (refused, as a UsageError-like error, when no good backup would remain), what is
    kept, and the plan that removes it (empty when nothing goes)."""
    facts.require(SECTION_BAR)
    names = facts.names
    s = survey(facts)
    removals = prunable(s, keep)
    refuse_unless_good_remains(s, removals, names)
    kept = sorted(protected(s) | {b.timestamp for b in s.backups} - {r.path for r in removals})
    plan = Plan("prune")
    if removals:
        total = sum(r.bytes for r in removals)
        plan.actions.append(BarScript(("remove", *[r.path for r in removals]),
                                      f"delete {plural(len(removals), 'backup folder')}, freeing {human_bytes(total)}"))
        plan.notes += [f"{r.path}: {human_bytes(r.bytes)} ({r.why}" + (f": {s.verdicts[r.path].why})" if r.why in ("damaged", "unverified") else ")")
                       for r in removals]
        plan.notes.append(f"kept: {', '.join(f'{t} ({_kept_as(s, t)})' for t in kept)}")
    return removals, kept, plan


def _kept_as(s: Survey, ts: str) -> str:
    """A kept folder's state; one that is no backup (a future date, a folder DV is writing) is kept
    for what it is: the restore point's target or the folder being written."""
    return s.state(ts) or ("not a backup, but the restore point" if ts == s.link_ts else
                           "being written" if ts in s.writing else "not a backup")


def verify_prune(before: Facts, after: Facts, removals: list[Removal], kept: list[str]) -> tuple[list[str], bool]:
    """The folders that are gone, and whether the kept ones are untouched: each still there, its combined
    tarball at the same size:mtime, and a good one among them."""
    s, later = survey(before), survey(after)
    left = {b.timestamp for b in later.backups}
    gone = [r.path for r in removals if r.path not in left]
    kept_ok = all((a := later.get(t)) is not None and a.stamp == s.get(t).stamp for t in kept) \
        and any(s.state(t) == GOOD for t in kept)
    return gone, kept_ok


@dataclass(frozen=True)
class Pruned:
    """What a prune did, as read back afterwards: the folders gone, and whether the kept ones are untouched."""

    removals: list[Removal]
    gone: list[str]
    kept_ok: bool

    @property
    def verified(self) -> bool:
        return len(self.gone) == len(self.removals) and self.kept_ok


def run_prune(cluster: Cluster, facts: Facts, plan: Plan, removals: list[Removal], kept: list[str],
              audit_file: Path | None, progress: Callable[[str], None],
              collect_again: Callable[[], Facts]) -> Pruned:
    """Apply the consented plan through the executor (each removal audited), then prove it on facts
    collected again. An action that fails raises ActionFailed, with nothing after it applied."""
    execute(plan, open_runner(cluster, facts, audit_file, progress))
    gone, kept_ok = verify_prune(facts, collect_again(), removals, kept)
    return Pruned(removals, gone, kept_ok)
