"""How a backup or a restore gets going once the command line has parsed it and holds the lock: the
gate judges the namespace, its `--fix` repairs through the one repair runner (the same plans,
consent, audit and verification as `dvdoctor fix`), and the executor every change of the flow goes
through is opened on the facts the flow goes on with.

What facts are collected again, and when, is decided here, with the flows' other decisions; the
command line hands in only what is its own: how facts are collected (its status line), the
person's screen and consent for the repairs (`Repairs`), and how a report is drawn. So it parses,
asks and renders, and the flows and the repair layer decide and act.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Protocol

from rich.console import Console

from ..cluster.port import Cluster
from ..core.names import DvNames
from ..facts.model import Facts
from ..facts.probe import EVERY_UNPROVEN, ReadBack
from ..repair.fixer import FixOptions
from ..repair.plan import Runner
from ..repair.runner import Repairs, open_runner
from ..verdicts.registry import RESTORE, Result, Run
from .gate import preflight


class Collect(Protocol):
    """Facts again, quietly, from the cluster or lab the command names (the command line's collector)."""

    def __call__(self, verify: bool | ReadBack, copies: bool = True, pod: bool = True) -> Facts: ...


def judged_by_gate(names: DvNames) -> frozenset[str]:
    """The DV jobs a flow's gate judges rather than refuses: dvcli.sh's list job is `leftover-bar-pods`'
    finding, an error there that `--fix` deletes first; without --fix the gate stops the flow before
    anything changes (and the flow's own job starts only after a last look at the cluster)."""
    return frozenset({names.list_job})


def collect_midway(collect: Collect) -> Callable[..., Facts]:
    """Facts again during a flow: no backup is read back unless asked (DV's pods are what is awaited),
    and no copy is listed (what a flow reads mid-run is pods, backups and markers, never the copies);
    `pod=False`: no inspection pod either (the wait for DV's pods reads the objects alone)."""
    return lambda verify=ReadBack(mode="recorded"), pod=True: collect(verify, copies=False, pod=pod)


@dataclass(frozen=True)
class Started:
    """A flow past its gate, or stopped by it."""

    #: The facts to go on with: collected again when the gate's repairs changed something.
    facts: Facts
    #: The gate's verdict as an exit code: 0 goes on.
    verdict: int
    #: The executor every change of the flow goes through, with its audit log (--audit-file, where
    #: the gate's repairs wrote theirs too: one file holds the whole run).
    runner: Runner


def start(cluster: Cluster, facts: Facts, run: Run, ignore: Iterable[str], console: Console, *,
          collect: Collect, repairs: Repairs | None, report: Callable[[Facts, list[Result]], None],
          audit_file: Path | None, progress: Callable[[str], None], dry_run: bool = False) -> Started:
    """Judge the gate of `run` (its phase, the site's suppressions); with `repairs` (--fix), the paired
    fixes of what fails first, through the one runner with their default options; then open the executor.

    After a repair the facts are collected as the gate first judged them: a restore's backups are
    read back again, so it restores one proven in this run. In a dry run the repairs are planned and
    shown, never applied (second break-it, session 21: `--fix --yes --dry-run` applied them), and
    the gate judges the namespace as it is.
    """
    def repair_first(judged: Facts, ids: list[str]) -> bool:
        assert repairs is not None
        done = repairs.repair(judged, ids, FixOptions(), dry_run=dry_run)
        return done and not dry_run  # nothing changed in a dry run: nothing to collect again

    fix: Callable[[Facts, list[str]], bool] | None = repair_first if repairs is not None else None
    facts, verdict = preflight(facts, run, ignore, console,
                               lambda: collect(EVERY_UNPROVEN if run.phase == RESTORE else False), fix,
                               report=report)
    return Started(facts, verdict, open_runner(cluster, facts, audit_file, progress))
