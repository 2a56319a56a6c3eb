"""`dvdoctor rbac --for COMMAND` applied on a real server, then the command run as that service
account through the real RBAC authorizer: no call is refused, and the verdict is an admin's."""

from __future__ import annotations

import json

import pytest


def grant(dv, target: str, account: str, without: tuple[str, str] | None = None):
    """Apply what `dvdoctor rbac --for TARGET --service-account ACCOUNT` prints (less `without`, a
    (resource, verb) taken out of the Role); that account's kubeconfig."""
    printed = dv.dvdoctor("rbac", "--for", target, "--service-account", account, "-o", "json")
    assert printed.rc == 0, printed.output
    items = printed.json["items"]
    if without:
        rules = next(i for i in items if i["kind"] == "Role")["rules"]
        hit = next(r for r in rules if without[0] in r["resources"] and without[1] in r["verbs"])
        hit["verbs"].remove(without[1])
    dv.apply(items)
    return dv.service_account_kubeconfig(account)


def verdicts(report: dict) -> dict[str, str]:
    return {r["id"]: r["status"] for r in report["results"]}


@pytest.mark.reclaim("Delete")
def test_a_check_account_gets_the_verdict_of_an_admin_without_a_refused_call(dv):
    config = grant(dv, "check", "checker")
    facts_file = dv.home / "facts.json"
    collected = dv.dvdoctor("collect", "--no-pod", "-o", str(facts_file), kubeconfig=config)
    assert collected.rc == 0, collected.output
    facts = json.loads(facts_file.read_text())
    assert facts["errors"] == [], facts["errors"]  # no list was refused, PVs and storage classes included
    assert facts["access"]["rules"]
    admin = dv.dvdoctor("check", "--no-pod", "-o", "json")
    mine = dv.dvdoctor("check", "--no-pod", "-o", "json", kubeconfig=config)
    assert (mine.rc, verdicts(mine.json)) == (admin.rc, verdicts(admin.json)), mine.output
    assert verdicts(mine.json)["bar-pv-reclaim-delete"] != "skip"  # the cluster-wide read works
    permissions = next(r for r in mine.json["results"] if r["id"] == "dvdoctor-permissions")
    # the rights only fix, backup or restore need are listed, not flagged
    assert permissions["status"] == "pass" and "(not by `dvdoctor check`)" in permissions["reason"], permissions
    assert "forbidden" not in mine.stderr.lower()
    # with the inspection pod: the account creates, watches and deletes its Job (no node takes the pod)
    inspected = dv.dvdoctor("check", "-o", "json", kubeconfig=config, timeout=170)
    reason = next(r["reason"] for r in inspected.json["results"] if r["id"] == "bar-low-space")
    assert "not scheduled" in reason and "forbidden" not in inspected.output.lower(), reason
    assert not dv.api.list("Job", dv.name, "app.kubernetes.io/managed-by=dvdoctor")


def test_an_account_that_may_not_watch_jobs_follows_its_inspection_job_to_its_end(dv):
    """The server refuses the watch only once the Job exists: the wait then reads the Job instead of
    deleting it with its pod half-way (on a node: the probe's write test left on the backup volume)."""
    config = grant(dv, "check", "checker", without=("jobs", "watch"))
    inspected = dv.dvdoctor("check", "-o", "json", kubeconfig=config, timeout=170)
    reason = next(r["reason"] for r in inspected.json["results"] if r["id"] == "bar-low-space")
    assert "not scheduled" in reason and "forbidden" not in reason.lower(), reason
    permissions = next(r for r in inspected.json["results"] if r["id"] == "dvdoctor-permissions")
    assert permissions["status"] in ("warn", "fail") and "watch batch/jobs" in " ".join(permissions["problems"][0]["evidence"]), permissions
    assert not dv.api.list("Job", dv.name, "app.kubernetes.io/managed-by=dvdoctor")


@pytest.mark.reclaim("Delete")
def test_a_fix_account_repairs_through_the_real_authorizer(dv):
    config = grant(dv, "fix", "fixer")
    result = dv.dvdoctor("fix", "--issue", "bar-pv-reclaim-delete", "--yes", kubeconfig=config, timeout=300)
    assert result.rc == 0, result.output
    assert "forbidden" not in result.output.lower(), result.output
    assert dv.api.get("PersistentVolume", None, f"dv-bar-pv-{dv.name}")["spec"]["persistentVolumeReclaimPolicy"] == "Retain"


def test_a_check_account_running_fix_is_told_what_fix_needs(dv):
    config = grant(dv, "check", "checker")
    report = dv.dvdoctor("check", "--for", "backup", "-o", "json", kubeconfig=config).json
    permissions = next(r for r in report["results"] if r["id"] == "dvdoctor-permissions")
    # the backup's gate stops: it would be refused part-way (scaling the side deployments)
    assert permissions["status"] == "fail", permissions
    evidence = " ".join(permissions["problems"][0]["evidence"])
    assert "cannot patch apps/deployments" in evidence and "`dvdoctor backup` needs" in permissions["problems"][0]["message"]
    assert "it would be refused part-way" in permissions["problems"][0]["message"]
