"""`fix`: repair what `check` found: plan first, applied on consent, audited, verified."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, List, Optional

import typer
from rich.console import Console
from rich.markup import escape

from ..core.names import valid_name
from ..render.output import console as make_console
from . import app, examples
from .numbers import number_option
from .context import Options
from .locking import break_lock_option, take_lock

if TYPE_CHECKING:
    from ..cluster.port import Cluster
    from ..facts.model import Facts
    from ..repair.fixer import FixOptions
    from ..repair.plan import Change, Plan
    from ..repair.runner import Repairs


def confirm(console: Console, question: str, assume_yes: bool) -> bool:
    """Ask on a terminal; with no terminal and no --yes the answer is no, so nothing changes."""
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        console.print("[yellow]No terminal to ask and no --yes: nothing was changed.[/]")
        return False
    return typer.confirm(question, default=False)


def say_steps(console: Console) -> Callable[[str], None]:
    """What is said before each action is applied: one indented line."""
    return lambda step: console.print(f"  → {escape(step)}")


def render_plan(console: Console, plan: Plan, still_failing: bool = False) -> None:
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


def describe_change(change: Change) -> str:
    """One change in words: "deployment/dv-api replicas: 0 → 1", or "set X to Y" when nothing was before."""
    if not change.before:
        return f"set {change.what} to {change.after}"
    return f"{change.what}: {change.before} → {change.after}"


class ConsoleScreen:
    """The repair runner's Screen on a console: the plans, the changes and the verdicts in words, and
    consent asked on the terminal (or given by --yes)."""

    def __init__(self, console: Console, yes: bool) -> None:
        self.console, self.yes = console, yes

    def passing(self, fix_id: str, suppressed: bool = False) -> None:
        why = "its check finds only what the site suppressed" if suppressed else "its check passes"
        self.console.print(f"[green]✓[/] {fix_id}: nothing to do ({why})")

    def plan(self, plan: Plan, still_failing: bool) -> None:
        render_plan(self.console, plan, still_failing)

    def nothing_automatic(self, manual: bool) -> None:
        self.console.print("Nothing to change automatically." + (" Do the manual steps above." if manual else ""))

    def nothing_failing(self) -> None:
        self.console.print("[green]✓[/] nothing to repair: no check fails or warns")

    def by_hand(self, ids: list[str], steps_shown: bool) -> None:
        self.console.print(f"[red]✗[/] still failing until repaired by hand{' (steps above)' if steps_shown else ''}: "
                           f"{', '.join(ids)}")

    def dry_run(self) -> None:
        self.console.print("[dim]--dry-run: nothing was changed.[/]")

    def ask(self, question: str) -> bool:
        return confirm(self.console, question, self.yes)

    def progress(self, step: str) -> None:
        say_steps(self.console)(step)

    def failed(self, fix_id: str, why: str) -> None:
        self.console.print(f"[red]✗[/] {fix_id}: {escape(why)}")

    def changed(self, change: Change) -> None:
        self.console.print(f"  {escape(describe_change(change))}")

    def verified(self, fix_id: str, ok: bool, seen: str) -> None:
        self.console.print(f"{fix_id}: {'[green]✓ verified[/]' if ok else '[red]✗ not verified[/]'}: {escape(seen)}")

    def logged(self, path: Path) -> None:
        self.console.print(f"[dim]changes logged to {escape(str(path))}[/]")

    def now_failing(self, ids: list[str]) -> None:
        self.console.print(f"[bold]Now failing, after the repairs above:[/] {', '.join(ids)}")

    def still_failing_after(self, rounds: int, ids: list[str]) -> None:
        self.console.print(f"[red]✗[/] still failing after {rounds} rounds of repairs: {', '.join(ids)} "
                           "(rerun `dvdoctor fix --all`)")


def repairs(opts: Options, cluster: Cluster, console: Console, *, yes: bool, audit_file: Optional[Path] = None,
            break_lock: bool = False) -> Repairs:
    """The repair runner for this command: it decides and acts, this console says it and asks."""
    from ..repair.runner import Repairs
    from .check_cmd import gather

    return Repairs(
        cluster, ConsoleScreen(console, yes),
        collect_again=lambda every_backup: gather(opts, no_pod=False, verify=every_backup, quiet=True),
        lock=lambda command, ending: take_lock(cluster, command, break_lock, console, opts.settings.names, ending),
        suppressions=opts.suppressions, audit_file=audit_file)


def repair(opts: Options, cluster: Cluster, facts: Facts, ids: list[str], options: FixOptions, console: Console, *, yes: bool,
           dry_run: bool = False, audit_file: Optional[Path] = None, break_lock: bool = False) -> bool:
    """Plan, show, ask, apply, audit and verify the given fixes (a gate's --fix, a flow's own repair);
    True when all is done and verified."""
    return repairs(opts, cluster, console, yes=yes, audit_file=audit_file, break_lock=break_lock).repair(
        facts, ids, options, dry_run=dry_run)


@app.command(short_help="Repair what check found: plan, consent, apply, verify.", epilog=examples("dvdoctor -n cpd30 fix --issue stale-bar-marker", "dvdoctor -n cpd30 fix --all --yes"))
def fix(
    ctx: typer.Context,
    issue: List[str] = typer.Option([], "--issue", "-i", metavar="ID[,ID…]", help="Check id to repair (repeat or comma-separate)."),
    all_: bool = typer.Option(False, "--all", help="Repair every failing check that has an automatic fix, then look again (at most 2 more rounds) for what the repairs uncovered."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and change nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Apply without asking (for scripts)."),
    restart: bool = typer.Option(False, "--restart", help="stale-bar-marker: also delete DV pods that are not ready."),
    to: Optional[str] = typer.Option(None, "--to", metavar="TIMESTAMP", help="broken-backup-symlink: the backup (timestamp folder) to point at."),
    keep: int = number_option(2, "--keep", metavar="N", min=0, help="bar-low-space: good backups to keep (the newest good one is always kept)."),
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
    from ..core.units import is_timestamp, parse_quantity
    from ..core.errors import UsageError
    from ..repair.fixer import FixOptions, resolve
    from ..repair.runner import ON_BACKUPS
    from .check_cmd import gather

    opts: Options = ctx.obj
    if not issue and not all_:
        raise UsageError("say what to repair: --issue ID (see `dvdoctor checks`) or --all")
    if to is not None and not is_timestamp(to):
        raise UsageError(f"--to {to!r}: a backup is named by its timestamp folder, like 2021-01-22-19-27-31")
    if storage_class is not None:
        valid_name(storage_class, "--storage-class", subdomain=True)
    if volume is not None:
        valid_name(volume, "--volume", subdomain=True)
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
    if to is not None:
        if not all_ and "broken-backup-symlink" not in ids:
            raise UsageError("--to is for --issue broken-backup-symlink: the backup its restore point moves to")
        if facts.bar is not None:  # refused now, even when the link needs no repair and --to would go unused
            from ..fixes.broken_backup_symlink import judge_to

            note = judge_to(facts, to)
            if note:
                make_console().print(f"[dim]note: {note}[/]", soft_wrap=True)
    console = make_console()
    runner = repairs(opts, cluster, console, yes=yes, audit_file=audit_file, break_lock=break_lock)
    if not all_:
        raise typer.Exit(0 if runner.repair(facts, ids, options, dry_run=dry_run) else 1)
    ok, unknown = runner.repair_all(facts, ids, options, dry_run=dry_run)
    if ok and unknown:
        # --all repaired what it saw; what it could not see may still need repair: incomplete
        console.print("[yellow]?[/] could not run, so not repaired if broken: "
                      + "; ".join(f"{r.check.id} ({r.reason})" for r in unknown))
        raise typer.Exit(3)
    raise typer.Exit(0 if ok else 1)
