"""Copy the newest good backup into the restic repository (what `dvdoctor copy` does).

Changes: adds one snapshot to the repository of `copies:` in dvdoctor.yaml; nothing in DV's
namespace changes but a short-lived copy Job (a cluster) that dvdoctor deletes when it ends. The
backup volume is only read. When the newest good backup already has a copy and only its age is
the problem, there is nothing a copy can do: a new backup must be taken first.
"""

from dataclasses import dataclass
from typing import Sequence

from dvdoctor.facts.model import Facts
from dvdoctor.repair.fixer import FixOptions, fix
from dvdoctor.repair.plan import ActionFailed, Plan, Runner
from dvdoctor.repair.audit import Change
from dvdoctor.verdicts.registry import Problem


@dataclass(frozen=True)
class CopyBackup:
    """Run the copy program for one backup; its records say what the repository gained."""

    timestamp: str

    def describe(self) -> str:
        return f"copy backup {self.timestamp} into the restic repository (copies: in dvdoctor.yaml)"

    def apply(self, run: Runner) -> list[Change]:
        """The change as `dvdoctor copy` audits it: the backup, its snapshot, the repository redacted."""
        from dvdoctor.copies.where import runner
        from dvdoctor.repair.copying import CopyProgramRun, repository_shown

        copies = run.facts.settings.copies
        step = CopyProgramRun(runner(run.cluster, run.facts, copies), ("copy", self.timestamp), self.describe(),
                              repository_shown(copies))
        try:
            changes = step.apply(run)
        except ActionFailed as exc:
            raise ActionFailed(f"copy of {self.timestamp} failed: {exc}") from exc
        outcome = step.outcome
        if outcome is None or outcome.rc != 0 or not changes:
            why = [str(r.get("why") or r.get("error")) for r in (outcome.records if outcome else [])
                   if "failed" in r or "error" in r]
            raise ActionFailed(f"copy of {self.timestamp} failed: {'; '.join(why) or (outcome.reason if outcome else '')}")
        return changes


@fix
def plan(facts: Facts, problems: Sequence[Problem], options: FixOptions) -> Plan:
    out = Plan()
    for problem in problems:
        # a good backup with no copy yet is copied; a copy that is only old needs a new backup first
        if "backup" in problem.data:
            out.actions.append(CopyBackup(problem.data["backup"]))
    return out
