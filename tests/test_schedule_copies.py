"""`schedule --copy`: the CronJob backs up, copies, then prunes both tiers; the copies settings reach its
pod through env only, and the file its script writes is a valid dvdoctor.yaml naming the Secret."""

from __future__ import annotations

import subprocess
from pathlib import Path

import kubernetes_validate
import pytest

from dvdoctor.cli.config import parse
from dvdoctor.core.errors import UsageError
from dvdoctor.flows.schedule import CopyPolicy, manifests, site_settings

from test_manifests import VERSIONS


def _cronjob(**kw) -> dict:
    objects = manifests("cpd30", "0 2 * * *", "reg.example/dvdoctor:0.2", keep=1,
                        copies=CopyPolicy("dv-copies", **kw))
    return next(o for o in objects if o["kind"] == "CronJob")


@pytest.mark.parametrize("version", VERSIONS)
def test_the_copy_cronjob_is_valid(version):
    # kubernetes-validate's schemas start at 1.25, where CronJob is batch/v1 only; its fields are
    # the same as the batch/v1beta1 printed by default (tests/test_schedule.py)
    job = {**_cronjob(), "apiVersion": "batch/v1"}
    kubernetes_validate.validate(job, version, strict=True)


def test_the_steps_run_in_order_and_only_after_the_one_before_succeeded():
    container = _cronjob()["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    script = container["command"][-1]
    steps = [s.strip() for s in script.split("&&")]
    commands = [s for s in steps if s.startswith("step ")]
    assert [c.split()[1] for c in commands] == ["backup", "copy", "prune", "prune"]
    assert "--copies" in commands[-1] and "--copies" not in commands[-2]
    assert "dv-copies" not in script and "reg.example" not in script  # values only in env
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["DVDOCTOR_COPY_SECRET"] == "dv-copies" and env["DVDOCTOR_KEEP_DAILY"] == "7"


def _settings_seen(tmp_path: Path, container: dict) -> str:
    """The settings file the script hands its first step (a stand-in dvdoctor that saves it and fails,
    so that no other step runs)."""
    stub = tmp_path / "bin" / "dvdoctor"
    stub.parent.mkdir(exist_ok=True)
    stub.write_text(f'#!/bin/sh\ncat "$DVDOCTOR_CONFIG" > {tmp_path}/seen.yaml\nexit 1\n')
    stub.chmod(0o755)
    env = {**{e["name"]: e["value"] for e in container["env"]}, "HOME": str(tmp_path), "PATH": f"{stub.parent}:/usr/bin:/bin"}
    subprocess.run(container["command"], env=env, check=False, timeout=30)
    return (tmp_path / "seen.yaml").read_text()


def test_the_settings_file_the_script_writes_is_the_sites_config(tmp_path):
    container = _cronjob()["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    settings = parse(_settings_seen(tmp_path, container))
    assert settings.copies.secret == "dv-copies" and settings.copies.image == "reg.example/dvdoctor:0.2"
    # with the site's other settings, as `schedule` read them
    container = next(o for o in manifests("cpd30", "0 2 * * *", "reg.example/dvdoctor:0.2", keep=1,
                                          copies=CopyPolicy("dv-copies"),
                                          site=site_settings({"names": {"bar_pvc": "dv-bar-claim"}}))
                     if o["kind"] == "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    settings = parse(_settings_seen(tmp_path, container))
    assert settings.copies.secret == "dv-copies" and settings.names.bar_pvc == "dv-bar-claim"


def test_the_settings_file_names_the_repositorys_claim_when_there_is_one(tmp_path):
    """copies.claim reaches the copy Jobs the scheduled run starts: through env, into its settings file."""
    container = _cronjob(claim="dv-copies-pvc")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["DVDOCTOR_COPY_CLAIM"] == "dv-copies-pvc" and "dv-copies-pvc" not in container["command"][-1]
    assert parse(_settings_seen(tmp_path, container)).copies.claim == "dv-copies-pvc"
    plain = _cronjob()["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert "DVDOCTOR_COPY_CLAIM" not in {e["name"] for e in plain["env"]}
    assert parse(_settings_seen(tmp_path, plain)).copies.claim is None


def test_copy_needs_something_to_keep_and_no_check_only():
    with pytest.raises(UsageError, match="keep at least one"):
        _cronjob(daily=0, weekly=0, monthly=0)
    with pytest.raises(UsageError, match="check-only"):
        manifests("cpd30", "0 2 * * *", "reg.example/dvdoctor:0.2", check_only=True, copies=CopyPolicy("s"))


def test_schedule_copy_without_a_secret_is_one_line_exit_2(capsys, monkeypatch, tmp_path):
    from dvdoctor.cli import run

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DVDOCTOR_CONFIG", raising=False)
    code = run(["-n", "cpd30", "schedule", "--cron", "0 2 * * *", "--image", "reg.example/d:1", "--copy"])
    err = capsys.readouterr().err
    assert code == 2 and "--copy-secret" in err and err.count("\n") == 1


def test_the_secrets_name_is_shown_and_nothing_secret_is(tmp_path):
    """A Secret's name is no secret: the one redaction pass leaves the CronJob whole, as data and as
    text (the audit log holds a changed container as text); a value under that name that is not a
    Kubernetes name, and every other secret-named variable, are still dropped."""
    import json

    from dvdoctor.core import redact

    job = _cronjob()
    assert redact.data(job) == job
    container = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    for text in (json.dumps(job), str(container), "DVDOCTOR_COPY_SECRET=dv-copies"):
        assert redact.text(text) == text
    for odd in ("Hunter2!pw", "dv copies", "DV-COPIES", "x" * 254):
        entry = {"name": "DVDOCTOR_COPY_SECRET", "value": odd}
        assert redact.data(entry)["value"] == redact.REDACTED
        assert odd not in redact.text(json.dumps(entry)) and odd not in redact.text(str(entry))
        if " " not in odd:  # a bare value ends at a space, under any name
            assert odd not in redact.text(f"DVDOCTOR_COPY_SECRET={odd}")
    for name in ("RESTIC_PASSWORD", "DVDOCTOR_COPY_SECRETS", "COPY_SECRET", "dvdoctor_copy_secret"):
        assert redact.data({"name": name, "value": "dv-copies"})["value"] == redact.REDACTED
        assert "dv-copies" not in redact.text(json.dumps({"name": name, "value": "dv-copies"}))
