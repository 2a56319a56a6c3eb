"""The preflight gate before a backup or restore: checks first, and nothing changes unless it passes.

As kubeadm's preflight: a named check can be let through as a warning with --ignore-check, and the
output says how, naming the option on the command at hand (`backup --ignore-check X`). With --fix
the paired repairs run first (same plan/consent/verify rules as `fix`). `check --for backup|restore`
runs this same selection of checks on the same facts, so its verdict is the gate's.

An error-severity check the gate could not run (no rights, an inspection pod that failed) stops the
flow as a failing one does, with exit 3: a backup started on an unknown (a stale `.bar` marker
nobody could look for) is a backup that may fail an hour later with DV offline. A warning that could
not run is said and stops nothing: had it run, it could only have warned.
"""

from __future__ import annotations

from typing import Callable, Iterable

from rich.console import Console

from ..facts.model import Facts
from ..verdicts.registry import CLEAN, ERROR, FAILED, INCOMPLETE, Result, Run, run_checks
from ..core.words import plural

#: Checks a flow takes care of itself, so they never block it: the backup scales the side deployments
#: down, and back up at its end (to their recorded count, else 1, when they were left down before:
#: side-deployments-left-down applies to a restore's gate only for that reason); a restore that
#: succeeds is what ends a restore that failed part-way.
HANDLED_BY_FLOW = {"now": (), "backup": ("side-deployments-running",), "restore": ("restore-incomplete",)}


def handled_by_flow(phase: str) -> tuple[str, ...]:
    """The checks `phase`'s own command takes care of, which its gate (and `check --for`) leaves out."""
    return HANDLED_BY_FLOW.get(phase, ())


def blocking(results: list[Result], ignore: Iterable[str] = ()) -> list[Result]:
    """What stops a flow: a failure, a crash, or an error-severity check that could not run and was
    not let through. A warning that could not run is said but stops nothing: run, it could only warn."""
    accepted = set(ignore)
    return [r for r in results
            if r.status in ("fail", "crash")
            or (r.status == "skip" and r.incomplete and r.check.severity == ERROR and r.check.id not in accepted)]


def verdict(bad: list[Result]) -> int:
    if any(r.status in ("fail", "crash") for r in bad):
        return FAILED
    return INCOMPLETE if bad else CLEAN


def preflight(
    facts: Facts,
    run: Run,
    ignore: Iterable[str],
    console: Console,
    collect_again: Callable[[], Facts],
    fix: Callable[[Facts, list[str]], bool] | None = None,
    *,
    report: Callable[[Facts, list[Result]], None],
) -> tuple[Facts, int]:
    """Run the gate (`run`: its phase and the site's suppressions); returns the facts the flow should go
    on with and the verdict (0: go on).

    When it stops, `report` shows the results first (the caller's report renderer: the flows sit
    below the rendering of reports, so the gate is handed it rather than importing it).
    """
    phase = run.phase
    ignore = list(ignore)
    skip = list(handled_by_flow(phase))
    results = run_checks(facts, run, skip=skip, ignore=ignore)
    bad = blocking(results, ignore)
    if bad and fix is not None:
        fixable = [r.check.fix for r in bad if r.check.fix and r.status != "skip"]
        if fixable and fix(facts, fixable):
            facts = collect_again()
            results = run_checks(facts, run, skip=skip, ignore=ignore)
            bad = blocking(results, ignore)
    if bad:
        report(facts, results)
        ids = ",".join(r.check.id for r in bad)
        fixable = any(r.check.fix for r in bad if r.status != "skip")
        how = ["repair with the commands above"] + ([f"rerun with: dvdoctor {phase} --fix"] if fixable else [])
        how.append(f"or let {'it' if len(bad) == 1 else 'them'} through with: dvdoctor {phase} --ignore-check {ids}")
        what = "Preflight failed" if verdict(bad) == FAILED else "Preflight incomplete"
        console.print(f"[red]{what}: nothing was changed.[/] " + "; ".join(how))
        return facts, verdict(bad)
    warned = [r for r in results if r.status == "warn"]
    skipped = [r for r in results if r.status == "skip"]
    line = f"[green]✓[/] preflight: {plural(len(results), 'check')}, {plural(len(warned), 'warning')}"
    if warned:
        line += f" ({', '.join(r.check.id for r in warned)})"
    unknown = [r for r in skipped if r.incomplete]
    chosen = [r for r in skipped if not r.incomplete]
    if unknown:
        line += f", {len(unknown)} could not run ({'; '.join(f'{r.check.id}: {r.reason}' for r in unknown)})"
    if chosen:
        line += f", {len(chosen)} skipped ({'; '.join(f'{r.check.id}: {r.reason}' for r in chosen)})"
    console.print(line)
    return facts, CLEAN
