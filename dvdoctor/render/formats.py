"""Every way `dvdoctor check` writes its findings: table, json, junit and sarif, from one place.

Pipelines read check results in the formats their tools already show: JUnit XML (test reports in
Jenkins, GitLab, Azure DevOps) and SARIF 2.1.0 (code-scanning views). The table and JSON report
stay in dvdoctor.render.report; this module picks a writer by name, so `-o` and `--output-file FMT=PATH`
share one list of formats and one way to write each.
"""

from __future__ import annotations

import io
import json
import re
import socket
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable, TextIO

from .. import __version__
from ..core.errors import UsageError
from ..facts.model import Facts
from ..core.files import check_target, distinct_targets, write_atomic
from .output import console
from ..verdicts.registry import ERROR, WARNING, Check, Result, Run
from .report import redacted, render, repair_line, to_json

FORMATS = ("table", "json", "junit", "sarif")
SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
#: Where a rule's help page lives in the repository (docs/checks/<id>.md, made by dvdoctor.render.docs).
DOCS_BASE = "docs/checks"


def _failing(result: Result, fail_on: str) -> bool:
    """Whether a result fails the run, the same rule as registry.exit_code, so reports agree with it."""
    return result.status == "fail" or (fail_on == WARNING and result.status == "warn")


def _problem_text(facts: Facts, result: Result) -> str:
    lines = []
    for p in result.problems:
        lines.append(("[suppressed: " + p.suppressed + "] " if p.suppressed else "") + p.message)
        lines += [f"  {e}" for e in p.evidence]
        if p.object:
            lines.append(f"  object: {p.object}")
    repair = repair_line(facts, result)
    if repair:
        lines.append(f"{repair[0]}: {repair[1]}")
    return "\n".join(lines)


# ---- JUnit XML ------------------------------------------------------------------------------

#: Characters XML 1.0 cannot carry at all; pod logs bring terminal escapes and the odd NUL.
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml(text: str) -> str:
    """Text safe to put in an XML document: each character XML forbids becomes U+FFFD."""
    return _NOT_XML.sub("\ufffd", text)



def to_junit(facts: Facts, results: list[Result], fail_on: str = ERROR, run: Run = Run()) -> str:
    """One <testcase> per check: failures carry the evidence, crashes are <error>, skips give the reason.

    A warning fails its test case only when it fails the run (--fail-on warn); otherwise, like a
    fully suppressed finding, it passes with its evidence in <system-out>, so nothing is hidden.
    """
    failures = sum(1 for r in results if _failing(r, fail_on))
    errors = sum(1 for r in results if r.status == "crash")
    skipped = sum(1 for r in results if r.status == "skip")
    seconds = f"{sum(r.seconds for r in results):.3f}"
    counts = {"tests": str(len(results)), "failures": str(failures), "errors": str(errors), "skipped": str(skipped),
              "time": seconds}
    suites = ET.Element("testsuites", {"name": "dvdoctor", **counts})
    suite = ET.SubElement(suites, "testsuite", {
        "name": f"dvdoctor check {facts.namespace}" + ("" if run.phase == "now" else f" (before {run.phase})"),
        **counts,
        "timestamp": facts.data["collected_at"].replace("Z", ""),
        "hostname": socket.gethostname(),
    })
    props = ET.SubElement(suite, "properties")
    for name, value in (("namespace", facts.namespace), ("phase", run.phase),
                        ("source", facts.data["source"].get("where", "")), ("dvdoctor", __version__)):
        ET.SubElement(props, "property", {"name": name, "value": _xml(value)})
    for r in results:
        case = ET.SubElement(suite, "testcase", {
            "name": f"{r.check.id}: {r.check.title}",
            "classname": f"dvdoctor.{run.phase}.{r.check.id}",
            "time": f"{r.seconds:.3f}",
        })
        if r.status == "skip":
            ET.SubElement(case, "skipped", {"message": _xml(r.reason or "")})
        elif r.status == "crash":
            node = ET.SubElement(case, "error", {"message": _xml(r.reason or "check crashed"), "type": "crash"})
            node.text = _xml(f"the check raised {r.reason}; this is a dvdoctor bug")
        elif _failing(r, fail_on):
            first = next(p for p in r.problems if not p.suppressed)
            node = ET.SubElement(case, "failure", {"message": _xml(first.message), "type": r.check.severity})
            node.text = _xml(_problem_text(facts, r))
        elif r.problems:
            ET.SubElement(case, "system-out").text = _xml(_problem_text(facts, r))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode")


# ---- SARIF 2.1.0 ----------------------------------------------------------------------------


def _rule(chk: Check) -> dict:
    """A SARIF reportingDescriptor for one check: its title, runbook text and the fix command."""
    repair = chk.fix_command or f"manual: see `dvdoctor explain {chk.id}`"
    return {
        "id": chk.id,
        "name": "".join(part.capitalize() for part in chk.id.split("-")),
        "shortDescription": {"text": chk.title},
        "fullDescription": {"text": chk.doc or chk.title},
        "help": {"text": f"{chk.doc}\n\nfix: {repair}".strip(), "markdown": f"{chk.doc}\n\n**fix:** `{repair}`".strip()},
        "defaultConfiguration": {"level": "error" if chk.severity == ERROR else "warning"},
        "properties": {"applies": sorted(chk.applies), "tags": list(chk.tags), "docs": f"{DOCS_BASE}/{chk.id}.md"},
    }


