"""`copy`, and the copies side of `list`, `restore` and `prune`: backups kept off dv-bar-pvc.

The commands only ask and render; which backups to copy and where the copy program runs is
`dvdoctor.flows.copies`, the stream and restic are `dvdoctor.copies`.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console

from ..render.output import console as make_console
from rich.markup import escape

from . import app, examples
from .check_cmd import Output, gather
from .context import Options
from .fix_cmd import confirm
from .locking import break_lock_option, take_lock
from ..facts.probe import EVERY_UNPROVEN

if TYPE_CHECKING:
    from ..copies.where import Run

def _fail(console: Console, failed) -> None:
    """The copy program's failure (dvdoctor.flows.copies.ProgramFailed): one line, exit 2, for the
    user's settings; else one line per error, exit 1."""
    from ..core.errors import UsageError

    if failed.usage:
        raise UsageError(str(failed))
    for e in failed.errors:
        console.print(f"[red]✗[/] {failed.what}: {escape(e)}")
    raise typer.Exit(1)


@contextmanager
def _said(console: Console):
    """The flow's decisions run here: a failure of the copy program is rendered (`_fail`)."""
    from ..flows.copies import ProgramFailed

    try:
        yield
    except ProgramFailed as failed:
        _fail(console, failed)


@app.command(short_help="Copy good backups off the volume, into the restic repository.", epilog=examples("dvdoctor -n cpd30 copy --yes", "dvdoctor -n cpd30 copy --all-new --yes"))
def copy(
    ctx: typer.Context,
    from_ts: Optional[str] = typer.Option(None, "--from", metavar="TIMESTAMP",
                                          help="Copy this backup (default: the restore point's)."),
    all_new: bool = typer.Option(False, "--all-new", help="Copy every good backup not copied yet."),
    init: bool = typer.Option(False, "--init", help="Create the repository first (restic init, compressed format)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Copy without asking."),
    output: Output = typer.Option(Output.table, "-o", "--output", metavar="FORMAT", help="table or json."),
    audit_file: Optional[Path] = typer.Option(None, "--audit-file", metavar="PATH", help="Where changes are logged."),
    break_lock: bool = break_lock_option(),
) -> None:
    """Copy good backups into the restic repository of `copies:` in dvdoctor.yaml.

    Only backups that read back whole are copied; a backup already copied is skipped. Each copy
    keeps the component tarballs decompressed, so restic stores only what changed since the last
    one, compressed and encrypted.
    """
    from ..core.units import human_bytes, is_timestamp
    from ..core.errors import UsageError
    from ..copies.where import runner
    from ..flows.copies import ProgramFailed, audited_run, choose, init_repository, listed
    from ..repair.owner import refuse_while_active

    opts: Options = ctx.obj
    if from_ts is not None and not is_timestamp(from_ts):
        raise UsageError(f"--from {from_ts!r}: give a backup's timestamp, YYYY-MM-DD-HH-MM-SS (dvdoctor list shows them)")
    if from_ts and all_new:
        raise UsageError("--from and --all-new: give one of them")
    cluster = opts.open_cluster()
    console = make_console(stderr=output == Output.json)
    settings = opts.settings
    # taken before the facts: no prune removes a backup while it is read
    ctx.call_on_close(take_lock(cluster, f"{ctx.command_path}", break_lock, console, settings.names).release)
    # a copy only reads the volume (its Job mounts it read-only): the inspection tries no write either
    facts = gather(opts, no_pod=False, verify=EVERY_UNPROVEN, quiet=output == Output.json, probe_writes=False)
    # in a cluster the copy is a Job in DV's namespace, which DV's own job owns while it runs
    refuse_while_active(facts, ctx.command_path + (" --init" if init else ""))
    run = runner(cluster, facts, settings.copies, progress=lambda m: console.print(f"  → {escape(m)}"))
    if init:
        with _said(console):
            init_repository(run)
        console.print("[green]✓[/] created the restic repository")
    # after --init the facts listed a repository that was not there yet: list the new one
    with _said(make_console(stderr=True)):
        copied = {s["backup"] for s in listed(facts, run, again=init) if s.get("complete")}
    todo, notes = choose(facts, from_ts, all_new, copied)
    skipped = [n.split(":", 1)[0] for n in notes if n.endswith("already copied")]
    for n in notes:
        console.print(f"[dim]{escape(n)}[/]")
    if not todo:
        console.print("[green]✓[/] nothing to copy")
        if output == Output.json:
            sys.stdout.write(json.dumps({"copied": [], "skipped": sorted(skipped)}, indent=2) + "\n")
        raise typer.Exit(0)
    if not confirm(console, f"Copy {len(todo)} backup{'s' if len(todo) != 1 else ''} "
                            f"({', '.join(todo)}) into the repository?", yes):
        raise typer.Exit(1)
    outcome = audited_run(cluster, facts, audit_file, "copy", run, ("copy", *todo),
                       f"copy {', '.join(todo)} into the restic repository")
    done = [r for r in outcome.records if "copied" in r]
    for r in done:
        console.print(f"[green]✓[/] copied {escape(r['copied'])}: read {human_bytes(r['read'])}, "
                      f"{human_bytes(r['added'])} of new data before compression")
    for r in outcome.records:
        if "skipped" in r:
            console.print(f"[dim]{escape(r['skipped'])}: {escape(r['why'])}[/]")
    if output == Output.json:
        sys.stdout.write(json.dumps({"copied": done, "failed": [r for r in outcome.records if "failed" in r]},
                                    indent=2) + "\n")
    if outcome.rc != 0:
        for r in outcome.records:
            if "failed" in r:
                console.print(f"[red]✗[/] {escape(r['failed'])}: {escape(r['why'])}")
        if not any("failed" in r for r in outcome.records):
            _fail(console, ProgramFailed.of(outcome, "copy"))
        raise typer.Exit(1)


