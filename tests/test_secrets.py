"""Secrets never leave: one namespace with secrets planted in every form a site has them (env values
named like secrets, a JDBC password, a URL's user:password@, --x VALUE and --x=VALUE arguments,
Authorization headers, a PEM key, bearer tokens), and every file or stream dvdoctor writes from it:
`collect -o`, `collect --bundle`, `check` in each format (stdout and --output-file), a saved job log
and the audit log. None may hold any planted value; each must still hold the evidence around it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

import builders as b
from dvdoctor.core import redact
from dvdoctor.repair.audit import AuditLog
from dvdoctor.flows.common import FlowOptions, save_log
from dvdoctor.repair.audit import Change
from fakeapi import FakeApi
from namespaces import run_jobs

#: name -> value: each value is a secret that must never be written out.
PLANTED_ENV = {
    "DB_PASS": "planted-env-db-pass",
    "AUTH": "planted-env-auth",
    "dv_api_token": "planted-env-lower-token",
    "S3_ACCESS_KEY": "planted-env-access-key",
    "LDAP_CREDENTIALS": "planted-env-credentials",
}
JDBC = "jdbc:db2://dv-engine-0.dv-server:50000/BIGSQL:user=admin;password=planted-jdbc-password;sslConnection=true;"
ODBC = "DSN=BIGSQL;UID=admin;PWD=planted-odbc-pwd;"
URL = "https://bar-user:planted-url-password@objects.example.com:443/dv-backups"
PEM = "-----BEGIN PRIVATE KEY-----\nMIIplantedPemBody0123456789\nplantedPemSecondLine==\n-----END PRIVATE KEY-----\n"
HEADER = "Authorization: Basic cGxhbnRlZC1iYXNpYy1hdXRo"
BEARER = "curl -H 'X-Trace: 1' --oauth2-bearer x bearer planted-bearer-token-42 https://dv-api"
ARGS = ["--admin-password", "planted-arg-separate", "--api-token=planted-arg-equals", "--port", "50000"]
SHELL = "start-dv --admin-password planted-arg-in-shell --ssl-keystore-pass=planted-arg-in-shell-eq"
#: the failed backup job's log: the line bar-job-failed quotes carries secrets too
LOG = (
    f"2021-01-14_19.20.07.123_UTC INFO connecting with {JDBC}\n"
    f"{b.RUNBOOK_ERRNO13} (as admin, password=planted-log-password, {HEADER}, url {URL})\n"
    f"2021-01-14_19.20.08.001_UTC DEBUG {BEARER}\n"
    f"{PEM}"
)

PLANTED = (
    *PLANTED_ENV.values(), "planted-jdbc-password", "planted-odbc-pwd", "planted-url-password",
    "MIIplantedPemBody0123456789", "plantedPemSecondLine", "cGxhbnRlZC1iYXNpYy1hdXRo", "planted-bearer-token-42",
    "planted-arg-separate", "planted-arg-equals", "planted-arg-in-shell", "planted-log-password",
)
BACKUP_POD = "dv-backup-job-5pfw2"


def assert_clean(text: str, where: str) -> None:
    """No planted value, also not one split over lines by a terminal table's wrapping."""
    squeezed = "".join(text.split())
    leaked = [s for s in PLANTED if s in text or s in squeezed]
    assert not leaked, f"{where} leaks {leaked}"


def planted_everywhere(fake: FakeApi) -> None:
    """A namespace whose dv-api pod, env and args carry every planted form, with a failed backup job."""
    data = b.healthy()
    api_pod = next(p for p in data["objects"]["pods"] if p["metadata"]["name"].startswith("dv-api-"))
    container = api_pod["spec"]["containers"][0]
    container["env"] = [{"name": k, "value": v} for k, v in PLANTED_ENV.items()] + [
        {"name": "CONNECTION", "value": JDBC},
        {"name": "ODBC_DSN", "value": ODBC},
        {"name": "BACKUP_TARGET", "value": URL},
        {"name": "TLS_MATERIAL", "value": PEM},
        {"name": "EXTRA_HEADERS", "value": HEADER},
        {"name": "DEBUG_CMD", "value": BEARER},
        {"name": "DB_HOST", "value": "dv-metastore"},
    ]
    container["args"] = list(ARGS)
    container["command"] = ["/bin/sh", "-c", SHELL]
    data["objects"]["jobs"].append(b.job("dv-backup-job", state="failed"))
    data["objects"]["pods"].append(b.job_pod("dv-backup-job", phase="Failed"))
    fake.load(data)
    fake.logs[BACKUP_POD] = LOG
    run_jobs(fake)


