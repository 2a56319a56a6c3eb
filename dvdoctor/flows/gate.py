"""The preflight gate before a backup or restore: checks first, and nothing changes if one fails.

As kubeadm's preflight: a named check can be let through as a warning with --ignore-check, and the
output says how. With --fix the paired repairs run first (same plan/consent/verify rules as `fix`).
"""

from __future__ import annotations

from typing import Callable, Iterable

from rich.console import Console

from ..facts import Facts
from ..registry import Result, run_checks
from ..report import render

#: Checks a flow takes care of itself, so they never block it: the backup scales the side deployments
#: down; a restore that succeeds is what ends a restore that failed part-way.
HANDLED_BY_FLOW = {"backup": ("side-deployments-running",), "restore": ("restore-incomplete",)}


def blocking(results: list[Result]) -> list[Result]:
    return [r for r in results if r.status in ("fail", "crash")]


def preflight(
    facts: Facts,
    phase: str,
    ignore: Iterable[str],
    console: Console,
    collect_again: Callable[[], Facts],
    fix: Callable[[Facts, list[str]], bool] | None = None,
) -> tuple[Facts, bool]:
    """Run the gate; returns the facts the flow should go on with and whether it may go on."""
    ignore = list(ignore)
    skip = list(HANDLED_BY_FLOW[phase])
    results = run_checks(facts, phase=phase, skip=skip, ignore=ignore)
    bad = blocking(results)
    if bad and fix is not None:
        fixable = [r.check.fix for r in bad if r.check.fix]
        if fixable and fix(facts, fixable):
            facts = collect_again()
            results = run_checks(facts, phase=phase, skip=skip, ignore=ignore)
            bad = blocking(results)
    if bad:
        render(console, facts, results)
        ids = ",".join(r.check.id for r in bad)
        console.print(f"[red]Preflight failed: nothing was changed.[/] Repair with the commands above, "
                      f"rerun with --fix, or let a check through with --ignore-check {ids}")
        return facts, False
    warned = [r for r in results if r.status == "warn"]
    skipped = [r for r in results if r.status == "skip"]
    console.print(f"[green]✓[/] preflight: {len(results)} checks, {len(warned)} warnings"
                  + (f" ({', '.join(r.check.id for r in warned)})" if warned else "")
                  + (f", {len(skipped)} skipped ({', '.join(r.check.id for r in skipped)}: {skipped[0].reason})"
                     if skipped else ""))
    return facts, True
