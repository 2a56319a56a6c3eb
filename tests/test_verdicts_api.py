"""The exit-code contract through the real Kubernetes client against the fake API server: what a
refused exec, a refused inspection pod or an API that stops answering does to the verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import builders as b
from dvdoctor.cli import run
from namespaces import healthy_whose_jobs_end

pytestmark = pytest.mark.fake_api(holds=healthy_whose_jobs_end)

ENGINE_CHECKS = ["bar-templates-missing", "restore-marker-left", "stale-bar-marker"]


def report(kubeconfig: Path, capsys, *argv: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = run(["--kubeconfig", str(kubeconfig), "check", "-o", "json", *argv])
    return code, json.loads(capsys.readouterr().out)


def could_not_run(doc: dict) -> list[str]:
    return sorted(r["id"] for r in doc["results"] if r["status"] == "skip" and r["incomplete"])


def test_a_refused_exec_into_dv_engine_makes_its_checks_unknown_and_the_verdict_3(api, kubeconfig, capsys):
    _, before = report(kubeconfig, capsys)
    assert not set(ENGINE_CHECKS) & set(could_not_run(before))
    api.fail("GET", "/pods/dv-engine-0/exec", 403,
             'pods "dv-engine-0" is forbidden: User "u" cannot create resource "pods/exec"', times=100)
    code, doc = report(kubeconfig, capsys)
    assert code == 3 and doc["exit_code"] == 3
    assert set(ENGINE_CHECKS) <= set(could_not_run(doc))
    reason = next(r["reason"] for r in doc["results"] if r["id"] == "stale-bar-marker")
    assert reason.startswith("engine: exec in dv-engine-0 failed: forbidden")


def test_a_refused_inspection_pod_makes_the_volume_checks_unknown(api, kubeconfig, capsys):
    api.fail("POST", "/jobs$", 403, 'jobs.batch is forbidden: User "u" cannot create resource "jobs"', times=100)
    code, doc = report(kubeconfig, capsys)
    assert code == 3
    assert {"bar-permissions", "incomplete-backups"} <= set(could_not_run(doc))
    capsys.readouterr()
    assert run(["--kubeconfig", str(kubeconfig), "list"]) == 3
    assert "could not be inspected" in capsys.readouterr().err


def test_the_gate_of_a_backup_refuses_an_unknown_with_3(api, kubeconfig, capsys, tmp_path):
    api.fail("GET", "/pods/dv-engine-0/exec", 403, "forbidden", times=100)
    capsys.readouterr()
    code = run(["--kubeconfig", str(kubeconfig), "check", "--for", "backup"])
    assert code == 3
    code = run(["--kubeconfig", str(kubeconfig), "backup", "--yes", "--log-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 3 and "Preflight incomplete: nothing was changed." in out
    assert not api.requests_to("PATCH", "/deployments/")  # nothing scaled down


def test_a_namespace_that_does_not_exist_is_bad_input(api, tmp_path, capsys):
    kubeconfig = api.kubeconfig(tmp_path / "other", namespace="nope")
    assert run(["--kubeconfig", str(kubeconfig), "check"]) == 2
    assert capsys.readouterr().err.startswith("dvdoctor: error: ")
