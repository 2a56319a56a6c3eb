"""`dvdoctor collect --bundle`: the facts, DV's BAR job logs and the audit log in one tar.gz, and not
one of the tokens planted in an env value, a job log and an audit entry gets into it."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

import builders as b
from dvdoctor.core.redact import text as redact
from fakeapi import FakeApi
from namespaces import run_jobs

ENV_TOKEN = "sha256~PlantedEnvToken0123456789"
SHAPED_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJib3QifQ.c2lnbmF0dXJl"
LOG_TOKEN = "PlantedLogToken42"
LOG_PASSWORD = "hunter2-planted"
AUDIT_TOKEN = "PlantedAuditToken77"
PLANTED = (ENV_TOKEN, SHAPED_TOKEN, LOG_TOKEN, LOG_PASSWORD, AUDIT_TOKEN)
BACKUP_POD = "dv-backup-job-5pfw2"


def planted_in_env_and_log(fake: FakeApi) -> None:
    """A healthy namespace whose dv-api env and failed backup job's log carry planted tokens, whose Jobs end."""
    data = b.healthy()
    api_pod = b.find(data, "pods", next(p["metadata"]["name"] for p in data["objects"]["pods"]
                                        if p["metadata"]["name"].startswith("dv-api-")))
    api_pod["spec"]["containers"][0]["env"] = [
        {"name": "DV_API_TOKEN", "value": ENV_TOKEN},
        {"name": "EXTRA_ARGS", "value": f"--header=Authorization: Bearer {SHAPED_TOKEN}"},
        {"name": "DB_HOST", "value": "dv-metastore"},
    ]
    data["objects"]["jobs"].append(b.job("dv-backup-job", state="failed"))
    data["objects"]["pods"].append(b.job_pod("dv-backup-job", phase="Failed"))
    fake.load(data)
    fake.logs[BACKUP_POD] = (
        "2021-01-14_19.20.07.123_UTC INFO starting backup\n"
        f"2021-01-14_19.20.08.001_UTC DEBUG connecting with token={LOG_TOKEN} password: {LOG_PASSWORD}\n"
        f"{b.RUNBOOK_ERRNO13}\n"
    )
    run_jobs(fake)


@pytest.mark.fake_api(holds=planted_in_env_and_log)
def test_the_bundle_has_facts_logs_and_audit_and_no_planted_secret(api, tmp_path: Path):
    from dvdoctor.cli import app
    from dvdoctor.cli import check_cmd  # noqa: F401  (registers `collect`)

    audit = tmp_path / "audit.jsonl"
    audit.write_text(json.dumps({"fix": "bar-permissions", "action": "grant", "changes": [
        {"what": "secret/dv-bar", "before": f"token: {AUDIT_TOKEN}", "after": "absent"}]}) + "\n")
    bundle = tmp_path / "case-1234.tar.gz"
    kubeconfig = api.kubeconfig(tmp_path / "config", namespace=b.NS)
    result = CliRunner().invoke(app, ["--kubeconfig", str(kubeconfig), "collect", "--bundle", str(bundle),
                                      "--audit-file", str(audit)])
    assert result.exit_code == 0, result.output

    with tarfile.open(bundle) as tar:
        files = {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers()}
    assert sorted(files) == ["audit.jsonl", "facts.json", f"logs/{BACKUP_POD}.log", "manifest.json"]
    everything = "\n".join(files.values())
    for secret in (*PLANTED, api.token):
        assert secret not in everything, secret
    assert b.RUNBOOK_ERRNO13 in files[f"logs/{BACKUP_POD}.log"]  # the evidence stays
    assert "token=<redacted> password: <redacted>" in files[f"logs/{BACKUP_POD}.log"]
    assert "token: <redacted>" in files["audit.jsonl"]
    facts = json.loads(files["facts.json"])
    env = {e["name"]: e["value"] for p in facts["objects"]["pods"] for c in p["spec"].get("containers", [])
           for e in c.get("env") or []}
    assert env["DV_API_TOKEN"] == "<redacted>" and env["DB_HOST"] == "dv-metastore"
    assert json.loads(files["manifest.json"])["namespace"] == b.NS