pytestmark = pytest.mark.fake_api(holds=planted_everywhere)


def invoke(api: FakeApi, tmp_path: Path, *argv: str):
    from dvdoctor.cli import app
    from dvdoctor.cli import check_cmd  # noqa: F401  (registers check and collect)

    kubeconfig = api.kubeconfig(tmp_path / "config", namespace=b.NS)
    return CliRunner().invoke(app, ["--kubeconfig", str(kubeconfig), *argv])


def test_collect_o_writes_facts_without_any_planted_secret(api, tmp_path: Path):
    out = tmp_path / "facts.json"
    result = invoke(api, tmp_path, "collect", "-o", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert_clean(text, "collect -o")
    assert_clean(result.output, "collect's own output")
    facts = json.loads(text)
    pod = next(p for p in facts["objects"]["pods"] if p["metadata"]["name"].startswith("dv-api-"))
    container = pod["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["DB_HOST"] == "dv-metastore"  # what is no secret stays
    assert env["DB_PASS"] == redact.REDACTED and env["AUTH"] == redact.REDACTED
    assert env["CONNECTION"].startswith("jdbc:db2://dv-engine-0.dv-server:50000/BIGSQL:user=admin;password=<redacted>;")
    assert env["BACKUP_TARGET"] == "https://bar-user:<redacted>@objects.example.com:443/dv-backups"
    assert container["args"] == ["--admin-password", "<redacted>", "--api-token=<redacted>", "--port", "50000"]
    assert (out.stat().st_mode & 0o777) == 0o600


def test_the_bundle_holds_no_planted_secret(api, tmp_path: Path):
    audit = tmp_path / "audit.jsonl"
    audit.write_text(json.dumps({"changes": [{"what": "deployments/dv-api", "before": f"env DB_PASS={PLANTED_ENV['DB_PASS']}",
                                              "after": f"args {' '.join(ARGS)}"}]}) + "\n")
    bundle = tmp_path / "case.tar.gz"
    result = invoke(api, tmp_path, "collect", "--bundle", str(bundle), "--audit-file", str(audit))
    assert result.exit_code == 0, result.output
    with tarfile.open(bundle) as tar:
        files = {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers()}
    assert f"logs/{BACKUP_POD}.log" in files and "audit.jsonl" in files
    for name, text in files.items():
        assert_clean(text, f"bundle member {name}")
    assert "[Errno 13] Permission denied" in files[f"logs/{BACKUP_POD}.log"]
    assert "-----BEGIN PRIVATE KEY-----<redacted>-----END PRIVATE KEY-----" in files[f"logs/{BACKUP_POD}.log"]


@pytest.mark.parametrize("fmt", ["table", "json", "junit", "sarif"])
def test_check_reports_hold_no_planted_secret(api, tmp_path: Path, fmt: str):
    copy = tmp_path / f"report.{fmt}"
    result = invoke(api, tmp_path, "check", "--no-pod", "-o", fmt, "--output-file", f"{fmt}={copy}")
    assert result.exit_code == 1, result.output  # bar-job-failed fails: the evidence is there
    for where, text in (("stdout", result.output), ("--output-file", copy.read_text())):
        assert_clean(text, f"check -o {fmt} ({where})")
        squeezed = "".join(text.split())
        assert "Permissiondenied" in squeezed and "redacted" in squeezed, (where, text[:2000])  # XML escapes the <>


def test_check_from_a_facts_file_with_secrets_reports_none(api, tmp_path: Path):
    """A facts file written by an older dvdoctor (or by hand) still has its secrets: the report drops them."""
    from dvdoctor.cluster.kube import connect
    from dvdoctor.facts.collect import collect

    cluster = connect(str(api.kubeconfig(tmp_path / "config", namespace=b.NS)), None, None)
    raw = tmp_path / "raw.json"
    raw.write_text(collect(cluster, use_pod=False).to_json())
    assert "planted-log-password" in raw.read_text()  # the input really holds them
    for fmt in ("json", "sarif", "junit"):
        result = invoke(api, tmp_path, "check", "--from", str(raw), "-o", fmt)
        assert result.exit_code == 1, result.output
        assert_clean(result.output, f"check --from -o {fmt}")


def test_a_saved_job_log_holds_no_planted_secret(tmp_path: Path):
    path = save_log(FlowOptions(log_dir=tmp_path), "dv-backup-job", BACKUP_POD, LOG)
    text = path.read_text()
    assert_clean(text, "the saved job log")
    assert b.RUNBOOK_ERRNO13 in text
    assert (path.stat().st_mode & 0o777) == 0o600


def test_the_audit_log_holds_no_planted_secret(tmp_path: Path):
    log = AuditLog(tmp_path / "state" / "audit.jsonl", where="test")
    log.record("side-deployments-running", "patch", b.NS, [
        Change("deployments/dv-api", json.dumps({"env": [{"name": "DB_PASS", "value": PLANTED_ENV["DB_PASS"]}]}),
               json.dumps({"args": ARGS, "command": ["/bin/sh", "-c", SHELL]})),
        Change("secret-bearing text", f"{HEADER} {URL}", f"{JDBC} {ODBC} {PEM}"),
    ], error=f"job failed: password=planted-log-password {BEARER}")
    text = (tmp_path / "state" / "audit.jsonl").read_text()
    assert_clean(text, "the audit log")
    assert_clean(json.dumps(log.entries), "the audit entries kept in memory")
    entry = json.loads(text)
    assert entry["changes"][0]["what"] == "deployments/dv-api" and entry["fix"] == "side-deployments-running"


# ---- the pass itself, form by form -----------------------------------------------------------

@pytest.mark.parametrize("line, expected", [
    ("DB_PASS=s3cret next", "DB_PASS=<redacted> next"),
    ("export AUTH='abc'", "export AUTH='<redacted>'"),
    ("jdbc:db2://h:50000/BIGSQL:user=admin;password=s3cret;ssl=true;", "jdbc:db2://h:50000/BIGSQL:user=admin;password=<redacted>;ssl=true;"),
    ("Driver={DB2};UID=admin;PWD=s3cret;", "Driver={DB2};UID=admin;PWD=<redacted>;"),
    ("postgres://dv:s3cret@db:5432/x", "postgres://dv:<redacted>@db:5432/x"),
    ("jdbc:db2://admin:s3cret@host:50000/BIGSQL", "jdbc:db2://admin:<redacted>@host:50000/BIGSQL"),
    ("run --admin-password s3cret --port 1", "run --admin-password <redacted> --port 1"),
    ("run --admin-password=s3cret --port 1", "run --admin-password=<redacted> --port 1"),
    ("Authorization: Basic YWRtaW46czNjcmV0", "Authorization: Basic <redacted>"),
    ('"authorization": "Bearer abc.def"', '"authorization": "Bearer <redacted>"'),
    ("sent bearer abc123", "sent bearer <redacted>"),
    ("a\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\nb",
     "a\n-----BEGIN RSA PRIVATE KEY-----<redacted>-----END RSA PRIVATE KEY-----\nb"),
    ("tail: -----BEGIN PRIVATE KEY-----\nMIIE cut short", "tail: -----BEGIN PRIVATE KEY-----<redacted>-----END PRIVATE KEY-----"),
    ("https://objects.example.com:443/path@v2", "https://objects.example.com:443/path@v2"),
    ("Operation failed: [Errno 13] Permission denied: '/mnt/PV/bar'", "Operation failed: [Errno 13] Permission denied: '/mnt/PV/bar'"),
    # a quoted path whose last part sounds secret, then a message about the file, is no key (break-it review, L4) ...
    ("--log-dir '/etc/passwd': not a folder", "--log-dir '/etc/passwd': not a folder"),
    ("cannot read '/etc/ssl/key': [Errno 13] Permission denied", "cannot read '/etc/ssl/key': [Errno 13] Permission denied"),
    # ... but any other value after a path is a key's (the second break-it review found these let through)
    ("example.com/db-password: s3cret", "example.com/db-password: <redacted>"),
    ('"/run/secrets/token": "s3cret"', '"/run/secrets/token": "<redacted>"'),
    ("/run/secrets/db-password: s3cret", "/run/secrets/db-password: <redacted>"),
    ("/etc/dv/secret=s3cret", "/etc/dv/secret=<redacted>"),
    ("'/run/secrets/token': s3cret", "'/run/secrets/token': \"<redacted>\""),
    ("./config/api_key: s3cret", "./config/api_key: <redacted>"),
    ("path=/run/secrets/password:s3cret", "path=/run/secrets/password:<redacted>"),
    ("https://vault.example.com/v1/auth/token=s3cret", "https://vault.example.com/v1/auth/token=<redacted>"),
])
def test_each_form_is_redacted_and_the_rest_kept(line: str, expected: str):
    assert redact.text(line) == expected
    assert redact.text(expected) == expected  # idempotent: a second pass changes nothing


def test_structures_are_redacted_by_name_by_flag_and_by_shape():
    pod = {"env": [{"name": "DB_PASS", "value": "x1"}, {"name": "DB_HOST", "value": "h"},
                   {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "dv-secret", "key": "password"}}}],
           "args": ["--token", "x2", "--verbose", "--password", "--next"],
           "data": {"tls.key": "x3", "apiKey": "x4", "replicas": 3}}
    out = redact.data(pod)
    assert out["env"][0]["value"] == "<redacted>" and out["env"][1]["value"] == "h"
    assert out["env"][2]["valueFrom"] == {"secretKeyRef": {"name": "dv-secret", "key": "password"}}  # a reference, kept
    # what follows a secret flag is its value, whatever it looks like: `--next` goes too (over-redaction is accepted)
    assert out["args"] == ["--token", "<redacted>", "--verbose", "--password", "<redacted>"]
    assert out["data"] == {"tls.key": "<redacted>", "apiKey": "<redacted>", "replicas": 3}
    assert pod["env"][0]["value"] == "x1"  # a copy: the facts in memory are untouched


