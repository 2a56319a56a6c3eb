"""Check results for people (a doctor-style report) and for machines (JSON with a schema).

Every problem ends with the command that solves it, or with where to read the manual steps, and
the summary says how to skip or downgrade a check, as kubeadm's preflight does.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from importlib import resources

from rich.console import Console
from rich.markup import escape

from ..core import redact
from ..facts.model import Facts
from ..repair.owner import fix_waits_for
from ..verdicts.registry import ERROR, FAILED, INCOMPLETE, WARNING, Problem, Result, Run, exit_code
from ..core.words import plural

SYMBOL = {"pass": "[green]✓[/]", "warn": "[yellow]![/]", "fail": "[red]✗[/]", "skip": "[dim]-[/]", "crash": "[magenta]✗[/]",
          "suppressed": "[dim]~[/]", "unknown": "[yellow]?[/]"}
REPORT_SCHEMA = "dvdoctor/report/v1"


def summary(results: list[Result]) -> dict[str, int]:
    """How many checks ended each way; the counts add up to the results.

    A skip is split in two, as the summary line says it: `skip` is skipped by choice or not
    applicable (the verdict stays complete), `could_not_run` is what makes it incomplete (exit 3).
    """
    counts = Counter("could_not_run" if r.status == "skip" and r.incomplete else r.status for r in results)
    return {k: counts.get(k, 0) for k in ("pass", "warn", "fail", "skip", "could_not_run", "crash", "suppressed")}


def to_dict(facts: Facts, results: list[Result], *, left_out: list[str] | None = None, fail_on: str = ERROR,
            run: Run = Run()) -> dict:
    return {
        "schema": REPORT_SCHEMA,
        "namespace": facts.namespace,
        "source": facts.data["source"],
        "phase": run.phase,
        "collected_at": facts.data["collected_at"],
        "left_out": list(left_out or []),
        "exit_code": exit_code(results, fail_on),
        "summary": summary(results),
        "results": [_result_dict(facts, r) for r in results],
    }


def to_json(facts: Facts, results: list[Result], *, left_out: list[str] | None = None, fail_on: str = ERROR,
            run: Run = Run()) -> str:
    return json.dumps(to_dict(facts, results, left_out=left_out, fail_on=fail_on, run=run), indent=2)


def report_schema() -> dict:
    return json.loads(resources.files("dvdoctor").joinpath("schemas", "report.schema.json").read_text())


def redacted(results: list[Result]) -> list[Result]:
    """The results as every format writes them: messages, evidence and reasons through dvdoctor.core.redact.

    Evidence quotes logs, env and events, so a report may otherwise carry what collect saw."""
    def problem(p: Problem) -> Problem:
        return dataclasses.replace(p, message=redact.text(p.message), evidence=tuple(redact.text(e) for e in p.evidence),
                                   object=redact.text(p.object) if p.object else p.object)
    return [dataclasses.replace(r, problems=[problem(p) for p in r.problems],
                                reason=redact.text(r.reason) if r.reason else r.reason) for r in results]


def repair_line(facts: Facts, result: Result) -> tuple[str, str] | None:
    """What repairs a result's findings, as (label, text): its fix command; none while a DV BAR job
    runs that the fix would be refused under, and what to do instead; or the runbook's manual steps.
    None when nothing is to repair (no finding, or every one suppressed)."""
    if not any(not p.suppressed for p in result.problems):
        return None
    if not result.check.fix_command:
        return "manual repair", f"dvdoctor explain {result.check.id}"
    return "fix", fix_waits_for(facts, result.check.fix or "") or result.check.fix_command


def _result_dict(facts: Facts, result: Result) -> dict:
    """A result as JSON: `fix` is its repair command, null when it has none (a person repairs it) or
    while a DV BAR job runs that it would be refused under (`fix_waits` says which and what to do),
    whether or not it found something: a script never gets a command that would be refused."""
    out = result.to_dict()
    waits = fix_waits_for(facts, result.check.fix) if result.check.fix else None
    if waits:
        out["fix"] = None
    out["fix_waits"] = waits
    return out


def summary_line(results: list[Result], left_out: list[str] | None = None) -> str:
    """The counts in words: "19 passed, 1 warning, 0 failed, 2 could not run (…), 3 left out (…)"."""
    s = summary(results)
    parts = [f"{s['pass']} passed", plural(s["warn"], "warning"), f"{s['fail']} failed"]
    if s["could_not_run"]:
        parts.append(f"{s['could_not_run']} could not run")
    if s["skip"]:
        parts.append(f"{s['skip']} skipped by choice or not applicable")
    if s["crash"]:
        parts.append(f"{s['crash']} crashed")
    if s["suppressed"]:
        parts.append(f"{s['suppressed']} suppressed")
    if left_out:
        parts.append(f"{len(left_out)} left out by --only/--skip")
    return ", ".join(parts)


def verdict_line(results: list[Result], fail_on: str = ERROR, left_out: list[str] | None = None) -> str:
    """The verdict in one line, with its exit code, so a log says what a pipeline's status means."""
    code = exit_code(results, fail_on)
    if code == FAILED:
        bad = [r.check.id for r in results if r.status in ("fail", "crash") or (fail_on == WARNING and r.status == "warn")]
        return f"verdict: failed (exit 1): {', '.join(bad)}"
    if code == INCOMPLETE:
        unknown = [r.check.id for r in results if r.status == "skip" and r.incomplete]
        return (f"verdict: incomplete (exit 3): {plural(len(unknown), 'check')} could not run "
                f"({', '.join(unknown)}); their answer is unknown")
    chosen = [r.check.id for r in results if r.status == "skip" and not r.incomplete]
    extra = []
    if chosen:
        extra.append(f"skipped by choice or not applicable: {', '.join(chosen)}")
    if left_out:
        extra.append(f"left out: {', '.join(left_out)}")
    return "verdict: clean (exit 0)" + (f"; {'; '.join(extra)} (these do not make it incomplete)" if extra else "")


