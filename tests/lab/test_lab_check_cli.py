"""`check` and `collect` through the CLI on a lab: the report, exit codes, bundles, bad input.

Issue 3's "done when": a lab broken with bar-permissions,stale-bar-marker reports exactly those two.
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from dvdoctor.cli import run
from dvdoctor.lab import break_lab
from dvdoctor.render.report import report_schema
from dvdoctor.verdicts.registry import load_all

#: The checks of copies: a lab has no repository unless a test configures one, so they do not apply.
COPIES_CHECKS = {c.id for c in load_all().values() if "copies" in c.tags}


def check_json(capsys, *args: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = run([*args, "check", "-o", "json"])
    return code, json.loads(capsys.readouterr().out)


def failed(report: dict) -> set[str]:
    return {r["id"] for r in report["results"] if r["status"] == "fail"}


def test_two_faults_are_reported_and_nothing_else(lab, capsys):
    root = lab.store.root
    for fault in ("bar-permissions", "stale-bar-marker"):
        break_lab(root, fault)
    code, report = check_json(capsys, "--lab", str(root))
    jsonschema.validate(report, report_schema())
    assert code == 1
    assert failed(report) == {"bar-permissions", "stale-bar-marker"}
    others = [r for r in report["results"] if r["id"] not in failed(report)]
    assert {r["status"] for r in others if r["id"] not in COPIES_CHECKS} == {"pass"}
    # copies are not configured in a lab: those checks do not apply, and do not make the verdict incomplete
    assert all(not r["incomplete"] for r in others)
    perm = next(r for r in report["results"] if r["id"] == "bar-permissions")
    assert perm["fix"] == "dvdoctor fix --issue bar-permissions"
    assert any("Permission denied" in line for p in perm["problems"] for line in p["evidence"])


def test_the_table_shows_evidence_and_the_fix_command(lab, capsys):
    break_lab(lab.store.root, "stale-bar-marker")
    assert run(["--lab", str(lab.store.root), "check"]) == 1
    out = capsys.readouterr().out
    assert "✗ stale-bar-marker" in out and "dv-engine-0:/mnt/marker_files/.bar" in out
    assert "fix: dvdoctor fix --issue stale-bar-marker" in out
    assert "To leave a check out: dvdoctor check --skip stale-bar-marker" in out


def test_ignore_check_and_fail_on_warn_set_the_exit_code(lab, capsys):
    root = str(lab.store.root)
    break_lab(lab.store.root, "stale-bar-marker")
    assert run(["--lab", root, "check"]) == 1
    capsys.readouterr()
    assert run(["--lab", root, "check", "--ignore-check", "stale-bar-marker"]) == 0
    assert "ignored by --ignore-check" in capsys.readouterr().out
    break_lab(lab.store.root, "leftover-bar-pods")  # a warning
    assert run(["--lab", root, "check", "--ignore-check", "stale-bar-marker"]) == 0
    assert run(["--lab", root, "check", "--ignore-check", "stale-bar-marker", "--fail-on", "warn"]) == 1


def test_collect_then_check_from_gives_the_same_findings(lab, tmp_path, capsys):
    root = str(lab.store.root)
    break_lab(lab.store.root, "bar-permissions")
    bundle = tmp_path / "bundle.json"
    assert run(["--lab", root, "collect", "-o", str(bundle)]) == 0
    _, live = check_json(capsys, "--lab", root)
    capsys.readouterr()
    assert run(["check", "--from", str(bundle), "-o", "json"]) == 1
    saved = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["status"]) for r in saved["results"]] == [(r["id"], r["status"]) for r in live["results"]]
    assert "token" not in bundle.read_text().lower()


def test_no_pod_skips_the_backup_volume_checks_and_says_why(lab, capsys):
    capsys.readouterr()
    run(["--lab", str(lab.store.root), "check", "--no-pod", "-o", "json"])
    report = json.loads(capsys.readouterr().out)
    skipped = {r["id"]: r["reason"] for r in report["results"] if r["status"] == "skip"
               and r["id"] not in COPIES_CHECKS}  # not configured in a lab
    assert {"bar-permissions", "broken-backup-symlink", "incomplete-backups"} <= set(skipped)
    assert all("--no-pod" in reason for reason in skipped.values())


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not a JSON facts bundle"),
    (json.dumps({"schema": "dvdoctor/facts/v1"}), "is not a valid dvdoctor facts bundle"),
])
def test_a_bad_bundle_is_one_line_and_exit_2(tmp_path, capsys, content, message):
    bundle = tmp_path / "b.json"
    bundle.write_text(content)
    assert run(["check", "--from", str(bundle)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_verbose_shows_the_traceback(tmp_path, capsys):
    assert run(["-v", "check", "--from", str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().endswith("does not exist")


def test_a_namespace_without_dv_is_exit_2(lab, capsys):
    for pod in ("dv-engine-0",):
        (lab.store.root / "objects" / "pods" / f"{pod}.json").unlink()
    for sts in ("dv-engine", "dv-metastore", "dv-utils", "dv-worker"):
        (lab.store.root / "objects" / "statefulsets" / f"{sts}.json").unlink()
    assert run(["--lab", str(lab.store.root), "check"]) == 2
    assert "has no DV" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["check", "--only", "nope"], "unknown check id 'nope'"),
    (["check", "--skip", "bar-permissions,nope"], "unknown check id 'nope'"),
    (["-n", "Not_A_Name", "check"], "not a valid Kubernetes name"),
    (["--lab", "/nonexistent/lab", "check"], "is not a dvdoctor lab"),
    (["explain", "nope"], "unknown check id 'nope'"),
    (["check", "--for", "sometime"], "sometime"),
    # break-it review: these ran no check, or wrote one file twice, and said so as a success
    (["check", "--only", "stale-bar-marker", "--skip", "stale-bar-marker"], "--only and --skip both name stale-bar-marker"),
    (["check", "--only", "broken-backup-symlink", "--for", "backup"], "leave no check to run for --for backup"),
    (["check", "--output-file", "junit=/tmp/dvdoctor-same.xml", "--output-file", "sarif=/tmp/dvdoctor-same.xml"],
     "--output-file sarif /tmp/dvdoctor-same.xml: the same file as --output-file junit"),
    (["collect", "-o", "/tmp/dvdoctor-same.tgz", "--bundle", "/tmp/dvdoctor-same.tgz"], "the same file as -o"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, capsys):
    assert run(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1
