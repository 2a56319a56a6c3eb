"""`fix`: repair what `check` found: plan first, applied on consent, audited, verified."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape

from ..core.names import valid_name
from ..render.output import console as make_console
from ..core.words import plural
from . import app, examples
from .context import Options
from .locking import break_lock_option, take_lock


def confirm(console: Console, question: str, assume_yes: bool) -> bool:
    """Ask on a terminal; with no terminal and no --yes the answer is no, so nothing changes."""
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        console.print("[yellow]No terminal to ask and no --yes: nothing was changed.[/]")
        return False
    return typer.confirm(question, default=False)


def render_plan(console: Console, plan, still_failing: bool = False) -> None:
    if plan.manual:
        console.print(f"[bold]{plan.fix}[/]: no safe automatic repair; do this by hand:")
        for step in plan.manual:
            console.print(f"  - {escape(step)}")
        return
    if plan.empty and still_failing:
        console.print(f"[yellow]![/] {plan.fix}: the check fails, but nothing here is safe to change automatically")
        for note in plan.notes:
            console.print(f"     {escape(note)}")
        return
    if plan.empty:
        console.print(f"[green]✓[/] {plan.fix}: nothing to do")
        return
    console.print(f"[bold]{plan.fix}[/]: plan")
    for i, action in enumerate(plan.actions, 1):
        console.print(f"  {i}. {escape(action.describe())}")
    for note in plan.notes:
        console.print(f"     [dim]{escape(note)}[/]")


def describe_change(change) -> str:
    """One change in words: "deployment/dv-api replicas: 0 → 1", or "set X to Y" when nothing was before."""
    if not change.before:
        return f"set {change.what} to {change.after}"
    return f"{change.what}: {change.before} → {change.after}"


@app.command(short_help="Repair what check found: plan, consent, apply, verify.", epilog=examples("dvdoctor -n cpd30 fix --issue stale-bar-marker", "dvdoctor -n cpd30 fix --all --yes"))
def fix(
    ctx: typer.Context,
    issue: List[str] = typer.Option([], "--issue", "-i", metavar="ID[,ID…]", help="Check id to repair (repeat or comma-separate)."),
    all_: bool = typer.Option(False, "--all", help="Repair every failing check that has an automatic fix, then look again (at most 2 more rounds) for what the repairs uncovered."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and change nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Apply without asking (for scripts)."),
    restart: bool = typer.Option(False, "--restart", help="stale-bar-marker: also delete DV pods that are not ready."),
    to: Optional[str] = typer.Option(None, "--to", metavar="TIMESTAMP", help="broken-backup-symlink: the backup (timestamp folder) to point at."),
    keep: int = typer.Option(2, "--keep", metavar="N", min=0, help="bar-low-space: good backups to keep (the newest good one is always kept)."),
    size: Optional[str] = typer.Option(None, "--size", metavar="SIZE", help="bar-low-space / bar-pvc-missing: new size of dv-bar-pvc, e.g. 60Gi."),
    storage_class: Optional[str] = typer.Option(None, "--storage-class", metavar="CLASS", help="bar-pvc-missing: storage class of a new dv-bar-pvc."),
    volume: Optional[str] = typer.Option(None, "--volume", metavar="PV", help="bar-pvc-missing: the kept (Released) volume to bind when more than one was kept."),
    dvcli: Optional[Path] = typer.Option(None, "--dvcli", metavar="PATH", help="init-volume-pod-missing: a dvcli.sh to write a repaired copy of."),
    allow_world_writable: bool = typer.Option(
        False, "--allow-world-writable", help="bar-permissions: allow 0777 when neither owner nor group write works."
    ),
    audit_file: Optional[Path] = typer.Option(None, "--audit-file", metavar="PATH", help="Where to log changes (default: ~/.local/state/dvdoctor/audit.jsonl)."),
    break_lock: bool = break_lock_option(),
) -> None:
    """Repair what `dvdoctor check` found: plan first, applied on consent, logged, verified.

    Each fix is printed as a plan, applied only when you agree (or --yes), logged to the audit
    file, and reported as verified only when its check passes again.

    Exit codes: 0 every fix applied and verified, or nothing to do (the check passes); 1 a fix was
    declined, failed or not verified, or a failure needs manual steps (printed); 2 could not run;
    3 (--all) a check could not run, so what it would have found was not repaired.
    """
    from ..facts.backups import is_timestamp, parse_quantity
    from ..core.errors import UsageError
    from ..repair.fixer import FixOptions, load_all, resolve
    from ..verdicts.registry import Run, run_checks
    from .check_cmd import gather

    opts: Options = ctx.obj
    now = Run(command="fix", suppressions=opts.suppressions)
    if not issue and not all_:
        raise UsageError("say what to repair: --issue ID (see `dvdoctor checks`) or --all")
    if to is not None and not is_timestamp(to):
        raise UsageError(f"--to {to!r}: a backup is named by its timestamp folder, like 2021-01-22-19-27-31")
    if storage_class is not None:
        valid_name(storage_class, "--storage-class")
    if size is not None:
        try:
            parse_quantity(size)
        except ValueError as exc:
            raise UsageError(f"--size: {exc}") from None
    ids = resolve(issue)
    options = FixOptions(restart=restart, to=to, keep=keep, size=size,
                         storage_class=storage_class or opts.settings.storage_class,
                         dvcli=dvcli, allow_world_writable=allow_world_writable, volume=volume)
    cluster = opts.open_cluster()
    # repairs that remove or point at backups decide on proof from this run: every backup is read back
    on_backups = all_ or bool(set(ids) & ON_BACKUPS)
    facts = gather(opts, no_pod=False, verify=on_backups, quiet=False)
    unknown: list = []
    if all_:
        # every failing or warning check: the fixable ones repaired, the others' manual steps printed
        results = run_checks(facts, now)
        failing = [r.check.id for r in results if r.status in ("fail", "warn", "crash")]
        ids += [i for i in failing if i not in ids]
        unknown = [r for r in results if r.status == "skip" and r.incomplete]
    console = make_console()
    ok = repair(opts, cluster, facts, ids, options, console, yes=yes, dry_run=dry_run, audit_file=audit_file,
                break_lock=break_lock, all_ids=all_)
    if all_ and not dry_run:
        # a repair can uncover what its check could not judge before (DV's side deployments are not
        # judged while a backup job runs; bar-job-unattended stops it): look again, a bounded number of times
        tried = set(ids)
        for _ in range(MORE_ROUNDS):
            facts = gather(opts, no_pod=False, verify=False, quiet=True)
            results = run_checks(facts, now)
            new = [r.check.id for r in results if r.status in ("fail", "warn", "crash") and r.check.id not in tried]
            if set(new) & ON_BACKUPS:  # a repair that removes or points at backups decides on proof read now
                facts = gather(opts, no_pod=False, verify=True, quiet=True)
                results = run_checks(facts, now)
                new = [r.check.id for r in results if r.status in ("fail", "warn", "crash") and r.check.id not in tried]
            unknown = [r for r in results if r.status == "skip" and r.incomplete]
            if not new:
                break
            console.print(f"[bold]Now failing, after the repairs above:[/] {', '.join(new)}")
            tried |= set(new)
            ok = repair(opts, cluster, facts, new, options, console, yes=yes, audit_file=audit_file,
                        break_lock=break_lock, all_ids=True) and ok
        else:
            facts = gather(opts, no_pod=False, verify=False, quiet=True)
            left = [r.check.id for r in run_checks(facts, now)
                    if r.status in ("fail", "crash") and r.check.id not in tried]
            if left:
                console.print(f"[red]✗[/] still failing after {MORE_ROUNDS + 1} rounds of repairs: {', '.join(left)} "
                              "(rerun `dvdoctor fix --all`)")
                ok = False
    if ok and unknown:
        # --all repaired what it saw; what it could not see may still need repair: incomplete
        console.print(f"[yellow]?[/] could not run, so not repaired if broken: "
                      + "; ".join(f"{r.check.id} ({r.reason})" for r in unknown))
        raise typer.Exit(3)
    raise typer.Exit(0 if ok else 1)


#: Repairs that remove or point at backups: they decide on backups read back in this run.
ON_BACKUPS = frozenset({"bar-low-space", "incomplete-backups", "broken-backup-symlink"})

#: How many more times `fix --all` looks again after its repairs, for what they uncovered.
MORE_ROUNDS = 2

#: Repairs that may act while a DV BAR job runs: the one that stops an unattended backup job, the
#: one that deletes leftover jobs (dvcli.sh's list job; never an active backup or restore job), and
#: the runbook's first backup step, scaling the side deployments down (it only stops writers beside
#: the job's tar). Every other repair touches the volume, the markers or the deployments' way back
#: up, and refuses under a job.
UNDER_BAR_JOB = ("bar-job-unattended", "leftover-bar-pods", "side-deployments-running")


def repair(opts: Options, cluster, facts, ids: list[str], options, console: Console, *, yes: bool,
           dry_run: bool = False, audit_file: Optional[Path] = None, break_lock: bool = False,
           all_ids: bool = False) -> bool:
    """Plan, show, ask, apply, audit and verify the given fixes; True when all is done and verified.

    The namespace's lock is held from the first change to the verification (shared with a backup
    or restore whose gate runs the fixes).
    """
    from ..repair.fixer import judged, load_all, manual_plan
    from ..repair.owner import refuse_while_active, refuse_while_active_live
    from ..verdicts.registry import Run, run_checks

    fixes = load_all()
    results = {r.check.id: r for r in run_checks(facts, Run(command="fix", suppressions=opts.suppressions))}
    asked = set(ids)

    seen: dict[str, object] = {}

    def judged_by(fix_id: str):
        """Its check's result, judged as its verification judges it (a pre-backup state as a gate)."""
        if fix_id not in seen:
            fx = fixes.get(fix_id)
            seen[fix_id] = judged(fx, facts, opts.suppressions) if fx is not None and fx.verify_phase != "now" else results.get(fix_id)
        return seen[fix_id]

    def status(fix_id: str) -> str | None:
        result = judged_by(fix_id)
        return result.status if result else None

    if not dry_run and not all_ids and not any(i in UNDER_BAR_JOB for i in ids):
        # asked by name while DV's job runs: its check may pass only because the job owns what it looks at
        refuse_while_active(facts, f"dvdoctor fix --issue {','.join(ids)}")
    passing = [i for i in ids if status(i) in ("pass", "suppressed")]
    for i in passing:
        console.print(f"[green]✓[/] {i}: nothing to do (its check passes)")
    # each fix is handed the problems its check found: it never runs the check again
    plans = [fixes[i].plan(facts, judged_by(i).problems if judged_by(i) else [], options) if i in fixes
             else manual_plan(facts, i) for i in ids if i not in passing]
    failing = {i for i, r in results.items() if r.status in ("fail", "warn")}
    stuck = [p for p in plans if p.empty and not p.manual and fixes[p.fix].check in failing]
    for p in plans:
        render_plan(console, p, still_failing=p in stuck)
    # a failure only a person can repair is a failure this run leaves: it makes the exit code 1
    by_hand = [p.fix for p in plans if p.manual and status(p.fix) in ("fail", "crash", "warn")
               and (status(p.fix) != "warn" or (p.fix in asked and not all_ids))]
    todo = [p for p in plans if not p.empty]
    if not todo:
        if plans:
            console.print("Nothing to change automatically." + (" Do the manual steps above." if any(p.manual for p in plans) else ""))
        if by_hand:
            console.print(f"[red]✗[/] still failing until repaired by hand: {', '.join(by_hand)}")
        return not by_hand and not stuck
    if dry_run:
        console.print("[dim]--dry-run: nothing was changed.[/]")
        return True
    command = f"dvdoctor fix --issue {','.join(p.fix for p in todo)}"
    ending = jobs_ended_by(todo)
    if any(p.fix not in UNDER_BAR_JOB for p in todo):
        refuse_while_active(facts, command, ending)
    todo.sort(key=lambda p: p.fix not in UNDER_BAR_JOB)  # what stops a job goes first; the rest acts after it
    if not confirm(console, f"Apply {plural(sum(len(p.actions) for p in todo), 'change')} in namespace {facts.namespace}?", yes):
        return False
    with take_lock(cluster, command, break_lock, console, facts.names, ending):
        if any(p.fix not in UNDER_BAR_JOB for p in todo):  # a job started while we asked
            refuse_while_active_live(cluster, facts.names, command, ending)
        ok = _apply(opts, cluster, facts, fixes, todo, options, console, audit_file)
    if by_hand:
        console.print(f"[red]✗[/] still failing until repaired by hand (steps above): {', '.join(by_hand)}")
    return ok and not by_hand