@pytest.mark.parametrize("written, secret", [
    ('{"name": "DB_PASS", "value": "x-env-json"}', "x-env-json"),
    ("env:\n- name: DB_PASS\n  value: x-env-yaml\n", "x-env-yaml"),
    ('"args": ["--admin-password", "x-args-json", "--port"]', "x-args-json"),
    ("args:\n- --admin-password\n- x-args-yaml\n", "x-args-yaml"),
])
def test_structures_written_out_as_text_are_redacted_too(written: str, secret: str):
    """An audit entry's before/after may be a JSON or YAML body in a string: its secrets go too."""
    assert secret not in redact.text(written) and "<redacted>" in redact.text(written)


def test_redaction_changes_no_verdict(api, tmp_path: Path):
    """`check --from` a redacted facts file gives the live run's verdicts: what is dropped is never evidence a check needs."""
    live = invoke(api, tmp_path, "check", "--no-pod", "-o", "json")
    saved = tmp_path / "facts.json"
    assert invoke(api, tmp_path, "collect", "--no-pod", "-o", str(saved)).exit_code == 0
    offline = invoke(api, tmp_path, "check", "--from", str(saved), "-o", "json")
    assert live.exit_code == offline.exit_code == 1
    verdicts = [[(r["id"], r["status"], len(r["problems"])) for r in json.loads(run.output)["results"]] for run in (live, offline)]
    assert verdicts[0] == verdicts[1]
    assert ("bar-job-failed", "fail", 1) in verdicts[0]


