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

from . import redact
from .facts import Facts
from .registry import Problem, Result

SYMBOL = {"pass": "[green]✓[/]", "warn": "[yellow]![/]", "fail": "[red]✗[/]", "skip": "[dim]-[/]", "crash": "[magenta]✗[/]",
          "suppressed": "[dim]~[/]"}
REPORT_SCHEMA = "dvdoctor/report/v1"


def summary(results: list[Result]) -> dict[str, int]:
    counts = Counter(r.status for r in results)
    return {k: counts.get(k, 0) for k in ("pass", "warn", "fail", "skip", "crash", "suppressed")}


def to_dict(facts: Facts, results: list[Result]) -> dict:
    return {
        "schema": REPORT_SCHEMA,
        "namespace": facts.namespace,
        "source": facts.data["source"],
        "phase": facts.phase,
        "collected_at": facts.data["collected_at"],
        "summary": summary(results),
        "results": [r.to_dict() for r in results],
    }


def to_json(facts: Facts, results: list[Result]) -> str:
    return json.dumps(to_dict(facts, results), indent=2)


def report_schema() -> dict:
    return json.loads(resources.files("dvdoctor").joinpath("schemas", "report.schema.json").read_text())


def redacted(results: list[Result]) -> list[Result]:
    """The results as every format writes them: messages, evidence and reasons through dvdoctor.redact.

    Evidence quotes logs, env and events, so a report may otherwise carry what collect saw."""
    def problem(p: Problem) -> Problem:
        return dataclasses.replace(p, message=redact.text(p.message), evidence=tuple(redact.text(e) for e in p.evidence),
                                   object=redact.text(p.object) if p.object else p.object)
    return [dataclasses.replace(r, problems=[problem(p) for p in r.problems],
                                reason=redact.text(r.reason) if r.reason else r.reason) for r in results]


def render(console: Console, facts: Facts, results: list[Result]) -> None:
    """The report for people, on `check` and before a backup or restore (the gates): redacted here too."""
    results = redacted(results)
    where = facts.data["source"].get("where", facts.namespace)
    phase = "" if facts.phase == "now" else f", gate before a {facts.phase}"
    console.print(f"[bold]dvdoctor[/] checks of DV in namespace [bold]{escape(facts.namespace)}[/] ({escape(where)}{phase})")
    width = max((len(r.check.id) for r in results), default=0)
    for r in results:
        label = escape(r.check.title)
        tail = ""
        if r.status == "skip":
            tail = f" [dim](skipped: {escape(r.reason or '')})[/]"
        elif r.status == "crash":
            tail = f" [magenta](check crashed: {escape(r.reason or '')}; this is a dvdoctor bug)[/]"
        elif r.ignored:
            tail = " [yellow](ignored by --ignore-check)[/]"
        console.print(f" {SYMBOL[r.status]} {r.check.id:<{width}} {label}{tail}")
        for p in r.problems:
            mark = f"[dim](suppressed: {escape(p.suppressed)})[/] " if p.suppressed else ""
            console.print(f"     {mark}{escape(p.message)}")
            for line in p.evidence:
                console.print(f"       [dim]{escape(line)}[/]")
        if any(not p.suppressed for p in r.problems):
            if r.check.fix_command:
                console.print(f"     [bold]fix:[/] {r.check.fix_command}")
            else:
                console.print(f"     [bold]manual repair:[/] dvdoctor explain {r.check.id}")
    s = summary(results)
    parts = [f"{s['pass']} passed", f"{s['warn']} warnings", f"{s['fail']} failed"]
    if s["skip"]:
        parts.append(f"{s['skip']} skipped")
    if s["crash"]:
        parts.append(f"{s['crash']} crashed")
    if s["suppressed"]:
        parts.append(f"{s['suppressed']} suppressed")
    console.print(", ".join(parts))
    failing = [r.check.id for r in results if r.status in ("fail", "crash")]
    if failing:
        console.print(
            f"[dim]To leave a check out: --skip {failing[0]}; to see its runbook text: dvdoctor explain {failing[0]}[/]"
        )