def jobs_ended_by(plans: list) -> frozenset[str]:
    """The jobs these plans delete or stop: while only those run, the other fixes may act after them."""
    from ..repair.plan import Delete, StopJob

    return frozenset(a.name for p in plans for a in p.actions
                     if isinstance(a, StopJob) or (isinstance(a, Delete) and a.kind == "jobs"))


def _apply(opts: Options, cluster, facts, fixes: dict, todo: list, options, console: Console,
           audit_file: Optional[Path]) -> bool:
    """Apply the plans (the caller holds the lock), then verify each by its check on fresh facts."""
    from ..repair.audit import AuditLog
    from ..repair.plan import ActionFailed, Runner, execute
    from ..verdicts.registry import Run, run_checks
    from .check_cmd import gather

    audit = AuditLog(audit_file, where=cluster.describe())
    runner = Runner(cluster, facts, audit, progress=lambda msg: console.print(f"  → {escape(msg)}"))
    failed = False
    applied = []
    for p in todo:
        try:
            changes = execute(p, runner)
        except ActionFailed as exc:
            console.print(f"[red]✗[/] {p.fix}: {escape(str(exc))}")
            failed = True
            continue
        applied.append(p.fix)
        for c in changes:
            console.print(f"  {escape(describe_change(c))}")
    on_cluster = [f for f in applied if fixes[f].verify is None]
    after = gather(opts, no_pod=False, verify=False, quiet=True) if on_cluster else None
    for fix_id in applied:
        chk = fixes[fix_id]
        if chk.verify is not None:
            ok, seen = chk.verify(options)
        else:
            result = run_checks(after, Run(phase=chk.verify_phase, command="fix", suppressions=opts.suppressions),
                                only=[chk.check])
            ok = bool(result) and result[0].status == "pass"
            seen = f"check {chk.check} {'passes' if ok else 'still fails'}"
        failed |= not ok
        console.print(f"{fix_id}: {'[green]✓ verified[/]' if ok else '[red]✗ not verified[/]'}: {escape(seen)}")
    console.print(f"[dim]changes logged to {audit.path}[/]")
    return not failed
