"""Copies of good backups off dv-bar-pvc: which backups to copy, and the copy program run as an
audited change (copy, prune --copies and restore --from-copy all change the repository or the volume).

The runbook's warning is that deleting the backup volume loses every backup. A copy in a restic
repository (another claim, object storage) survives that, deduplicated and encrypted. Where the
copy program runs is `dvdoctor.copies.where`; what it writes is `dvdoctor.copies.stream`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..cluster.port import Cluster
from ..copies.where import JobOutcome, Run
from ..facts.trust import good_backups
from ..facts.backups import backups, link_timestamp
from ..core.errors import UsageError
from ..core.signals import Interrupted
from ..facts.model import SECTION_COPIES, Facts
from ..repair.copying import CopyProgramRun, repository_shown
from ..repair.plan import ActionFailed, Plan, execute
from ..repair.runner import open_runner
from . import checkpoints


#: restic counts kept copies in a 32-bit field; more than this is a typo, not a policy.
MAX_KEEP = 100_000


class ProgramFailed(Exception):
    """The copy program ended in failure: what it was doing, its errors (one line each), and whether
    they are about the user's settings (`usage`: exit 2) or the repository (exit 1)."""

    def __init__(self, what: str, errors: list[str], usage: bool) -> None:
        super().__init__(f"{what}: {errors[0]}")
        self.what, self.errors, self.usage = what, errors, usage

    @classmethod
    def of(cls, outcome: JobOutcome, what: str) -> "ProgramFailed":
        return cls(what, outcome.errors() or [outcome.reason or f"{what} failed"], outcome.usage)


def init_repository(run: Run) -> None:
    """`copy --init`: restic init of the repository `copies:` names (compressed format)."""
    outcome = run(["init"], False)
    if outcome.rc != 0:
        raise ProgramFailed.of(outcome, "creating the repository")


def listed(facts: Facts, run: Run, *, again: bool = False) -> list[dict]:
    """This instance's copies as the facts listed them, with the same program and arguments: listing
    them again would open the repository once more (in a cluster, one more Job). Listed now when the
    facts could not (no repository yet, an error, the volume not inspected), or when `again` (the
    repository was made since the facts were collected)."""
    known = facts.section(SECTION_COPIES)
    if not again and isinstance(known, dict) and "error" not in known and isinstance(known.get("snapshots"), list):
        return list(known["snapshots"])
    outcome = run(["snapshots"], False)
    if outcome.rc != 0:
        raise ProgramFailed.of(outcome, "listing the copies")
    return [r["snapshot"] for r in outcome.records if "snapshot" in r]


def check_policy(policy: dict[str, int]) -> None:
    """A retention policy for `prune --copies`: at least one count above 0, none beyond MAX_KEEP."""
    if any(n > MAX_KEEP for n in policy.values()):
        raise UsageError(f"prune --copies: keep at most {MAX_KEEP} copies a day, week or month")
    if not any(policy.values()):
        raise UsageError("prune --copies: give at least one of --keep-daily, --keep-weekly, --keep-monthly (N ≥ 1)")


def forget_plan(run: Run, policy: dict[str, int]) -> dict:
    """Which copies `prune --copies` removes and keeps, and why: the copy program's `plan-forget`,
    restic's own dry run of the forget a real run makes (so this is what a real run does)."""
    outcome = run(["plan-forget", *(f"{k}={n}" for k, n in policy.items())], False)
    if outcome.rc != 0:
        raise ProgramFailed.of(outcome, "planning prune --copies")
    plans = [r["plan"] for r in outcome.records if isinstance(r.get("plan"), dict)]
    if not plans:
        raise ProgramFailed("prune --copies", ["the copy program printed no plan"], False)
    return plans[-1]


def forgotten(outcome: JobOutcome, plan: dict) -> tuple[list[str], list[str]]:
    """After a real prune: the copies it removed and those its plan named (sorted snapshot ids). A
    plan that was not what happened is said as a failure: they must be the same."""
    if outcome.rc != 0:
        raise ProgramFailed.of(outcome, "prune --copies")
    removed = sorted(sid for r in outcome.records if "forgot" in r for sid in [*r["forgot"], *r["incomplete"]])
    return removed, sorted(e["snapshot"] for e in plan["remove"])


def choose(facts: Facts, wanted: str | None, all_new: bool, copied: set[str]) -> tuple[list[str], list[str]]:
    """The timestamps to copy, and lines saying why others are left out."""
    good = good_backups(facts)
    stamps = [b.timestamp for b in good]
    notes: list[str] = []
    if wanted:
        every = {b.timestamp for b in backups(facts.bar, facts.names)}
        if wanted not in every:
            raise UsageError(f"--from {wanted}: no such backup on {facts.names.bar_pvc} "
                             f"(dvdoctor list shows them)")
        if wanted not in stamps:
            raise UsageError(f"--from {wanted}: not a good backup (it does not read back whole); only good backups "
                             f"are copied")
        todo = [wanted]
    elif all_new:
        todo = stamps
    else:
        current = link_timestamp(facts.bar, facts.names)
        newest = stamps[-1:] if stamps else []
        todo = [current] if current in stamps else newest
    skipped = [t for t in todo if t in copied]
    notes += [f"{t}: already copied" for t in skipped]
    return [t for t in todo if t not in copied], notes


def _left_when_stopped(facts: Facts, args: tuple[str, ...]) -> str:
    """What a copy program stopped half-way leaves, and what clears it: one line."""
    action = args[0]
    if action == "rehydrate":
        ts = args[2]
        return (f"stopped writing backup {ts} back: what was written is in .dvdoctor-rehydrate-{ts} on "
                f"{facts.names.bar_pvc}, which `dvdoctor check` names and `dvdoctor fix --issue incomplete-backups` "
                "removes; nothing else changed (run the restore again to finish)")
    if action == "copy":
        return (f"stopped copying {', '.join(args[1:])}: a copy not finished stays incomplete in the repository "
                "(never listed as complete); `dvdoctor copy` makes it again")
    return (f"stopped the copy program's {action}: the audit log says what it had begun; run the command "
            "again to finish")


def audited_run(cluster: Cluster, facts: Facts, audit_file: Path | None, flow: str, run: Run,
                args: tuple[str, ...], summary: str, *, write: bool = False,
                known: dict[str, str] | None = None) -> JobOutcome:
    """Run the copy program for a change through the executor, so the audit log records what it will
    change before it starts and what it did after (the repository redacted); returns its outcome for
    the command to render, failed or not."""
    def program(argv: list[str], writes: bool) -> JobOutcome:
        checkpoints.reached(checkpoints.COPY_PROGRAM)
        return run(argv, writes)

    step = CopyProgramRun(program, args, summary, repository_shown(facts.settings.copies), write=write,
                          known=dict(known or {}))
    try:
        execute(Plan(flow, [step]), open_runner(cluster, facts, audit_file, lambda _step: None))
    except (KeyboardInterrupt, Interrupted):
        print(f"dvdoctor: {_left_when_stopped(facts, args)}", file=sys.stderr)  # then "interrupted", exit 130
        raise
    except ActionFailed as exc:
        if step.outcome is None:  # the program did not run: its own error, as before (a usage error stays one)
            raise (exc.__cause__ or exc)
    assert step.outcome is not None
    return step.outcome