def to_sarif(facts: Facts, results: list[Result], run: Run = Run()) -> str:
    """One run; a rule per check that ran; a result per problem, its object as a logical location.

    Suppressed problems stay in the log with a SARIF suppression carrying the reason, which is how
    code-scanning views show a finding someone accepted. Skipped and crashed checks are tool
    notifications, not results: they say nothing about DV.
    """
    rules = [_rule(r.check) for r in results]
    index = {r.check.id: i for i, r in enumerate(results)}
    sarif_results = []
    notifications = []
    for r in results:
        if r.status in ("skip", "crash"):
            notifications.append({
                "level": "note" if r.status == "skip" else "error",
                "message": {"text": f"{r.check.id} {'skipped' if r.status == 'skip' else 'crashed'}: {r.reason}"},
                "descriptor": {"id": r.check.id},
            })
            continue
        for p in r.problems:
            item: dict = {
                "ruleId": r.check.id,
                "ruleIndex": index[r.check.id],
                "level": "error" if r.check.severity == ERROR and not r.ignored else "warning",
                "message": {"text": p.message + "".join(f"\n{e}" for e in p.evidence)},
                "properties": {"evidence": list(p.evidence), "namespace": facts.namespace},
            }
            repair = repair_line(facts, r)
            if repair and not p.suppressed:  # the rule's help names the fix; this says what holds now
                item["message"]["text"] += f"\n{repair[0]}: {repair[1]}"
                item["properties"]["repair"] = repair[1]
            if p.object:
                kind, _, name = p.object.partition("/")
                item["locations"] = [{"logicalLocations": [{
                    "name": name or kind,
                    "fullyQualifiedName": f"{facts.namespace}/{p.object}",
                    "kind": kind if name else "object",
                }]}]
            if p.suppressed:
                item["suppressions"] = [{"kind": "external", "status": "accepted", "justification": p.suppressed}]
            sarif_results.append(item)
    sarif_run: dict = {
        "tool": {"driver": {
            "name": "dvdoctor",
            "version": __version__,
            "rules": rules,
        }},
        "invocations": [{
            "executionSuccessful": not any(r.status == "crash" for r in results),
            "toolExecutionNotifications": notifications,
        }],
        "results": sarif_results,
        "properties": {"namespace": facts.namespace, "phase": run.phase, "collectedAt": facts.data["collected_at"]},
    }
    return json.dumps({"$schema": SARIF_SCHEMA_URI, "version": SARIF_VERSION, "runs": [sarif_run]}, indent=2)


# ---- choosing and writing -------------------------------------------------------------------

TEXT_WRITERS: dict[str, Callable[[Facts, list[Result], str, Run], str]] = {
    "json": lambda facts, results, fail_on, run: to_json(facts, results, fail_on=fail_on, run=run),
    "junit": to_junit,
    "sarif": lambda facts, results, _fail_on, run: to_sarif(facts, results, run),  # levels come from severities
}


def write(fmt: str, facts: Facts, results: list[Result], out: TextIO, fail_on: str = ERROR,
          left_out: list[str] | None = None, run: Run = Run()) -> None:
    """Write the findings of `run` in one format; the table goes through rich, colored only on a
    terminal and never wrapped elsewhere (dvdoctor.render.output)."""
    results = redacted(results)
    if fmt == "table":
        render(console(file=out), facts, results, left_out=left_out, fail_on=fail_on, run=run)
    elif fmt == "json":
        out.write(to_json(facts, results, left_out=left_out, fail_on=fail_on, run=run) + "\n")
    else:
        out.write(TEXT_WRITERS[fmt](facts, results, fail_on, run) + "\n")


def parse_output_files(values: list[str]) -> list[tuple[str, Path]]:
    """`--output-file FMT=PATH` values, checked before any cluster call; a bad one is a UsageError."""
    out: list[tuple[str, Path]] = []
    for value in values:
        fmt, sep, path = value.partition("=")
        if not sep or not path:
            raise UsageError(f"--output-file {value!r}: expected FMT=PATH with FMT one of {', '.join(FORMATS)}")
        if fmt not in FORMATS:
            raise UsageError(f"--output-file {value!r}: unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
        out.append((fmt, check_target(Path(path), f"--output-file {fmt}")))
    distinct_targets([(f"--output-file {fmt}", path) for fmt, path in out])
    return out


def write_files(targets: list[tuple[str, Path]], facts: Facts, results: list[Result], fail_on: str = ERROR,
                left_out: list[str] | None = None, run: Run = Run()) -> None:
    """Each `--output-file FMT=PATH`, whole or not at all (a temp file renamed over PATH)."""
    for fmt, path in targets:
        buffer = io.StringIO()
        write(fmt, facts, results, buffer, fail_on, left_out, run)
        write_atomic(path, buffer.getvalue(), 0o644, what=f"--output-file {fmt}")
