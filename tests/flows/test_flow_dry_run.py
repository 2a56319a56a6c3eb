"""--dry-run on backup and restore: every step and every object printed, nothing changed; and the
objects dvdoctor would create (from the lab's DV templates) valid against Kubernetes' schemas."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml

from dvdoctor.lab import break_lab

VERSIONS = ("1.25.0", kubernetes_validate.latest_version())


def printed_objects(out: str) -> list[dict]:
    """The YAML stream a dry run prints between its two markers."""
    text = out.split("objects it would create:\n", 1)[1].split("--dry-run: nothing was changed.", 1)[0]
    return [doc for doc in yaml.safe_load_all(text) if doc]


def test_backup_dry_run_prints_every_step_and_the_job_and_changes_nothing(flow):
    before = flow.snapshot()

    code, out, _ = flow.backup("--dry-run")

    assert code == 0, out
    for step in ("would scale deployment/dv-caching to 0 replicas", "would scale deployment/dv-api to 0 replicas",
                 "would scale deployment/dv-unified-console to 0 replicas", "would create job dv-backup-job",
                 "would watch the job"):
        assert step in out
    (job,) = printed_objects(out)
    assert (job["kind"], job["metadata"]["name"]) == ("Job", "dv-backup-job")
    assert flow.snapshot() == before
    assert flow.audit_entries() == []


def test_restore_dry_run_names_the_older_backup_and_changes_nothing(flow):
    (old,) = flow.timestamps()
    assert flow.backup("--yes")[0] == 0
    before = flow.snapshot()

    code, out, _ = flow.restore("--from", old, "--dry-run")

    assert code == 0, out
    assert "would create job dv-restore-job" in out
    assert "would watch the job, run the post-restore steps" in out
    (job,) = printed_objects(out)
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DV_BACKUP_TARBALL"] == f"{old}/dv_backup.tar.gz"
    assert flow.snapshot() == before


@pytest.mark.parametrize("columns", ["80", "200"])
def test_printed_objects_are_valid_kubernetes_objects_at_any_width(flow, monkeypatch, columns):
    """The claim (created when missing, with the chosen class and size) and both jobs, strictly validated."""
    monkeypatch.setenv("COLUMNS", columns)
    (ts,) = flow.timestamps()
    code, out, _ = flow.restore("--from", ts, "--dry-run")
    assert code == 0, out
    objects = printed_objects(out)
    break_lab(flow.lab, "bar-pvc-missing")
    code, out, _ = flow.backup("--dry-run", "--ignore-check", "bar-pvc-missing",
                               "--storage-class", "ibmc-file-gold-gid", "--bar-size", "60Gi")
    assert code == 0, out
    assert "would create claim dv-bar-pvc (ibmc-file-gold-gid, 60Gi) from DV's template" in out
    objects += printed_objects(out)

    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("Job", "dv-restore-job"), ("PersistentVolumeClaim", "dv-bar-pvc"), ("Job", "dv-backup-job")]
    pvc = objects[1]
    assert (pvc["spec"]["storageClassName"], pvc["spec"]["resources"]["requests"]["storage"]) == ("ibmc-file-gold-gid", "60Gi")
    image = "image-registry.openshift-image-registry.svc:5000/cpd30/dv-init-volume:v1.5.0.0-217"
    for job in (objects[0], objects[2]):
        assert [c["image"] for c in job["spec"]["template"]["spec"]["containers"]] == [image]
    for obj in objects:
        for version in VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)


def test_a_dry_run_prints_no_secret_from_dvs_job_template(flow):
    """A password in DV's job template (env value, a URL's user:password, a --password argument) is
    redacted in the printed job, as in the saved job log and the bundle (break-it review)."""
    from dvdoctor.lab.bar import engine_root
    from dvdoctor.lab.store import Store

    path = engine_root(Store(flow.lab)) / "opt/dv/current/bar/yaml/dv-backup-job.yaml"
    template = yaml.safe_load(path.read_text())
    container = template["spec"]["template"]["spec"]["containers"][0]
    container.setdefault("env", []).extend([{"name": "BIGSQL_PASSWORD", "value": "S3cretENV1"},
                                            {"name": "CONN", "value": "postgres://dv:S3cretENV2@db/x"}])
    container["args"] = [*(container.get("args") or []), "--password", "S3cretARG3"]
    path.write_text(yaml.safe_dump(template, sort_keys=False))

    code, out, err = flow.backup("--dry-run")

    assert code == 0, out
    assert not any(s in out + err for s in ("S3cretENV1", "S3cretENV2", "S3cretARG3"))
    (job,) = printed_objects(out)
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert set(env) >= {"BIGSQL_PASSWORD", "CONN"} and "db/x" in env["CONN"]


@pytest.mark.parametrize("command, fault", [("backup", "stale-bar-marker"), ("restore", "side-deployments-left-down")])
def test_a_dry_run_with_fix_and_yes_plans_the_repairs_and_changes_nothing(flow, command, fault):
    """Second break-it review (session 21): `--fix --yes --dry-run` applied the gate's repairs and
    then said that nothing was changed."""
    break_lab(flow.lab, fault)
    before = flow.snapshot()
    extra = ("--accept-unverified-origin",) if command == "restore" else ()
    code, out, err = getattr(flow, command)("--fix", "--yes", "--dry-run", *extra)
    assert f"{fault}: plan" in out and "--dry-run: nothing was changed" in out, out + err
    assert "verified" not in out and not flow.audit.exists(), out
    assert flow.snapshot() == before
    assert code != 0 and fault in out  # the gate judges the namespace as it is: still broken
