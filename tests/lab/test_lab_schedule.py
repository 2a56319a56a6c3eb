"""`dvdoctor schedule --apply` against the lab: the objects it prints are the objects it creates,
each change is in the audit log, the namespace's lock is held, and applying again changes nothing."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from dvdoctor.cluster import rbac
from dvdoctor.flows import schedule
from dvdoctor.cli import run
from dvdoctor.lab import LabCluster
from dvdoctor.cluster.lock import COMMAND_ANNOTATION, LEASE_NAME, micro_time

IMAGE = "quay.io/example/dvdoctor:0.1.0"
#: What the API server adds to a stored object; everything else must be what was printed.
BOOKKEEPING = ("uid", "resourceVersion", "creationTimestamp")


def argv(lab_dir: Path, audit: Path, cron: str = "0 2 * * *", *extra: str) -> list[str]:
    return ["--lab", str(lab_dir), "-n", "cpd30", "schedule", "--cron", cron, "--image", IMAGE,
            "--audit-file", str(audit), *extra]


def stored(lab: LabCluster, obj: dict) -> dict | None:
    return lab.store.read(schedule.PLURALS[obj["kind"]], obj["metadata"]["name"])


def without_bookkeeping(obj: dict) -> dict:
    return {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k not in BOOKKEEPING}}


def audited(audit: Path) -> list[dict]:
    return [json.loads(line) for line in audit.read_text().splitlines()] if audit.exists() else []


@pytest.mark.parametrize("extra", [(), ("--check-only",)], ids=["backup", "check-only"])
def test_apply_creates_what_it_prints_audited_and_again_is_a_no_op(lab, lab_dir, tmp_path, capsys, extra):
    audit = tmp_path / "audit.jsonl"
    # the lab serves CronJob as batch/v1; --apply asks it, printing is told
    assert run(argv(lab_dir, audit, "0 2 * * *", *extra, "-o", "json", "--cronjob-api", "batch/v1")) == 0
    printed = json.loads(capsys.readouterr().out)["items"]
    assert run(argv(lab_dir, audit, "0 2 * * *", *extra, "--apply")) == 0, capsys.readouterr()
    assert [without_bookkeeping(stored(lab, o)) for o in printed] == printed
    entries = audited(audit)
    assert [e["action"] for e in entries] == [f"create {o['kind'].lower()}/{o['metadata']['name']}" for o in printed]
    assert {(e["fix"], e["namespace"], e["changes"][0]["after"]) for e in entries} == {("schedule", "cpd30", "created")}
    assert lab.store.read("leases", "dvdoctor-lock") is None  # taken for the run, given back
    versions = [stored(lab, o)["metadata"]["resourceVersion"] for o in printed]
    capsys.readouterr()
    assert run(argv(lab_dir, audit, "0 2 * * *", *extra, "--apply")) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert len(audited(audit)) == len(printed)
    assert [stored(lab, o)["metadata"]["resourceVersion"] for o in printed] == versions


def test_a_changed_cron_patches_only_the_cronjob(lab, lab_dir, tmp_path, capsys):
    audit = tmp_path / "audit.jsonl"
    assert run(argv(lab_dir, audit, "0 2 * * *", "--apply")) == 0
    objects = schedule.manifests("cpd30", "0 2 * * *", IMAGE)
    versions = {o["kind"]: stored(lab, o)["metadata"]["resourceVersion"] for o in objects}
    assert run(argv(lab_dir, audit, "30 3 * * 6", "--apply")) == 0, capsys.readouterr()
    last = audited(audit)[-1]
    assert last["action"] == "update cronjob/dvdoctor-backup: spec.schedule"
    changed = {o["kind"] for o in objects if stored(lab, o)["metadata"]["resourceVersion"] != versions[o["kind"]]}
    assert changed == {"CronJob"}
    job = lab.store.read("cronjobs", "dvdoctor-backup")
    assert without_bookkeeping(job) == schedule.manifests("cpd30", "30 3 * * 6", IMAGE, cronjob_api="batch/v1")[-1]


def test_dry_run_prints_the_plan_and_changes_nothing(lab, lab_dir, tmp_path, capsys):
    audit = tmp_path / "audit.jsonl"
    assert run(argv(lab_dir, audit, "0 2 * * *", "--apply", "--dry-run")) == 0
    out = capsys.readouterr().out
    assert "create cronjob/dvdoctor-backup" in out and "nothing was changed" in out
    assert all(stored(lab, o) is None for o in schedule.manifests("cpd30", "0 2 * * *", IMAGE))
    assert not audit.exists()


def test_a_binding_keeps_the_subjects_someone_else_bound(lab, lab_dir, tmp_path, capsys):
    # an earlier dvdoctor's `rbac --for backup --user alice` named its binding like the schedule's
    alice = rbac.subject("alice", None, None, "cpd30")
    [binding] = [o for o in rbac.manifests("cpd30", "backup", alice, per_subject=False) if o["kind"] == "RoleBinding"]
    LabCluster(lab_dir, admin=True).create("rolebindings", binding)
    assert run(argv(lab_dir, tmp_path / "audit.jsonl", "0 2 * * *", "--apply")) == 0, capsys.readouterr()
    account = {"kind": "ServiceAccount", "name": "dvdoctor", "namespace": "cpd30"}
    assert lab.store.read("rolebindings", "dvdoctor-backup")["subjects"] == [alice, account]


def test_granting_someone_else_leaves_the_schedules_binding_alone(lab, lab_dir, tmp_path, capsys):
    """`rbac --for check --service-account dvchk | kubectl apply` after `schedule --check-only --apply`:
    the new binding is dvchk's own, the schedule's account keeps its rights."""
    assert run(argv(lab_dir, tmp_path / "audit.jsonl", "0 2 * * *", "--check-only", "--apply")) == 0, capsys.readouterr()
    account = {"kind": "ServiceAccount", "name": "dvdoctor", "namespace": "cpd30"}
    assert lab.store.read("rolebindings", "dvdoctor-check")["subjects"] == [account]
    admin = LabCluster(lab_dir, admin=True)
    for who in (rbac.subject(None, None, "dvchk", "cpd30"), rbac.subject("alice", None, None, "cpd30")):
        for obj in rbac.manifests("cpd30", "check", who, cluster_reads=False):
            plural = {"ServiceAccount": "serviceaccounts", "Role": "roles", "RoleBinding": "rolebindings"}[obj["kind"]]
            if admin.get(plural, obj["metadata"]["name"]) is None:  # what `kubectl apply` would create
                admin.create(plural, obj)
            else:  # ... and what it would replace: the binding's subjects whole
                admin.patch(plural, obj["metadata"]["name"], {"subjects": obj.get("subjects")} if "subjects" in obj else {})
    assert lab.store.read("rolebindings", "dvdoctor-check")["subjects"] == [account]
    assert lab.store.read("rolebindings", "dvdoctor-check-sa-dvchk")["subjects"][0]["name"] == "dvchk"
    assert lab.store.read("rolebindings", "dvdoctor-check-user-alice")["subjects"][0]["name"] == "alice"


def test_a_held_lock_stops_the_apply_before_anything_changes(lab, lab_dir, tmp_path, capsys):
    now = micro_time(datetime.now(timezone.utc))  # another machine's backup, renewing its lock
    LabCluster(lab_dir, admin=True).create("leases", {
        "metadata": {"name": LEASE_NAME, "annotations": {COMMAND_ANNOTATION: "dvdoctor backup --yes"}},
        "spec": {"holderIdentity": "ops@bastion:4242", "leaseDurationSeconds": 60, "acquireTime": now, "renewTime": now}})
    assert run(argv(lab_dir, tmp_path / "audit.jsonl", "0 2 * * *", "--apply")) == 2
    err = capsys.readouterr().err
    assert "dvdoctor backup --yes" in err and len(err.strip().splitlines()) == 1, err
    assert lab.store.read("cronjobs", "dvdoctor-backup") is None


def test_the_namespace_must_be_the_labs(lab, lab_dir, tmp_path, capsys):
    args = argv(lab_dir, tmp_path / "audit.jsonl", "0 2 * * *", "--apply")
    args[args.index("cpd30")] = "other"
    assert run(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dvdoctor: error: -n other:") and "namespace cpd30" in err and "\n" not in err


def test_a_lab_gives_schedule_its_namespace_as_it_gives_every_command(lab, lab_dir, tmp_path, capsys):
    """`--lab DIR schedule` needs no -n: the lab simulates one namespace, and the objects printed and
    applied are in it, as `-n cpd30` would make them."""
    base = ["--lab", str(lab_dir), "schedule", "--cron", "0 2 * * *", "--image", IMAGE]
    assert run([*base, "-o", "json"]) == 0, capsys.readouterr()
    printed = json.loads(capsys.readouterr().out)["items"]
    assert {o["metadata"]["namespace"] for o in printed if "namespace" in o["metadata"]} == {lab.namespace}
    assert run([*base, "--audit-file", str(tmp_path / "audit.jsonl"), "--apply"]) == 0, capsys.readouterr()
    assert all(stored(lab, o) is not None for o in printed)


def test_the_copy_secrets_name_is_shown_in_the_audit_log(lab, lab_dir, tmp_path, capsys):
    """`schedule --copy --apply` with another --copy-secret patches the CronJob; the audit log names
    the Secret (a Secret's name is not its contents) and redacts nothing of the container."""
    audit = tmp_path / "audit.jsonl"
    for secret in ("dv-copies", "dv-copies-2"):
        assert run(argv(lab_dir, audit, "0 2 * * *", "--copy", "--copy-secret", secret, "--apply")) == 0, \
            capsys.readouterr()
    [patched] = [e for e in audited(audit) if e["action"].startswith("update cronjob/")]
    [change] = patched["changes"]
    assert "{'name': 'DVDOCTOR_COPY_SECRET', 'value': 'dv-copies-2'}" in change["after"], change
    assert redact_marker() not in json.dumps(patched)


def redact_marker() -> str:
    from dvdoctor.core.redact import REDACTED

    return REDACTED