def render(console: Console, facts: Facts, results: list[Result], *, hint: str | None = "check",
           left_out: list[str] | None = None, fail_on: str = ERROR, run: Run = Run()) -> None:
    """The report for people: one line per check, each finding and its evidence one per line.

    `hint` names the command whose options the closing hint may suggest (`check`), or None when
    the caller gives its own (a gate names `backup --ignore-check`, never an option it lacks).
    """
    results = redacted(results)
    where = facts.data["source"].get("where", facts.namespace)
    phase = "" if run.phase == "now" else f", gate before a {run.phase}"
    console.print(f"[bold]dvdoctor[/] checks of DV in namespace [bold]{escape(facts.namespace)}[/] ({escape(where)}{phase})")
    width = max((len(r.check.id) for r in results), default=0)
    for r in results:
        label = escape(r.check.title)
        tail = ""
        if r.status == "skip":
            why = "could not run" if r.incomplete else "skipped"
            tail = f" [{'yellow' if r.incomplete else 'dim'}]({why}: {escape(r.reason or '')})[/]"
        elif r.status == "crash":
            tail = f" [magenta](check crashed: {escape(r.reason or '')}; this is a dvdoctor bug)[/]"
        elif r.ignored:
            tail = " [yellow](ignored by --ignore-check)[/]"
        elif r.reason:
            tail = f" [dim](note: {escape(r.reason)})[/]"
        symbol = SYMBOL["unknown"] if r.status == "skip" and r.incomplete else SYMBOL[r.status]
        console.print(f" {symbol} {r.check.id:<{width}} {label}{tail}")
        # on a terminal, the lines that carry paths, timestamps and commands are not broken by rich:
        # the terminal wraps them as it shows them, and a copied line is the whole line (a command
        # cut after `--issue` pasted as two commands)
        for p in r.problems:
            mark = f"[dim](suppressed: {escape(p.suppressed)})[/] " if p.suppressed else ""
            console.print(f"     {mark}{escape(p.message)}", soft_wrap=True)
            for line in p.evidence:
                console.print(f"       [dim]{escape(line)}[/]", soft_wrap=True)
        repair = repair_line(facts, r)
        if repair:
            console.print(f"     [bold]{repair[0]}:[/] {escape(repair[1])}", soft_wrap=True)
    console.print(summary_line(results, left_out))
    console.print(verdict_line(results, fail_on, left_out))
    failing = [r.check.id for r in results if r.status in ("fail", "crash")]
    if failing and hint == "check":
        console.print(
            f"[dim]To leave a check out: dvdoctor check --skip {failing[0]}; "
            f"to see its runbook text: dvdoctor explain {failing[0]}[/]", soft_wrap=True
        )
