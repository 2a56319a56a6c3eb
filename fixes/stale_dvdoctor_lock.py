"""Delete dvdoctor's expired lock (Lease `dvdoctor-lock`) so the next run can start.

Changes: deletes the Lease, only when its check reported it expired or its holder gone, and only
while the Lease still names that holder; a lock a live run holds is never in the plan. (`fix`
takes the lock itself before it changes anything, which already takes an expired lock over; the
Lease is then deleted when the fix ends.)
"""

from dataclasses import dataclass
from typing import Sequence

from dvdoctor.facts.model import Facts
from dvdoctor.repair.fixer import FixOptions, fix
from dvdoctor.cluster.lock import LEASE_NAME, Holder, identity
from dvdoctor.repair.plan import ActionFailed, Plan, Runner
from dvdoctor.repair.audit import Change
from dvdoctor.verdicts.registry import Problem


@dataclass(frozen=True)
class RemoveStaleLock:
    """Delete the Lease if `holder` still has it; if this run took it over, its release deletes it."""

    holder: str
    summary: str

    def describe(self) -> str:
        return self.summary

    def apply(self, run: Runner) -> list[Change]:
        lease = run.cluster.get("leases", LEASE_NAME)
        now = Holder.of(lease).identity if lease else None
        what = f"lease/{LEASE_NAME}"
        if now is None:
            return [Change(what, f"held by {self.holder}", "already gone")]
        if now == identity():
            return [Change(what, f"held by {self.holder}", "taken over by this run, deleted when it ends")]
        if now != self.holder:
            raise ActionFailed(f"lease {LEASE_NAME} is now held by {now}, a new run: left alone")
        run.cluster.delete("leases", LEASE_NAME)
        return [Change(what, f"held by {self.holder}", "deleted")]


@fix
def plan(facts: Facts, problems: Sequence[Problem], options: FixOptions) -> Plan:
    out = Plan()
    for problem in problems[:1]:  # one lease: the holder the check found gone
        out.actions.append(RemoveStaleLock(problem.data["holder"], f"delete lease {LEASE_NAME} ({problem.message})"))
    return out
