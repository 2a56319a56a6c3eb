"""`check`, `checks`, `explain` and `collect`: find every known failure mode, with evidence."""

from __future__ import annotations

import dataclasses
import json
import sys
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from . import app, examples
from ..render.output import console
from ..facts.probe import EVERY_UNPROVEN
from .context import Options


class Output(str, Enum):
    table = "table"
    json = "json"


class ReportFormat(str, Enum):
    """What `check -o` writes: the table and json of every listing, plus the CI formats."""

    table = "table"
    json = "json"
    junit = "junit"
    sarif = "sarif"


class Phase(str, Enum):
    now = "now"
    backup = "backup"
    restore = "restore"


class FailOn(str, Enum):
    error = "error"
    warn = "warn"


def gather(opts: Options, *, no_pod: bool, verify: bool, quiet: bool, copies: bool = True,
           probe_writes: bool = True):
    """Collect facts from the cluster or lab the options name, with a status line on a terminal
    (`copies=False`: the copies are not listed; `probe_writes=False`: no write is tried on the
    backup volume; see dvdoctor.facts.collect.collect)."""
    from ..facts.collect import collect

    cluster = opts.open_cluster()
    err = console(stderr=True)
    if quiet or not err.is_terminal:
        return collect(cluster, opts.settings, use_pod=not no_pod, verify=verify, source=opts.source, copies=copies,
                       probe_writes=probe_writes)
    with err.status("collecting facts") as status:
        return collect(cluster, opts.settings, use_pod=not no_pod, verify=verify, source=opts.source,
                       progress=lambda msg: status.update(msg), copies=copies, probe_writes=probe_writes)


@app.command(short_help="Find every known backup/restore failure, with evidence and fix.", epilog=examples("dvdoctor -n cpd30 check", "dvdoctor check --for backup -o junit > preflight.xml"))
def check(
    ctx: typer.Context,
    output: ReportFormat = typer.Option(
        ReportFormat.table, "-o", "--output", metavar="FORMAT", help="table for people, json for scripts, junit or sarif for CI."
    ),
    output_file: List[str] = typer.Option(
        [], "--output-file", metavar="FMT=PATH",
        help="Also write the report in format FMT (table, json, junit, sarif) to PATH; repeatable.",
    ),
    phase: Phase = typer.Option(
        Phase.now, "--for", metavar="PHASE", help="now: the namespace as it is; backup/restore: the gate dvdoctor runs before one."
    ),
    only: List[str] = typer.Option([], "--only", metavar="ID[,ID…]", help="Run only these check ids (comma-separated or repeated)."),
    skip: List[str] = typer.Option([], "--skip", metavar="ID[,ID…]", help="Leave these check ids out."),
    ignore: List[str] = typer.Option([], "--ignore-check", metavar="ID[,ID…]", help="Report these checks' failures as warnings."),
    fail_on: FailOn = typer.Option(FailOn.error, "--fail-on", metavar="LEVEL", help="warn: warnings also make the exit code 1."),
    no_pod: bool = typer.Option(False, "--no-pod", help="Don't start the short-lived pod that inspects the backup volume."),
    verify: bool = typer.Option(False, "--verify", help="Read back every backup (combined and inner tarballs), a recorded read-back too, beyond the 4 GiB a run reads by default, and run restic check on the copies' repository (copies-damaged); slow on big backups."),
    from_bundle: Optional[Path] = typer.Option(None, "--from", metavar="PATH", help="Analyse facts saved by `dvdoctor collect -o FILE`, or a support bundle (`collect --bundle`), instead of a cluster."),
) -> None:
    """Find every known DV backup/restore failure, with evidence and the command that fixes it.

    --for backup or --for restore runs exactly the gate `backup` or `restore` runs before it changes
    anything, with the same verdict.

    Exit codes: 0 nothing failed (warnings allowed unless --fail-on warn); 1 a check failed or
    crashed; 2 could not run (bad input, no cluster, no DV); 3 the verdict is incomplete: a check
    could not run (no rights, an inspection pod that failed, an API that did not answer), or a check
    named with --only did not run. Checks you leave out (--only, --skip, --no-pod) do not make it
    incomplete.
    """
    from ..facts.model import Facts
    from ..flows.gate import handled_by_flow
    from ..render.formats import parse_output_files, write, write_files
    from ..core.errors import UsageError
    from ..verdicts.registry import ERROR, WARNING, Run, applies_in, exit_code, left_out, load_all, resolve_ids, run_checks

    opts: Options = ctx.obj
    targets = parse_output_files(output_file)
    for ids, what in ((only, "--only"), (skip, "--skip"), (ignore, "--ignore-check")):
        resolve_ids(ids, what)  # unknown ids fail before any cluster call
    named = set(resolve_ids(only, "--only"))
    both = sorted(named & set(resolve_ids(skip, "--skip")))
    if both:
        raise UsageError(f"--only and --skip both name {', '.join(both)}: say whether to run it or leave it out")
    if only or skip:  # a run of no check would say "clean" about nothing
        chosen = set(left_out(phase.value, only, skip))
        if all(c.id in chosen for c in load_all().values() if applies_in(c, phase.value)):
            raise UsageError(f"--only/--skip leave no check to run for --for {phase.value} "
                             "(`dvdoctor checks` shows when each applies)")
    if from_bundle is not None:
        facts = Facts.load(from_bundle, opts.settings)
    else:
        # a restore's gate reads the backups back: the same facts the restore judges by
        facts = gather(opts, no_pod=no_pod, verify=True if verify else (EVERY_UNPROVEN if phase == Phase.restore else False),
                       quiet=output != ReportFormat.table)
    # as the gate does, leave out what the flow takes care of itself, unless asked for by name
    skip = list(skip) + [c for c in handled_by_flow(phase.value) if c not in skip and c not in named]
    run = Run(phase=phase.value, suppressions=opts.suppressions)
    results = run_checks(facts, run, only=only, skip=skip, ignore=ignore)
    # a check asked for by name (--only) that did not run leaves the question unanswered, whatever
    # the reason (copies-damaged without --verify): the verdict is incomplete, never clean
    results = [dataclasses.replace(r, incomplete=True) if r.status == "skip" and r.check.id in named else r
               for r in results]
    # checks a gate takes care of itself are not the user's choice: they are not "left out"
    chosen = [c for c in left_out(phase.value, only, skip) if c not in handled_by_flow(phase.value)]
    level = WARNING if fail_on == FailOn.warn else ERROR
    if phase != Phase.now:
        # the gate's command refuses under DV's own running job before its checks (exit 2, one line):
        # so does its gate here, before any report, which would say "clean" for a command that is refused;
        # dvcli.sh's list job is the gate's leftover-bar-pods, as in the command
        from ..repair.owner import refuse_while_active

        refuse_while_active(facts, f"dvdoctor {phase.value}", frozenset({facts.names.list_job}))
    write_files(targets, facts, results, level, chosen, run)
    write(output.value, facts, results, sys.stdout, level, chosen, run)
    raise typer.Exit(exit_code(results, level))