def test_collect_needs_somewhere_to_write():
    from dvdoctor.cli import app
    from dvdoctor.cli import check_cmd  # noqa: F401
    from dvdoctor.core.errors import UsageError

    result = CliRunner().invoke(app, ["collect"])
    assert isinstance(result.exception, UsageError) and "--bundle FILE.tar.gz" in str(result.exception)


@pytest.mark.parametrize("line, expected", [
    ("TOKEN=abc123 rest", "TOKEN=<redacted> rest"),
    ('{"password": "s3cret", "user": "bigsql"}', '{"password": "<redacted>", "user": "bigsql"}'),
    ("Authorization: Bearer abc.def", "Authorization: Bearer <redacted>"),
    ("login with sha256~Zm9vYmFy now", "login with <redacted> now"),
    ("apiKey: k-123", "apiKey: <redacted>"),
    ("        secretKeyRef:\n          name: dv-secret", "        secretKeyRef:\n          name: dv-secret"),
    ("Operation failed: [Errno 13] Permission denied: '/mnt/PV/bar'", "Operation failed: [Errno 13] Permission denied: '/mnt/PV/bar'"),
])
def test_redaction_keeps_the_key_and_drops_the_value(line, expected):
    assert redact(line) == expected


@pytest.mark.fake_api(holds=planted_in_env_and_log)
def test_a_bundle_path_that_looks_like_markup_is_said_as_it_is(api, tmp_path: Path, capsys):
    """The path given is the user's, not markup: `wrote case-[bold]1[red].tar.gz`, not a crash or a lost word."""
    from dvdoctor.cli import run

    bundle = tmp_path / "case-[bold]1[red].tar.gz"
    kubeconfig = api.kubeconfig(tmp_path / "config", namespace=b.NS)
    assert run(["--kubeconfig", str(kubeconfig), "collect", "--bundle", str(bundle),
                "--audit-file", str(tmp_path / "audit.jsonl")]) == 0
    assert f"wrote {bundle}: " in capsys.readouterr().err
    assert tarfile.is_tarfile(bundle)


def one_huge_line_in_the_log(fake: FakeApi) -> None:
    planted_in_env_and_log(fake)
    fake.logs[BACKUP_POD] = "x" * (20 * 1024 * 1024) + "\n"  # a job that printed a whole file on one line


@pytest.mark.fake_api(holds=one_huge_line_in_the_log)
def test_a_log_line_of_any_length_is_read_bounded(api, tmp_path: Path):
    """Break-it review: the bundle kept 5000 lines, whatever their length: a 150 MB line went in whole
    (480 MB of memory), a bigger one would have run the process out of it. The API's limitBytes bounds
    what is read, in the facts and in the bundle."""
    from dvdoctor.cli import app
    from dvdoctor.cli import check_cmd  # noqa: F401  (registers `collect`)
    from dvdoctor.facts.bundle import LOG_BYTES
    from dvdoctor.facts.collect import LOG_TAIL_BYTES

    bundle = tmp_path / "case.tar.gz"
    kubeconfig = api.kubeconfig(tmp_path / "config", namespace=b.NS)
    result = CliRunner().invoke(app, ["--kubeconfig", str(kubeconfig), "collect", "--bundle", str(bundle)])
    assert result.exit_code == 0, result.output
    with tarfile.open(bundle) as tar:
        sizes = {m.name: m.size for m in tar.getmembers()}
        facts = json.loads(tar.extractfile("facts.json").read())
    assert 0 < sizes[f"logs/{BACKUP_POD}.log"] <= LOG_BYTES
    assert 0 < len(facts["logs"][BACKUP_POD]) <= LOG_TAIL_BYTES
    asked = [r for r in api.requests if r.path.endswith(f"/pods/{BACKUP_POD}/log")]
    assert asked and all("limitBytes" in r.query for r in asked)