def show_copies(opts: Options, output: Output, verify: bool = False) -> None:
    """`list --copies`: this DV instance's copies in the repository, oldest first. `verify`: then
    `restic check` (no data read), since a copy listed complete does not restore once a pack it
    shares was lost; exit 1 when the repository is damaged."""
    from ..core.units import human_bytes
    from ..copies.where import repository_damage, runner
    from ..flows.copies import listed

    facts = gather(opts, no_pod=False, verify=False, quiet=True)
    run = runner(opts.open_cluster(), facts, opts.settings.copies)
    with _said(make_console(stderr=True)):
        snaps = listed(facts, run)
    damage = repository_damage(run) if verify else None
    if output == Output.json:
        doc: dict = {"namespace": facts.namespace, "copies": snaps}
        if verify:
            doc["repository_check"] = {"ok": damage is None, "error": damage}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        if damage:
            raise typer.Exit(1)
        return
    rows = [[s["backup"], s["snapshot"], s["time"][:19].replace("T", " "), human_bytes(s["tarball"]),
             human_bytes(s["added"]), "complete" if s["complete"] else "incomplete (stopped, or restic check failed)",
             s["instance"]] for s in snaps]
    from ..render.output import Column, print_table

    columns = [Column("backup", whole=True), Column("snapshot", whole=True), Column("taken", whole=True),
               Column("tarball", justify="right"), Column("new data (uncompressed)", justify="right"), Column("state"),
               Column("instance", whole=True)]
    print_table(make_console(), columns, rows)
    whole = sum(1 for s in snaps if s["complete"])
    broken = len(snaps) - whole
    print(f"{whole} cop{'y' if whole == 1 else 'ies'} of this DV instance in the repository"
          + (f"; {broken} incomplete (stopped, or made while restic check found the repository damaged; dvdoctor prune --copies removes it once restic check passes)" if broken else ""))
    if verify and damage is None:
        print("✓ restic check: every pack the repository's index names is there (the data was not read)")
    elif damage:
        print(f"✗ {damage}; a copy listed complete above does not restore if it shares those packs")
        raise typer.Exit(1)


def _render_forget_plan(plan: dict) -> None:
    """One row a copy, oldest first: removed or kept, and why (restic's reasons: newest, daily...)."""
    from ..render.output import Column, print_table

    rows = sorted([[e["backup"], e["snapshot"], verb, ", ".join(e["why"])]
                   for verb, key in (("remove", "remove"), ("keep", "keep")) for e in plan[key]])
    print_table(make_console(), [Column("backup", whole=True), Column("snapshot", whole=True), Column("plan"),
                                 Column("why")], rows)