@app.command(short_help="Save DV's namespace facts for check --from, or a support bundle.", epilog=examples("dvdoctor -n cpd30 collect -o facts.json && dvdoctor check --from facts.json",
                             "dvdoctor -n cpd30 collect --bundle dv-support.tar.gz"))
def collect(
    ctx: typer.Context,
    output: Optional[Path] = typer.Option(None, "-o", "--output", metavar="PATH", help="Where to write the facts (JSON), for `check --from`."),
    bundle: Optional[Path] = typer.Option(
        None, "--bundle", metavar="PATH", help="Also write a support bundle (tar.gz): the facts, DV's BAR job pod logs, dvdoctor's audit log; "
        "tokens and secret values redacted."),
    audit_file: Optional[Path] = typer.Option(None, "--audit-file", metavar="PATH", help="The audit log to put in the bundle (default: dvdoctor's own)."),
    no_pod: bool = typer.Option(False, "--no-pod", help="Don't inspect the backup volume from a short-lived pod."),
    verify: bool = typer.Option(False, "--verify", help="Read back every backup (combined and inner tarballs), a recorded read-back too, beyond the 4 GiB a run reads by default."),
) -> None:
    """Save the facts of DV's namespace for `dvdoctor check --from`, or a support bundle with logs.

    Secrets and tokens are never saved.
    """
    from ..core.errors import UsageError
    from ..core.files import check_target, distinct_targets

    opts: Options = ctx.obj
    if output is None and bundle is None:
        raise UsageError("say where to write: -o FILE.json (the facts) and/or --bundle FILE.tar.gz (a support bundle)")
    for path, what in ((output, "-o"), (bundle, "--bundle")):
        if path is not None:
            check_target(path, what)
    distinct_targets([(what, path) for path, what in ((output, "-o"), (bundle, "--bundle")) if path is not None])
    facts = gather(opts, no_pod=no_pod, verify=verify, quiet=False)
    err = console(stderr=True)
    skipped = facts.data["skipped"]
    if output is not None:
        from ..facts.bundle import facts_json
        from ..core.files import write_atomic

        text = facts_json(facts)
        write_atomic(output, text, 0o600, what="-o")
        err.print(f"wrote {escape(str(output))} ({len(text)} bytes)"
                  + (f"; not collected: {escape(', '.join(skipped))}" if skipped else ""))
    if bundle is not None:
        from ..repair.audit import default_path
        from ..facts.bundle import write as write_bundle

        members = write_bundle(bundle, facts, opts.open_cluster(), audit_file or default_path())
        err.print(f"wrote {escape(str(bundle))}: {escape(', '.join(members))}")


@app.command("checks", short_help="List every check: id, severity, when it applies, its fix.", epilog=examples("dvdoctor checks", "dvdoctor checks -o json"))
def list_checks(
    output: Output = typer.Option(Output.table, "-o", "--output", metavar="FORMAT", help="table or json."),
) -> None:
    """List every check: id, severity, when it applies, whether a fix repairs it, and its title."""
    from ..render.output import Column, print_table
    from ..verdicts.registry import load_all

    checks = load_all()
    if output == Output.json:
        sys.stdout.write(json.dumps([c.to_dict() for c in checks.values()], indent=2) + "\n")
        return
    columns = [Column("id", whole=True), Column("severity"), Column("applies"), Column("fix", whole=True),
               Column("title")]
    rows = [(c.id, c.severity, ",".join(sorted(c.applies)), "auto" if c.fix else "manual", c.title)
            for c in checks.values()]
    print_table(console(), columns, rows)


@app.command(short_help="Print one check's runbook text: symptom, cause, repair.", epilog=examples("dvdoctor explain stale-bar-marker"))
def explain(check_id: str = typer.Argument(..., metavar="ID", hidden=True)) -> None:
    """Print one check's runbook text: symptom, cause, repair.

    ID is a check id, as `dvdoctor checks` lists them.
    """
    from ..verdicts.registry import load_all, resolve_ids

    chk = load_all()[resolve_ids([check_id], "explain")[0]]
    out = console()
    out.print(f"[bold]{chk.id}[/]: {chk.title}  [dim]({chk.severity}; applies: {', '.join(sorted(chk.applies))})[/]\n")
    out.print(chk.doc, markup=False, highlight=False, soft_wrap=True)
    out.print()
    out.print(f"fix: {chk.fix_command}" if chk.fix_command else "fix: manual (see Repair above)")
