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
from ..facts.model import Facts
from ..repair.copying import CopyProgramRun, repository_shown
from ..repair.plan import ActionFailed, Plan, execute
from ..repair.runner import open_runner
from . import checkpoints


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
