"""`backup`, `restore`, `list` and `prune`: DV's own BAR jobs, with the checks as a gate."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape

from ..core.names import valid_name
from ..render.output import console as make_console
from . import app, examples
from .numbers import number_option
from .check_cmd import Output, gather
from .context import Options
from .fix_cmd import confirm, render_plan, repairs, say_steps
from .locking import break_lock_option, take_lock


def _flow_setup(ctx: typer.Context, ignore: List[str], verify=False, lock: bool = False, break_lock: bool = False,
                command: str = ""):
    """Open the cluster, take the namespace's lock (unless nothing will change), then gather the facts.

    The lock is taken before the facts, so the gate judges a namespace no other run is changing; it
    is released when the command ends, however it ends. A DV BAR job that is active (dvcli.sh's, a
    schedule's, or one a killed dvdoctor run left) stops the command before anything changes.
    """
    from ..verdicts.registry import resolve_ids
    from ..flows.start import judged_by_gate
    from ..repair.owner import refuse_while_active

    opts: Options = ctx.obj
    resolve_ids(ignore, "--ignore-check")
    cluster = opts.open_cluster()
    console = make_console()
    command = command or ctx.command_path
    gate_judges = judged_by_gate(opts.settings.names)
    if lock:
        ctx.call_on_close(take_lock(cluster, command, break_lock, console, opts.settings.names, gate_judges).release)
    facts = gather(opts, no_pod=False, verify=verify, quiet=False)
    if lock:  # DV's own job owns the namespace while it runs, whatever the lock says
        refuse_while_active(facts, command, gate_judges)
    return opts, cluster, facts, console


def _collect(opts: Options):
    """How a flow collects facts again: quietly, from what the options name (the flow says what to read)."""
    return lambda verify, copies=True, pod=True: gather(opts, no_pod=not pod, verify=verify, quiet=True, copies=copies)


def _start(opts: Options, cluster, facts, phase: str, ignore: List[str], fix: bool, yes: bool, console: Console,
           audit_file: Optional[Path], dry_run: bool = False):
    """The flow's gate, its --fix and its executor (dvdoctor.flows.start), with this console to say
    and ask; returns what the flow goes on with, or the gate's verdict to exit with."""
    from ..flows.start import start
    from ..verdicts.registry import Run
    from ..render.report import render

    run = Run(phase=phase, suppressions=opts.suppressions)
    return start(cluster, facts, run, ignore, console, collect=_collect(opts),
                 repairs=repairs(opts, cluster, console, yes=yes, audit_file=audit_file) if fix else None,
                 report=lambda f, results: render(console, f, results, hint=None, run=run),
                 audit_file=audit_file, progress=say_steps(console), dry_run=dry_run)


def _validate_log_dir(log_dir: Optional[Path]) -> Path:
    """The job's log is saved after the job ends: a bad folder must fail now, not after an hour offline.

    Without --log-dir it is dvdoctor's state folder (dvdoctor.core.state), created for this user only.
    """
    import os

    from ..core.errors import UsageError
    from ..core.state import default_log_dir

    if log_dir is None:
        log_dir = default_log_dir()
        try:
            log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise UsageError(f"cannot create the log folder {log_dir}: {exc.strerror}; give one with --log-dir") from None
    if not log_dir.is_dir() or not os.access(log_dir, os.W_OK | os.X_OK):
        raise UsageError(f"--log-dir {str(log_dir)!r}: not a folder this user can write to; give an existing, writable folder")
    return log_dir.resolve()


def _validate_size(size: Optional[str]) -> None:
    from ..core.units import parse_quantity
    from ..core.errors import UsageError

    if size is not None:
        try:
            parse_quantity(size)
        except ValueError as exc:
            raise UsageError(f"--bar-size: {exc}") from None


@app.command(short_help="Back up DV with its own backup job, gated by the checks.", epilog=examples("dvdoctor -n cpd30 backup", "dvdoctor -n cpd30 backup --fix --yes"))
def backup(
    ctx: typer.Context,
    yes: bool = typer.Option(False, "--yes", "-y", help="Start without asking (for scripts and schedules)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print every step and the job it would create; change nothing."),
    fix: bool = typer.Option(False, "--fix", help="Apply the paired fixes of failing preflight checks first."),
    ignore: List[str] = typer.Option([], "--ignore-check", metavar="ID[,ID…]", help="Let this failing check pass as a warning."),
    storage_class: Optional[str] = typer.Option(None, "--storage-class", metavar="CLASS", help="Storage class for dv-bar-pvc if it must be created (default: that of DV's data claim dv-pvc)."),
    bar_size: Optional[str] = typer.Option(None, "--bar-size", metavar="SIZE", help="Size of dv-bar-pvc if it must be created (default 30Gi, three backups of ~10Gi; DV's template asks for 20Gi)."),
    timeout: float = number_option(3600, "--timeout", kind=float, metavar="SECONDS", min=1, help="Give up watching the job after this many seconds."),
    ready_timeout: float = number_option(600, "--ready-timeout", kind=float, metavar="SECONDS", min=0, help="How long to wait for DV's pods afterwards."),
    log_dir: Optional[Path] = typer.Option(None, "--log-dir", metavar="PATH", help="Where the job's log is saved (default: ~/.local/state/dvdoctor/logs, under $XDG_STATE_HOME if set)."),
    audit_file: Optional[Path] = typer.Option(None, "--audit-file", metavar="PATH", help="Where changes are logged."),
    break_lock: bool = break_lock_option(),
) -> None:
    """Back up DV with its own backup job, gated by the checks; DV is offline while it runs.

    Preflight checks, side deployments scaled to 0 and back, the job watched live, the new backup
    verified.

    Exit codes: 0 done and verified; 1 the gate found a failure (nothing changed), the job failed,
    or DV is not ready after it; 2 bad input or the namespace is taken; 3 the gate could not run an
    error-severity check (nothing changed); 130 interrupted.
    """
    from ..flows.common import FlowOptions
    from ..flows.backup import run_backup
    from ..flows.start import collect_midway

    if storage_class is not None:
        valid_name(storage_class, "--storage-class", subdomain=True)
    _validate_size(bar_size)
    log_dir = _validate_log_dir(log_dir)
    opts, cluster, facts, console = _flow_setup(ctx, ignore, lock=not dry_run, break_lock=break_lock)
    started = _start(opts, cluster, facts, "backup", ignore, fix, yes, console, audit_file, dry_run)
    if started.verdict:
        raise typer.Exit(started.verdict)
    facts = started.facts
    options = FlowOptions(dry_run=dry_run, timeout=timeout, log_dir=log_dir,
                          storage_class=storage_class or opts.settings.storage_class,
                          bar_size=bar_size or opts.settings.bar_size, ready_timeout=ready_timeout)
    if not dry_run and not confirm(console, f"Back up DV in namespace {facts.namespace}? DV is offline until the job ends.", yes):
        raise typer.Exit(1)
    code = run_backup(facts, options, console, started.runner, collect_midway(_collect(opts)))
    raise typer.Exit(code)


@app.command(short_help="Restore DV from a backup with its own job and the post-steps.", epilog=examples("dvdoctor -n cpd30 restore", "dvdoctor -n cpd30 restore --from 2021-01-22-19-27-31"))
def restore(
    ctx: typer.Context,
    from_: Optional[str] = typer.Option(None, "--from", metavar="TIMESTAMP", help="The backup to restore (timestamp folder, see `dvdoctor list`); default: the one dv_backup.tar.gz marks."),
    from_copy: Optional[str] = typer.Option(None, "--from-copy", metavar="TIMESTAMP|SNAPSHOT", help="Bring this copy back onto dv-bar-pvc from the restic repository first (see `dvdoctor list --copies`), then restore it."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Start without asking."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print every step and the job it would create; change nothing."),
    fix: bool = typer.Option(False, "--fix", help="Apply the paired fixes of failing preflight checks first."),
    ignore: List[str] = typer.Option([], "--ignore-check", metavar="ID[,ID…]", help="Let this failing check pass as a warning."),
    timeout: float = number_option(3600, "--timeout", kind=float, metavar="SECONDS", min=1, help="Give up watching the job after this many seconds."),
    ready_timeout: float = number_option(600, "--ready-timeout", kind=float, metavar="SECONDS", min=0, help="How long to wait for DV's pods afterwards."),
    log_dir: Optional[Path] = typer.Option(None, "--log-dir", metavar="PATH", help="Where the job's log is saved (default: ~/.local/state/dvdoctor/logs, under $XDG_STATE_HOME if set)."),
    audit_file: Optional[Path] = typer.Option(None, "--audit-file", metavar="PATH", help="Where changes are logged."),
    break_lock: bool = break_lock_option(),
    accept_other_instance: bool = typer.Option(False, "--accept-other-instance", help="Restore a backup whose manifest names another DV instance (DV 1.5.0 BAR is same-instance only)."),
    accept_unverified_origin: bool = typer.Option(False, "--accept-unverified-origin", help="With --yes, restore a backup without a dvdoctor manifest (taken by dvcli.sh or before dvdoctor)."),
) -> None:
    """Restore DV from a backup with its own restore job, then the runbook's manual post-steps.

    DV is offline while the job runs and its data is replaced.

    Exit codes: 0 done and verified; 1 the gate found a failure (nothing changed), the job failed,
    or DV is not ready after it; 2 bad input or the namespace is taken; 3 the gate could not run an
    error-severity check (nothing changed); 130 interrupted.
    """
    from ..core.units import is_timestamp
    from ..core.errors import UsageError
    from ..flows.common import FlowOptions
    from ..flows.restore import choose, describe, judge_origin, run_restore
    from ..flows.start import collect_midway
    from ..facts.probe import ReadBack

    if from_ is not None and not is_timestamp(from_):
        raise UsageError(f"--from {from_!r}: a backup is named by its timestamp folder, like 2021-01-22-19-27-31")
    log_dir = _validate_log_dir(log_dir)
    if from_copy is not None:
        import re

        from .copy_cmd import rehydrate_for_restore

        if from_ is not None:
            raise UsageError("--from and --from-copy: give one of them")
        if not (is_timestamp(from_copy) or re.fullmatch(r"[0-9a-f]{8,64}", from_copy)):
            raise UsageError(f"--from-copy {from_copy!r}: give a backup timestamp or a snapshot id (dvdoctor list --copies)")
        if dry_run:
            raise UsageError("--from-copy writes the copy back onto dv-bar-pvc; it has no --dry-run")
        from_ = rehydrate_for_restore(ctx, from_copy, yes, break_lock, accept_other=accept_other_instance,
                                      accept_unverified=accept_unverified_origin, audit_file=audit_file)
    # the chosen backup is read back now, inner tarballs included, whatever was recorded, before DV is touched
    opts, cluster, facts, console = _flow_setup(
        ctx, ignore, verify=ReadBack(budget=0, also=(from_ or "@link",)), lock=not dry_run, break_lock=break_lock,
        command=f"{ctx.command_path} --from {from_}" if from_ else "")
    chosen = choose(facts, from_)
    about_origin = judge_origin(facts, chosen, yes=yes, accept_other=accept_other_instance,
                                accept_unverified=accept_unverified_origin)
    started = _start(opts, cluster, facts, "restore", ignore, fix, yes, console, audit_file, dry_run)
    if started.verdict:
        raise typer.Exit(started.verdict)
    facts = started.facts
    options = FlowOptions(dry_run=dry_run, timeout=timeout, log_dir=log_dir, ready_timeout=ready_timeout)
    question = (f"Restore {describe(facts, chosen)} in namespace {facts.namespace}? "
                + (f"{about_origin} " if about_origin else "")
                + "DV goes offline and its current data is replaced.")
    if about_origin and (yes or dry_run):
        console.print(f"[yellow]![/] {escape(about_origin)}")
    if not dry_run and not confirm(console, question, yes):
        raise typer.Exit(1)
    code = run_restore(facts, chosen, options, console, started.runner, collect_midway(_collect(opts)))
    raise typer.Exit(code)


@app.command("list", short_help="List the backups on dv-bar-pvc: age, sizes, state.", epilog=examples("dvdoctor -n cpd30 list", "dvdoctor -n cpd30 list --verify -o json"))
def list_backups(
    ctx: typer.Context,
    output: Output = typer.Option(Output.table, "-o", "--output", metavar="FORMAT", help="table or json."),
    verify: bool = typer.Option(False, "--verify", help="Read back every backup (combined and inner tarballs), a recorded read-back too (bit rot keeps size and mtime), however long it takes. With --copies: run restic check on the repository (every pack its index names is there)."),
    copies: bool = typer.Option(False, "--copies", help="List the copies in the restic repository instead (see `dvdoctor copy`)."),
) -> None:
    """List the backups on dv-bar-pvc: timestamp, age, sizes, state (good / unverified / damaged / in progress), origin, and the current one."""
    if copies:
        from .copy_cmd import show_copies

        return show_copies(ctx.obj, output, verify)
    from ..core.units import human_bytes
    from ..facts.backups import shown
    from ..checks.bar_low_space import space
    from ..flows.list import listing

    opts: Options = ctx.obj
    facts = gather(opts, no_pod=False, verify=verify, quiet=output == Output.json)
    s, rows, odd = listing(facts)
    names = facts.names
    if output == Output.json:
        sys.stdout.write(json.dumps({"namespace": facts.namespace, "backups": rows, "not_backups": odd}, indent=2) + "\n")
        return
    from rich.text import Text

    from ..render.output import Column, print_table
    from ..core.words import plural

    columns = [Column("current", whole=True), Column("backup", whole=True), Column("age", whole=True, justify="right"),
               Column("combined", whole=True, justify="right"), Column("components", whole=True, justify="right"),
               Column("state"), Column("origin")]
    colour = {"good": "green", "damaged": "red", "unverified": "yellow", "in progress": "cyan"}
    table = []
    for r in rows:
        # A Text, so the color is dvdoctor's and the reason (from the volume) is shown as it is.
        state = Text.assemble((r["state"], colour[r["state"]]), "" if r["state"] == "good" else f": {r['why']}")
        table.append(("→" if r["current"] else "", r["timestamp"], f"{r['age_hours']:.1f} h",
                      human_bytes(r["combined_bytes"]), human_bytes(r["component_bytes"]), state, r["origin"]))
    console = make_console()
    print_table(console, columns, table)
    for o in s.odd:
        console.print(f"[yellow]![/] not a backup: {escape(shown(o.name))} ({o.kind}): {escape(o.why)}", soft_wrap=True)
    room = space(facts)
    summary = f"{plural(len(rows), 'backup')}; → marks the restore point ({names.symlink})"
    if room is not None:
        summary += (f"; {human_bytes(facts.bar.get('used_bytes', 0))} used, {human_bytes(room.free)} free, "
                    f"the next backup needs about {human_bytes(room.need)}")
    console.print(summary)


@app.command(short_help="Delete damaged or unverified backups, and good ones beyond --keep.", epilog=examples("dvdoctor -n cpd30 prune --keep 2 --dry-run", "dvdoctor -n cpd30 prune --keep 2 --yes"))
def prune(
    ctx: typer.Context,
    keep: Optional[int] = number_option(None, "--keep", metavar="N", min=1, help="Good backups to keep (the current and the newest good one are always kept)."),
    copies: bool = typer.Option(False, "--copies", help="Prune the copies in the restic repository instead, by --keep-daily/weekly/monthly."),
    keep_daily: int = number_option(0, "--keep-daily", min=0, metavar="N", help="With --copies: keep the newest copy of each of the last N days."),
    keep_weekly: int = number_option(0, "--keep-weekly", min=0, metavar="N", help="With --copies: keep the newest copy of each of the last N weeks."),
    keep_monthly: int = number_option(0, "--keep-monthly", min=0, metavar="N", help="With --copies: keep the newest copy of each of the last N months."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Delete without asking."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be deleted; change nothing."),
    output: Output = typer.Option(Output.table, "-o", "--output", metavar="FORMAT",
                                  help="With --copies: table or json (each copy removed or kept, and why)."),
    audit_file: Optional[Path] = typer.Option(None, "--audit-file", metavar="PATH", help="Where changes are logged."),
    break_lock: bool = break_lock_option(),
) -> None:
    """Delete damaged and unverified backups, and good ones beyond the newest --keep good ones.

    Never the current (symlinked) or the newest good backup; nothing when no good backup would remain.
    """
    from ..repair.plan import ActionFailed
    from ..core.errors import UsageError
    from ..facts.probe import EVERY_ONE, ReadBack
    from ..flows.prune import prune_plan, run_prune

    from ..repair.owner import refuse_while_active
    from ..core.words import plural

    opts: Options = ctx.obj
    if copies:
        from .copy_cmd import prune_copies

        if keep is not None:
            raise UsageError("--keep is for the backups on dv-bar-pvc; with --copies give --keep-daily/weekly/monthly")
        policy = {"daily": keep_daily, "weekly": keep_weekly, "monthly": keep_monthly}
        if not dry_run:
            ctx.call_on_close(take_lock(opts.open_cluster(), f"{ctx.command_path} --copies", break_lock,
                                        make_console(), opts.settings.names).release)
        raise typer.Exit(prune_copies(opts, policy, yes, dry_run, audit_file, output))
    if output != Output.table:
        raise UsageError("prune -o json is for --copies; the backups' prune prints its plan as text")
    if keep is None:
        raise UsageError("prune: give --keep N (backups on dv-bar-pvc) or --copies with --keep-daily/weekly/monthly")
    cluster = opts.open_cluster()
    console = make_console()
    command = f"{ctx.command_path} --keep {keep}"
    if not dry_run:
        ctx.call_on_close(take_lock(cluster, command, break_lock, console, opts.settings.names).release)
    # what is deleted and what is kept is decided on proof from this run: every backup is read back,
    # whatever was recorded (a record cannot show bit rot), so the ones kept as good read back now
    facts = gather(opts, no_pod=False, verify=EVERY_ONE, quiet=False)
    if not dry_run:
        refuse_while_active(facts, command)
    removals, kept, plan = prune_plan(facts, keep)
    render_plan(console, plan)
    if plan.empty or dry_run:
        if dry_run and not plan.empty:
            console.print("[dim]--dry-run: nothing was changed.[/]")
        raise typer.Exit(0)
    if not confirm(console, f"Delete {plural(len(removals), 'backup')} in namespace {facts.namespace}?", yes):
        raise typer.Exit(1)
    try:
        done = run_prune(cluster, facts, plan, removals, kept, audit_file, say_steps(console),
                         lambda: gather(opts, no_pod=False, verify=ReadBack(mode="recorded"), quiet=True,
                                        copies=False))
    except ActionFailed as exc:
        console.print(f"[red]✗[/] {escape(str(exc))}")
        raise typer.Exit(1)
    console.print(("[green]✓ verified[/]" if done.verified else "[red]✗ not verified[/]")
                  + f": {len(done.gone)} of {plural(len(removals), 'backup')} removed; "
                  + ("the kept backups are unchanged and a good one is among them" if done.kept_ok
                     else "the kept backups are NOT all unchanged, or no good one is among them"))
    raise typer.Exit(0 if done.verified else 1)