def prune_copies(opts: Options, policy: dict[str, int], yes: bool, dry_run: bool,
                 audit_file: Optional[Path] = None, output: Output = Output.table) -> int:
    """`prune --copies`: restic forget + prune of this instance's copies by the policy given.

    The plan shown (and printed by --dry-run) is restic's own dry run of the same forget; after a real
    run, what was removed is held against it, so a plan that was not what happened cannot pass."""
    from ..copies.where import runner
    from ..core.words import plural
    from ..flows.copies import audited_run, check_policy, forget_plan, forgotten
    from ..repair.owner import refuse_while_active

    as_json = output == Output.json
    console = make_console(stderr=as_json)
    check_policy(policy)
    facts = gather(opts, no_pod=False, verify=False, quiet=as_json)
    if not dry_run:  # in a cluster the prune is a Job in DV's namespace, which DV's own job owns while it runs
        refuse_while_active(facts, "dvdoctor prune --copies")
    cluster = opts.open_cluster()
    run = runner(cluster, facts, opts.settings.copies)
    with _said(make_console(stderr=True)):
        plan = forget_plan(run, policy)
    remove, keep = plan["remove"], plan["keep"]
    said = ", ".join(f"{n} {k}" for k, n in policy.items() if n)
    console.print(f"copies: {len(remove) + len(keep)}; keep {said} and always the newest")
    if not as_json:
        _render_forget_plan(plan)
    shown = {"namespace": facts.namespace, "policy": policy, "dry_run": dry_run, "remove": remove, "keep": keep}
    if dry_run:
        console.print(f"[dim]--dry-run: nothing was changed; {plural(len(remove), 'copy', 'copies')} would be "
                      f"removed, {len(keep)} kept.[/]")
        if as_json:
            sys.stdout.write(json.dumps(shown, indent=2) + "\n")
        return 0
    if not remove:
        console.print("[green]✓[/] nothing to remove: the policy keeps every copy")
        if as_json:
            sys.stdout.write(json.dumps({**shown, "removed": []}, indent=2) + "\n")
        return 0
    if not confirm(console, f"Remove {plural(len(remove), 'copy', 'copies')} (above) and free their space in the "
                            "repository?", yes):
        return 1
    outcome = audited_run(cluster, facts, audit_file, "prune", run, ("forget", *(f"{k}={n}" for k, n in policy.items())),
                       f"forget the copies outside the policy ({said}) and prune the repository", write=True,
                       known={e["snapshot"]: e["backup"] for e in remove + keep})
    with _said(console):
        removed, planned = forgotten(outcome, plan)
    if as_json:
        sys.stdout.write(json.dumps({**shown, "removed": removed}, indent=2) + "\n")
    if removed != planned:
        console.print(f"[red]✗[/] removed {escape(', '.join(removed)) or 'nothing'}, not the copies planned "
                      f"({escape(', '.join(planned))}): list them with dvdoctor list --copies")
        return 1
    console.print(f"[green]✓[/] removed {plural(len(removed), 'copy', 'copies')}, as planned; {len(keep)} kept")
    return 0


def rehydrate_for_restore(ctx: typer.Context, wanted: str, yes: bool, break_lock: bool, *,
                          accept_other: bool = False, accept_unverified: bool = False,
                          audit_file: Optional[Path] = None) -> str:
    """`restore --from-copy TS|SNAPSHOT`: bring the copy back onto dv-bar-pvc as a backup folder,
    checked against the checksums recorded when it was copied; returns its timestamp. What is
    refused and when, and what is repaired first, is `dvdoctor.flows.from_copy`; this asks and renders."""
    from ..copies.where import runner
    from ..flows import from_copy
    from ..flows.copies import ProgramFailed, listed
    from ..repair.fixer import FixOptions
    from ..repair.owner import refuse_while_active
    from .fix_cmd import repair

    opts: Options = ctx.obj
    console = make_console()
    cluster = opts.open_cluster()
    # held until the restore that follows ends (its own take is nested in this one)
    command = f"{ctx.command_path} --from-copy {wanted}"
    ctx.call_on_close(take_lock(cluster, command, break_lock, console, opts.settings.names).release)
    facts = gather(opts, no_pod=False, verify=False, quiet=False)
    refuse_while_active(facts, command)  # it writes onto the backup volume, then restores
    with _said(make_console(stderr=True)):
        copies = listed(facts, runner(cluster, facts, opts.settings.copies))
    snap = from_copy.choose(facts, copies, from_copy.Wanted(wanted, yes, accept_other, accept_unverified))

    def collect(every: bool):
        return gather(opts, no_pod=False, verify=EVERY_UNPROVEN if every else False, quiet=True)

    def fixes(asking: bool):
        return lambda f, ids: repair(opts, cluster, f, ids, FixOptions(), console, yes=yes or not asking,
                                     audit_file=audit_file)

    done = from_copy.write_back(cluster, facts, snap, run_on=lambda f: runner(cluster, f, opts.settings.copies),
                                repair=fixes(asking=True), collect=collect, consent=lambda q: confirm(console, q, yes),
                                say=console.print, audit_file=audit_file)
    if done.outcome is None:
        raise typer.Exit(1)
    if done.outcome.rc != 0:
        for r in done.outcome.records:
            if "failed" in r:
                console.print(f"[red]✗[/] {escape(r['why'])}")
        _fail(console, ProgramFailed.of(done.outcome, "rehydrate"))
    said = next((r for r in done.outcome.records if "rehydrated" in r), {})
    console.print(f"[green]✓[/] {escape(snap['backup'])} is back on {escape(done.facts.names.bar_pvc)}"
                  + (", in place of the damaged folder" if said.get("replaced") else "")
                  + ", its component streams identical to the ones copied (sha256)")
    if said.get("left"):
        console.print(f"[yellow]![/] left on {escape(done.facts.names.bar_pvc)}: {escape(str(said['left']))}")
    # the restore point of a volume made anew: no question, the person asked for this backup
    if not from_copy.point_at_it_if_unset(done.facts, fixes(asking=False), collect):
        raise typer.Exit(1)
    return snap["backup"]