def test_the_error_line_and_a_failed_jobs_log_lines_on_the_terminal_hold_no_secret(tmp_path: Path, capsys):
    """The one error line may quote a value or a server's message; a failed job's last log lines are printed."""
    from rich.console import Console

    from dvdoctor.cli import run
    from dvdoctor.flows import jobs
    from dvdoctor.flows.common import explain_failure

    config = tmp_path / "dvdoctor.yaml"
    config.write_text(f"names:\n  bar_pvc: 'x {HEADER}'\n")
    assert run(["--config", str(config), "check", "--from", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "names.bar_pvc" in err and "Authorization: Basic <redacted>" in err
    assert_clean(err, "the error line")

    console = Console(record=True, width=300)
    outcome = jobs.JobOutcome(outcome="Failed", reason="BackoffLimitExceeded", pod=BACKUP_POD,
                              log="starting\n" + SHELL + "\n" + URL + "\n", matches=[])
    explain_failure(console, outcome)
    shown = console.export_text()
    assert "BackoffLimitExceeded" in shown and "start-dv --admin-password <redacted>" in shown
    assert_clean(shown, "a failed job's log lines")


# ---- forms found by a break-it review: each leaked whole or in part before ----------------------

@pytest.mark.parametrize("line, secrets", [
    ("""dvstart --password "QuotedLEAK4" --token 'QuotedLEAK5'""", ["QuotedLEAK4", "QuotedLEAK5"]),
    ("dvstart --admin-password -DashLEAK6 --port 1", ["DashLEAK6"]),
    ('"args": ["--admin-password", "-DashLEAK7"]', ["DashLEAK7"]),
    ("jdbc:db2://h:50000/BIGSQL:user=admin;password=Sp,litLEAK1;", ["litLEAK1"]),
    ("BACKEND_URL=https://admin:pa/ssLEAK2@db.example/x", ["ssLEAK2", "pa/ss"]),
    ("BACKEND_URL=https://admin:pa ssLEAK3@db.example/x", ["ssLEAK3"]),
    ('PASSWORD="quoted 2LEAK8"', ["2LEAK8", "quoted"]),
    ('PASSWORD="<redacted> 2LEAK9"', ["2LEAK9"]),
    ("Driver={DB2};Pwd={hun;ter2LEAK};UID=admin", ["ter2LEAK", "hun"]),
    ('{"before": "env PASSWORD=\\"spaced LEAK10\\" next"}', ["LEAK10", "spaced"]),
    ("DB_TOKEN=basic LEAK11", ["LEAK11"]),
    ('{"password": 12345678, "port": 1}', ["12345678"]),
])
def test_break_it_forms_leave_nothing(line: str, secrets: list[str]):
    out = redact.text(line)
    assert not [s for s in secrets if s in out], out
    assert "<redacted>" in out and redact.text(out) == out


def test_a_json_text_stays_json_after_redaction():
    """The bundle's audit.jsonl is redacted as text: its lines must still parse."""
    entry = {"before": 'env PASSWORD="a b" DB_PASS=x,y', "after": ["--admin-password", "-x"], "n": {"pwd": 5}}
    out = json.loads(redact.text(json.dumps(entry)))
    assert out["before"] == 'env PASSWORD="<redacted>" DB_PASS=<redacted>' and out["after"][1] == "<redacted>"


def test_structures_drop_values_of_any_type_under_a_secret_name():
    pod = {"password": 12345678, "ratio": {"apiKey": 1.5}, "passwords": ["LEAKa", 7, {"name": "kept"}],
           "env": [{"name": "DB_PASS", "value": 4242}], "automountServiceAccountToken": False,
           "args": ["--admin-password", "-DashLEAK6", "--port", "1"]}
    out = redact.data(pod)
    assert out["password"] == out["ratio"]["apiKey"] == out["env"][0]["value"] == "<redacted>"
    assert out["passwords"] == ["<redacted>", "<redacted>", {"name": "kept"}]
    assert out["automountServiceAccountToken"] is False  # a yes/no is no secret, and is evidence
    assert out["args"] == ["--admin-password", "<redacted>", "--port", "1"]


BREAK_IT_LEAKS = ("QuotedLEAK4", "QuotedLEAK5", "DashLEAK6", "litLEAK1", "ssLEAK2", "ssLEAK3", "2LEAK8", "ter2LEAK",
                  "12345678", "DashLEAK9", "S3KRTcredsE2E", "S3KRTdb2E2E", "S3KRTmyE2E")


def break_it_forms_in_dv_engine(fake: FakeApi) -> None:
    """A healthy namespace whose dv-engine-0 first container carries the break-it forms, whose Jobs end."""
    data = b.healthy()
    pod = next(p for p in data["objects"]["pods"] if p["metadata"]["name"] == "dv-engine-0")
    container = pod["spec"]["containers"][0]
    container["command"] = ["sh", "-c", """dvstart --password "QuotedLEAK4" --token 'QuotedLEAK5'"""]
    container["args"] = ["--admin-password", "-DashLEAK6", "--engine-key=-DashLEAK9"]
    container["env"] = [
        {"name": "DSN", "value": "jdbc:db2://h:50000/BIGSQL:user=admin;password=Sp,litLEAK1;"},
        {"name": "BACKEND_URL", "value": "https://admin:pa/ssLEAK2@db.example/x"},
        {"name": "OTHER_URL", "value": "https://admin:pa ssLEAK3@db.example/x"},
        {"name": "START", "value": 'PASSWORD="quoted 2LEAK8" dvstart'},
        {"name": "ODBC", "value": "Driver={DB2};Pwd={hun;ter2LEAK};"},
        {"name": "CREDS", "value": "S3KRTcredsE2E"},
        {"name": "CONNECT", "value": "db2 connect to BIGSQL user admin using S3KRTdb2E2E"},
    ]
    pod["spec"]["containers"].append({"name": "sidecar", "image": "mysql", "command": ["mysql"],
                                      "args": ["-h", "db", "-p", "S3KRTmyE2E"]})
    pod["metadata"].setdefault("annotations", {})["dv.example/password"] = 12345678
    fake.load(data)
    run_jobs(fake)


@pytest.mark.fake_api(holds=break_it_forms_in_dv_engine)
def test_the_break_it_forms_leave_no_output(api, tmp_path: Path):
    """End to end: the forms planted in dv-engine-0's first container, then `collect -o`, `--bundle` and `check -o json`."""
    facts, bundle = tmp_path / "facts.json", tmp_path / "case.tar.gz"
    assert invoke(api, tmp_path, "collect", "--no-pod", "-o", str(facts)).exit_code == 0
    assert invoke(api, tmp_path, "collect", "--no-pod", "--bundle", str(bundle)).exit_code == 0
    report = invoke(api, tmp_path, "check", "--no-pod", "-o", "json")
    with tarfile.open(bundle) as tar:
        members = {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers() if m.isfile()}
    outputs = {"collect -o": facts.read_text(), "check -o json": report.output,
               **{f"bundle {name}": text for name, text in members.items()}}
    for where, text in outputs.items():
        leaked = [s for s in BREAK_IT_LEAKS if s in text]
        assert not leaked, f"{where} leaks {leaked}"
    written = json.loads(facts.read_text())
    engine = next(p for p in written["objects"]["pods"] if p["metadata"]["name"] == "dv-engine-0")
    assert engine["spec"]["containers"][0]["args"] == ["--admin-password", "<redacted>", "--engine-key=<redacted>"]


# ---- forms found by the break-it review of 2026-12-03 (session 12): each leaked before -----------

@pytest.mark.parametrize("line, secrets", [
    ("db2 connect to BIGSQL user admin using S3KRTdb2", ["S3KRTdb2"]),
    ("mysql -h db -pS3KRTmy1 bigsql && mysqldump -p S3KRTmy2 x", ["S3KRTmy1", "S3KRTmy2"]),
    ("/usr/bin/sshpass -p S3KRTssh ssh dv@host", ["S3KRTssh"]),
    ("ldapsearch -x -D cn=admin,dc=ex -w S3KRTldap -b dc=ex", ["S3KRTldap"]),
    ("curl -sS -u admin:S3KRTcurl https://dv-api/x", ["S3KRTcurl"]),
    ("db=admin:S3KRTbare@db2.example:50000/BIGSQL", ["S3KRTbare"]),
    ("Cookie: session=S3KRTck1; csrf=S3KRTck2", ["S3KRTck1", "S3KRTck2"]),
    ("password: |\n  S3KRTblk1\n  S3KRTblk2\nport: 1", ["S3KRTblk1", "S3KRTblk2"]),
    ("- name: DB_PASSWORD\n  valueFrom: x\n  value: S3KRTvf", ["S3KRTvf"]),
    ('{"value": "S3KRTfirst", "name": "DB_PASSWORD"}', ["S3KRTfirst"]),
    ("login?user=a&password%3DS3KRTenc&x=1", ["S3KRTenc"]),
    ("pw=S3KRTpw CREDS=S3KRTcreds", ["S3KRTpw", "S3KRTcreds"]),
    # the second review's forms
    ('mysql -uroot -p"S3KRTq1" bigsql', ["S3KRTq1"]),
    ("db2 connect to BIGSQL USER admin USING 'S3KRTq2'", ["S3KRTq2"]),
    ("curl -uadmin:S3KRTc1 https://x && curl -su admin:S3KRTc2 https://y", ["S3KRTc1", "S3KRTc2"]),
    ("db2inst1:S3KRTip@10.1.2.3:50000", ["S3KRTip"]),
    ("oc login -u kubeadmin -p S3KRToc https://api:6443; docker login -u me -p S3KRTdk reg", ["S3KRToc", "S3KRTdk"]),
    ("- value: S3KRTyv\n  name: DB_PASS", ["S3KRTyv"]),
    ('{"value":"S3KRTjv", "valueFrom":null, "name":"DB_PASS"}', ["S3KRTjv"]),
    ("password:\n    S3KRTnext\nport: 1", ["S3KRTnext"]),
    ('["mysql","-p","S3KRTarr"]', ["S3KRTarr"]),
    ("password => S3KRTarrow", ["S3KRTarrow"]),
    ("<dbPassword>S3KRTxml</dbPassword>", ["S3KRTxml"]),
])
def test_session_12_break_it_forms_leave_nothing(line: str, secrets: list[str]):
    out = redact.text(line)
    assert not [s for s in secrets if s in out], out
    assert "<redacted>" in out and redact.text(out) == out


@pytest.mark.parametrize("line", [
    "mkdir -p /mnt/PV/bar", "image: cp.icr.io/cp/dv-engine:1.5.0@sha256:0123abcd", "git@github.com:org/repo.git",
    "user admin logged in using ssh", "tar -cf - . | gzip", "ldap mounted at /mnt/ldap",
    "password:\n  secretKeyRef:\n    name: db-credentials", "connected to 10.0.0.5:50000 at 10:30",
])
def test_evidence_that_only_looks_like_those_forms_is_kept(line: str):
    assert redact.text(line) == line


def test_everything_under_a_secret_name_goes_but_the_names_it_holds():
    out = redact.data({"password": {"value": "S3KRTnest"}, "passwords": [{"v": "S3KRTlist"}],
                       "secretKeyRef": {"name": "db", "key": "password", "optional": False}})
    assert out == {"password": {"value": "<redacted>"}, "passwords": [{"v": "<redacted>"}],
                   "secretKeyRef": {"name": "db", "key": "password", "optional": False}}


def test_a_containers_one_letter_password_flag_goes_and_other_one_letter_flags_stay():
    out = redact.data([{"name": "db", "command": ["/usr/bin/mysql"], "args": ["-h", "db", "-p", "S3KRTa", "-pS3KRTb"]},
                       {"name": "mk", "command": ["mkdir"], "args": ["-p", "/mnt/PV/bar"]}])
    assert out[0]["args"] == ["-h", "db", "-p", "<redacted>", "-p<redacted>"]
    assert out[1]["args"] == ["-p", "/mnt/PV/bar"]


def test_redaction_of_long_odd_lines_does_not_hang():
    """Break-it review: 40 KB of `-a`, of `.d` or of `"value": "x", ` on one line (an annotation anyone
    may set, a job's log) kept redaction busy for minutes, every position starting a scan to the line's
    end. A hang guard, not a speed measure (benchmarks/redact.py measures): each took 150-180 s before,
    and a run that takes even a tenth of that fails here."""
    lines = ["x" + "-a" * 20000, "a:b@c" + ".d" * 20000, '"value": "x", ' * 3000, "a:" * 20000,
             "pass-" * 8000, "user " * 8000 + "using x", "<password>" * 4000]
    script = ("import sys; from dvdoctor.core import redact\n"
              "for line in sys.stdin.read().split('\\0'): redact.text(line)\n")
    done = subprocess.run([sys.executable, "-c", script], input="\0".join(lines), text=True, timeout=15,
                          capture_output=True)
    assert done.returncode == 0, done.stderr
