"""Bad input everywhere: every value a command takes is checked before anything is sent, and a bad
one ends the run with one line naming the value and what is allowed, exit 2.

The commands point at a kubeconfig whose server does not exist: any request would fail with
"cannot reach", so a row passing proves the value was refused first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dvdoctor.cli import run

ROWS = [
    # (argv, what the one line must name)
    (["-n", "CPD30", "check"], "'CPD30'"),
    (["-n", "cpd_30", "backup", "--yes"], "'cpd_30'"),
    (["backup", "--storage-class", "Gold Class"], "'Gold Class'"),
    (["backup", "--bar-size", "30GB"], "'30GB'"),
    (["backup", "--bar-size", "-5Gi"], "'-5Gi'"),
    (["backup", "--timeout", "0"], "--timeout '0': give a number of seconds ≥ 1 (see: dvdoctor backup --help)"),
    (["backup", "--timeout", "soon"], "--timeout 'soon': give a number of seconds ≥ 1"),
    (["backup", "--log-dir", "/nonexistent/logs"], "/nonexistent/logs"),
    (["backup", "--ignore-check", "no-such-check"], "no-such-check"),
    (["restore", "--from", "yesterday"], "'yesterday'"),
    (["restore", "--from", "2021-01-22-19-27"], "'2021-01-22-19-27'"),
    (["restore", "--from", "../../etc"], "'../../etc'"),
    (["restore", "--ready-timeout", "-1"], "--ready-timeout '-1': give a number of seconds ≥ 0"),
    (["restore", "--log-dir", "/nonexistent/logs"], "/nonexistent/logs"),
    (["prune", "--keep", "0"], "--keep '0': give a whole number ≥ 1"),
    (["prune", "--keep", "many"], "--keep 'many': give a whole number ≥ 1"),
    (["prune"], "--keep"),
    (["fix"], "--issue"),
    (["fix", "--issue", "no-such-check"], "no-such-check"),
    (["fix", "--issue", "bar-low-space", "--size", "lots"], "'lots'"),
    (["fix", "--issue", "bar-low-space", "--keep", "-1"], "--keep"),
    (["fix", "--issue", "broken-backup-symlink", "--to", "latest"], "'latest'"),
    (["fix", "--issue", "bar-pvc-missing", "--storage-class", "UPPER"], "'UPPER'"),
    (["check", "--only", "nope"], "nope"),
    (["check", "-o", "xml"], "--output 'xml': give one of table, json, junit, sarif (see: dvdoctor check --help)"),
    (["check", "--fail-on=nope"], "--fail-on 'nope': give one of error, warn"),
    (["check", "--from", "/nonexistent/facts.json"], "/nonexistent/facts.json"),
    (["explain", "no-such-check"], "no-such-check"),
    (["-n", "cpd30", "schedule", "--cron", "every night", "--image", "quay.io/x/dvdoctor:1"], "'every night'"),
    (["-n", "cpd30", "schedule", "--cron", "0 25 * * *", "--image", "quay.io/x/dvdoctor:1"], "'0 25 * * *'"),
    (["-n", "cpd30", "schedule", "--cron", "0 2 * * *", "--image", "quay.io/x/dvdoctor:1", "--keep", "0"], "--keep"),
    (["-n", "cpd30", "schedule", "--cron", "0 2 * * *", "--image", "not an image"], "'not an image'"),
    (["-n", "cpd30", "schedule", "--cron", "0 2 * * * *", "--image", "quay.io/x/dvdoctor:1", "--apply"], "'0 2 * * * *'"),
    (["-n", "cpd30", "schedule", "--cron", "0 2 * * *", "--image", "quay.io/x/dvdoctor 1", "--apply"], "'quay.io/x/dvdoctor 1'"),
    (["-n", "cpd30", "schedule", "--cron", "@daily", "--image", "quay.io/x/DVdoctor:1", "--apply"], "'quay.io/x/DVdoctor:1'"),
    (["-n", "cpd30", "schedule", "--cron", "@daily", "--image", "quay.io/x/dvdoctor:", "--apply"], "'quay.io/x/dvdoctor:'"),
    (["schedule", "--cron", "0 2 * * *", "--image", "quay.io/x/dvdoctor:1", "--apply"], "-n NAMESPACE"),
    (["-n", "cpd30", "schedule", "--cron", "0 2 * * *", "--image", "quay.io/x/dvdoctor:1", "--dry-run"], "--apply"),
    (["-n", "cpd30", "rbac", "--service-account", "Bad_SA"], "'Bad_SA'"),
    (["-n", "cpd30", "rbac", "--for", "everything"], "--for 'everything': give one of check, fix, backup,"),
    # every value is matched whole: a trailing newline is not part of a valid value
    (["-n", "cpd30\n", "check"], "'cpd30\\n'"),
    (["-n", "cpd30", "rbac", "--service-account", "dvdoctor\n"], "'dvdoctor\\n'"),
    (["restore", "--from", "2021-01-22-19-27-31\n"], "'2021-01-22-19-27-31\\n'"),
    (["fix", "--issue", "broken-backup-symlink", "--to", "2021-01-22-19-27-31\n"], "'2021-01-22-19-27-31\\n'"),
    (["backup", "--bar-size", "30Gi\n"], "'30Gi\\n'"),
    (["backup", "--storage-class", "gold\n"], "'gold\\n'"),
    # a storage class or a volume is a DNS-1123 subdomain (dots between parts); --volume was not
    # checked at all (break-it, session 21: a newline in it split the output)
    (["backup", "--storage-class", "fast..ssd"], "'fast..ssd'"),
    (["fix", "--issue", "bar-pvc-missing", "--volume", "Bad Name!"], "'Bad Name!'"),
    (["fix", "--issue", "bar-pvc-missing", "--volume", "pv-1\nY"], "'pv-1\\nY'"),
    # a config file named that is not there, whatever the command (break-it, session 21: `checks`,
    # `explain` and `rbac`, which read no setting, exited 0)
    (["--config", "/nonexistent/dvdoctor.yaml", "checks"], "--config /nonexistent/dvdoctor.yaml: no such file"),
    (["explain", "stale-bar-marker", "--config=/nonexistent/d.yaml"], "--config /nonexistent/d.yaml: no such file"),
    (["-n", "cpd30", "rbac", "--config", "/nonexistent/d.yaml"], "--config /nonexistent/d.yaml: no such file"),
    # the last --config given is the one the parser takes (second break-it, session 21)
    (["--config", "/dev/null", "checks", "--config", "/nonexistent/last.yaml"], "--config /nonexistent/last.yaml"),
    (["backup", "--storage-class", ""], "--storage-class ''"),
    (["-n", "cpd30", "schedule", "--cron", "@daily\n", "--image", "quay.io/x/dvdoctor:1"], "'@daily\\n'"),
    (["-n", "cpd30", "schedule", "--cron", "0 2 * * *\n", "--image", "quay.io/x/dvdoctor:1"], "'0 2 * * *\\n'"),
    (["-n", "cpd30", "schedule", "--cron", "0 2 * * *", "--image", "quay.io/x/dvdoctor:1\n"], "'quay.io/x/dvdoctor:1\\n'"),
    (["lab", "create", "/nonexistent/lab", "-n", "cpd30\n"], "'cpd30\\n'"),
    # a number is plain digits (seconds and fractions: one decimal point): no space, newline, sign,
    # underscore, exponent or trailing ".0", which Python's int() and float() would take
    (["prune", "--copies", "--keep-daily", "3\n"], "--keep-daily '3\\n': give a whole number ≥ 0"),
    (["prune", "--copies", "--keep-weekly", " 3"], "--keep-weekly ' 3': give a whole number ≥ 0"),
    (["prune", "--copies", "--keep-monthly", "+3"], "--keep-monthly '+3': give a whole number ≥ 0"),
    (["prune", "--copies", "--keep-daily", "3_0"], "--keep-daily '3_0': give a whole number ≥ 0"),
    (["prune", "--copies", "--keep-daily", "3.0"], "--keep-daily '3.0': give a whole number ≥ 0"),
    (["prune", "--keep", "2 "], "--keep '2 ': give a whole number ≥ 1"),
    (["fix", "--issue", "bar-low-space", "--keep", "\t2"], "--keep '\\t2': give a whole number ≥ 0"),
    (["-n", "cpd30", "schedule", "--cron", "@daily", "--image", "quay.io/x/dvdoctor:1", "--copy", "--copy-secret", "s",
      "--copy-keep-daily", "7\n"], "--copy-keep-daily '7\\n': give a whole number ≥ 0"),
    (["-n", "cpd30", "schedule", "--cron", "@daily", "--image", "quay.io/x/dvdoctor:1", "--keep", "2\n"],
     "--keep '2\\n': give a whole number"),
    (["backup", "--timeout", "60\n"], "--timeout '60\\n': give a number of seconds ≥ 1"),
    (["backup", "--timeout", "1e3"], "--timeout '1e3': give a number of seconds ≥ 1"),
    (["restore", "--ready-timeout", " 5"], "--ready-timeout ' 5': give a number of seconds ≥ 0"),
    (["lab", "churn", "/nonexistent/lab", "--percent", "2\n"], "--percent '2\\n': give a number"),
    (["lab", "churn", "/nonexistent/lab", "--percent", "2", "--seed", "-1"], "--seed '-1': give a whole number"),
    # a value that names no check id would run every check, or repair none and exit 0
    (["explain", ""], "explain '' names no check id"),
    (["explain", " "], "explain ' ' names no check id"),
    (["fix", "--issue", "", "--yes"], "--issue '' names no check id"),
    (["fix", "--issue", ",", "--yes"], "--issue ',' names no check id"),
    (["check", "--only", ""], "--only '' names no check id"),
    (["check", "--skip", " , "], "--skip ' , ' names no check id"),
    # NaN is no number of seconds
    (["backup", "--timeout", "nan"], "dvdoctor: error: --timeout 'nan': give a number of seconds ≥ 1 (see: dvdoctor backup --help)"),
    (["restore", "--ready-timeout", "nan"], "--ready-timeout 'nan': give a number of seconds ≥ 0"),
    (["lab", "create", "/nonexistent/lab", "--bar-hold", "nan"], "--bar-hold"),
]


@pytest.fixture
def nowhere(tmp_path: Path, monkeypatch) -> Path:
    """A kubeconfig whose server is a closed port: nothing can be sent anyway."""
    from fakeapi import FakeApi, closed_port

    path = FakeApi().kubeconfig(tmp_path / "config", server=f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("DVDOCTOR_LAB", raising=False)
    monkeypatch.chdir(tmp_path)
    return path


@pytest.mark.parametrize(("argv", "named"), ROWS, ids=[" ".join(r[0]) for r in ROWS])
def test_bad_value_is_refused_in_one_line_before_anything_is_sent(nowhere: Path, capsys, argv: list[str],
                                                                  named: str) -> None:
    code = run(argv)
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (out, err)
    assert len(lines) == 1 and lines[0].startswith("dvdoctor: error: "), err
    assert named in lines[0], lines[0]
    assert "cannot reach" not in lines[0] and "Traceback" not in err
    assert "Input should" not in lines[0] and "Value error" not in lines[0]  # words, not the validator's


def test_help_is_shown_whatever_config_file_is_named(nowhere: Path, capsys, monkeypatch, tmp_path) -> None:
    assert run(["--config", "/nonexistent/d.yaml", "check", "--help"]) == 0
    assert run(["--config", "/nonexistent/d.yaml"]) == 0  # no command: the help, as without the option
    good = tmp_path / "good.yaml"
    good.write_text("names: {}\n")
    assert run(["--config", "/nonexistent/first.yaml", "--config", str(good), "checks"]) == 0
    monkeypatch.setenv("DVDOCTOR_CONFIG", "/nonexistent/d.yaml")
    assert run(["checks", "-h"]) == 0
    capsys.readouterr()
    assert run(["checks"]) == 2 and "DVDOCTOR_CONFIG" not in capsys.readouterr().out
    # the shell completing a word never fails on it (second break-it, session 21): as the shell runs it
    import os
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "dvdoctor"], capture_output=True, text=True,
                          env={**os.environ, "_DVDOCTOR_COMPLETE": "complete_bash", "COMP_WORDS": "dvdoctor ch",
                               "COMP_CWORD": "1"})
    assert done.returncode == 0 and "check" in done.stdout.split() and "no such file" not in done.stdout + done.stderr


@pytest.mark.parametrize("argv", [["backup", "--storage-class", "fast.ssd", "--yes"],
                                  ["fix", "--issue", "bar-pvc-missing", "--storage-class", "nfs.example-1",
                                   "--volume", "pvc-0a1b.dv-bar", "--yes"],
                                  ["-n", "cpd30", "rbac", "--service-account", "dvdoctor.backups"]])
def test_a_name_with_dots_is_a_kubernetes_name_where_the_object_takes_one(nowhere: Path, capsys, argv) -> None:
    """Storage classes, volumes and service accounts are named by DNS-1123 subdomains, as the config
    file's storage_class already took them: the command line refused `fast.ssd`."""
    code = run(argv)
    err = capsys.readouterr().err
    assert "not a valid Kubernetes name" not in err and "Traceback" not in err, err
    assert code != 2 or "cannot reach" in err, (code, err)


# ---- odd data in files: one line naming the file and what was wrong, never a traceback ----------

DEEP_JSON = "[" * 100_000 + "]" * 100_000
DEEP_YAML = "a: " + "[" * 5000 + "]" * 5000 + "\n"
#: A few hundred bytes that are a billion values once the aliases are followed, ten levels deep.
ALIAS_BOMB = "l0: &l0 [" + ", ".join(["x"] * 10) + "]\n" + "".join(
    f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]\n" for i in range(1, 10))

KUBECONFIG = """apiVersion: v1
kind: Config
current-context: x
clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
users: [{name: u, user: {token: t}}]
"""
#: (what to replace in KUBECONFIG, with what, what the line says)
KUBECONFIG_SHAPES = [
    ('clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]', "clusters: 5", "clusters is a number, a list is expected"),
    ("context: {cluster: c, user: u}", "context: 5", "contexts[0].context is a number, a mapping is expected"),
    ('server: "http://127.0.0.1:1"', "server: 5", "clusters[0].cluster.server is a number, text is expected"),
    ("token: t", "token: [1]", "users[0].user.token is a list, text is expected"),
    ("current-context: x", "current-context: 5", "current-context is a number, a context name is expected"),
    ("users: [{name: u, user: {token: t}}]", "users: [u]", "users[0] is text, a mapping with name and user is expected"),
    ("{name: x, context:", "{name: [x], context:", "contexts[0].name is a list, a name is expected"),
    ("user: {token: t}", "user: {exec: 5}", "users[0].user.exec is a number, a mapping is expected"),
]

#: (files to write under the test's folder, argv with {tmp} for that folder, what the one line must name)
FILE_ROWS = [
    ({"kubeconfig": "apiVersion: v1\nclusters: [unclosed\n"}, ["--kubeconfig", "{tmp}/kubeconfig", "check"],
     "kubeconfig {tmp}/kubeconfig is not YAML"),
    ({"kubeconfig": "- just\n- a list\n"}, ["--kubeconfig", "{tmp}/kubeconfig", "check"], "is not a kubeconfig"),
    ({"kubeconfig": b"\xff\xfe\x00\x01"}, ["--kubeconfig", "{tmp}/kubeconfig", "check"], "cannot be used"),
    ({"kubeconfig": "a: " + "[" * 50_000 + "\n"}, ["--kubeconfig", "{tmp}/kubeconfig", "check"], "{tmp}/kubeconfig"),
    ({"kubeconfig": DEEP_YAML}, ["--kubeconfig", "{tmp}/kubeconfig", "check"], "nested deeper than"),
    ({}, ["collect", "-o", "{tmp}"], "-o {tmp}: is a folder"),
    ({}, ["collect", "-o", "{tmp}/missing/facts.json"], "the folder {tmp}/missing does not exist"),
    ({}, ["collect", "--bundle", "{tmp}"], "--bundle {tmp}: is a folder"),
    ({}, ["check", "--output-file", "json={tmp}/missing/r.json"], "the folder {tmp}/missing does not exist"),
    ({"lab/lab.json": '{"namespace": "cpd30", "rules": [', "lab/objects/.keep": ""}, ["--lab", "{tmp}/lab", "check"],
     "the lab's state cannot be read"),
    ({"lab/lab.json": "[1, 2]", "lab/objects/.keep": ""}, ["--lab", "{tmp}/lab", "check"], "the lab's state is damaged"),
    ({"lab/lab.json": DEEP_JSON}, ["--lab", "{tmp}/lab", "check"], "nested deeper than 64 levels"),
    ({"facts.json": DEEP_JSON}, ["check", "--from", "{tmp}/facts.json"], "nested deeper than 64 levels"),
    ({"facts.json": '{"schema": NaN}'}, ["check", "--from", "{tmp}/facts.json"], "NaN is not a number JSON allows"),
    ({"facts.json": b"\x89PNG\r\n\x1a\n"}, ["check", "--from", "{tmp}/facts.json"], "is not a JSON facts bundle"),
    ({}, ["check", "--from", "{tmp}"], "bundle {tmp} is a folder"),
    ({"c.yaml": "thresholds:\n  space_margin: .nan\n"}, ["--config", "{tmp}/c.yaml", "check", "--from", "{tmp}/none"],
     "c.yaml:2: thresholds.space_margin: '.nan' is not allowed; give a finite number"),
    ({"c.yaml": "thresholds:\n  max_backup_age_hours: .inf\n"}, ["--config", "{tmp}/c.yaml", "check", "--from", "{tmp}/none"],
     "thresholds.max_backup_age_hours: '.inf' is not allowed"),
    ({"c.yaml": "thresholds:\n  max_backup_age_hours: -.Inf\n"}, ["--config", "{tmp}/c.yaml", "check", "--from", "{tmp}/none"],
     "thresholds.max_backup_age_hours: '-.Inf' is not allowed"),
    ({"c.yaml": "names:\n  bar_pvc: \"dv-bar-pvc\\n\"\n"}, ["--config", "{tmp}/c.yaml", "check", "--from", "{tmp}/none"],
     "names.bar_pvc"),
    # PyYAML builds a date from what looks like one, and an impossible one is its ValueError: dates stay text
    *[({"c.yaml": f"suppressions: [{{check: incomplete-backups, until: {date}}}]\n"},
       ["--config", "{tmp}/c.yaml", "check", "--from", "{tmp}/none"], "c.yaml:1: suppressions[0].until: unknown field")
      for date in ("2026-13-01", "2026-02-30", "9999-12-31T99:00:00", "!!timestamp 2026-13-01")],
    # a kubeconfig of the wrong shape: the kubernetes client would trip over it with a traceback
    *[({"kubeconfig": KUBECONFIG.replace(good, bad)}, ["--kubeconfig", "{tmp}/kubeconfig", "check"],
       f"kubeconfig {{tmp}}/kubeconfig is not a kubeconfig: {named}")
      for good, bad, named in KUBECONFIG_SHAPES],
    ({"kubeconfig": KUBECONFIG.replace("\"http://127.0.0.1:1\"", "2026-13-01")}, ["--kubeconfig", "{tmp}/kubeconfig", "check"],
     "cannot read kubeconfig {tmp}/kubeconfig: month must be in 1..12"),
    ({"c.yaml": DEEP_YAML}, ["--config", "{tmp}/c.yaml", "check", "--from", "{tmp}/none"], "nested deeper than 16 levels"),
    ({"c.yaml": ALIAS_BOMB},
     ["--config", "{tmp}/c.yaml", "check", "--from", "{tmp}/none"], "more than 100000 values"),
    # Python refuses int() of more than 4300 decimal digits with a ValueError of its own
    ({"c.yaml": "thresholds:\n  max_backup_age_hours: " + "9" * 5000 + "\n"},
     ["--config", "{tmp}/c.yaml", "check", "--from", "{tmp}/none"], "c.yaml: not a dvdoctor config file: a number longer than"),
    ({"facts.json": '{"schema": ' + "9" * 5000 + "}"}, ["check", "--from", "{tmp}/facts.json"],
     "is not a JSON facts bundle: a number longer than 4300 digits"),
    ({"kubeconfig": "clusters: " + "9" * 5000 + "\n"}, ["--kubeconfig", "{tmp}/kubeconfig", "check"],
     "kubeconfig {tmp}/kubeconfig cannot be used: a number longer than"),
    # whole numbers past 64 bits from any of YAML's digit forms: float() overflowed on one (an event window
    # of 401 digits), and the schema's message could not print one past 4300 digits (break-it, session 14)
    *[({"c.yaml": f"{body}\n"}, ["--config", "{tmp}/c.yaml", "check", "--from", "{tmp}/none"],
       f"c.yaml:{line}: {field}: {named}whole number of {bits} bits is not allowed")
      for body, line, field, named, bits in (
          ("thresholds:\n  event_window_minutes: 1" + "0" * 400, 2, "thresholds.event_window_minutes", "a ", 1329),
          ("thresholds:\n  event_window_minutes: 1" + ":59" * 3000, 2, "thresholds.event_window_minutes", "a ", 17722),
          ("thresholds:\n  space_margin: 0b" + "1" * 20000, 2, "thresholds.space_margin", "a ", 20000),
          ("names:\n  engine_pod: 0x" + "f" * 5000, 2, "names.engine_pod", "a ", 20000),
          ("suppressions:\n  - 0x" + "f" * 5000, 2, "suppressions[0]", "a ", 20000),
          ("names:\n  ? 0x" + "f" * 5000 + "\n  : 1", 1, "names", "a key that is a ", 20000))],
    # a number as a key (sorted beside text keys it was a TypeError), and a value of 6000 characters (one line to read)
    ({"c.yaml": "names:\n  bar_pvc: x\n  7: y\n"}, ["--config", "{tmp}/c.yaml", "check", "--from", "{tmp}/none"],
     "c.yaml:3: names[7]: unknown field"),
    ({"c.yaml": "bar:\n  uid: 0o" + "7" * 6000 + "\n"}, ["--config", "{tmp}/c.yaml", "check", "--from", "{tmp}/none"],
     "bar.uid: '0o777"),
    # YAML forbids control characters; PyYAML's message for one spans two lines and counts characters
    *[({"c.yaml": f"names:\n  bar_pvc: dv{char}bar\n"}, ["--config", "{tmp}/c.yaml", "check", "--from", "{tmp}/none"],
       f"c.yaml:2: not valid YAML: character #x{ord(char):04x} is not allowed") for char in ("\x00", "\x07", "\x1b")],
]


def _write_files(tmp: Path, files: dict) -> None:
    for rel, content in files.items():
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


@pytest.mark.parametrize(("files", "argv", "named"), FILE_ROWS, ids=[" ".join(r[1])[:60] for r in FILE_ROWS])
def test_odd_data_in_a_file_is_one_line_never_a_traceback(nowhere: Path, tmp_path: Path, capsys, files: dict,
                                                          argv: list[str], named: str) -> None:
    work = tmp_path / "w"
    work.mkdir()
    _write_files(work, files)
    code = run([a.replace("{tmp}", str(work)) for a in argv])
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (out, err)
    assert len(lines) == 1 and lines[0].startswith("dvdoctor: error: "), err
    assert named.replace("{tmp}", str(work)) in lines[0], lines[0]
    assert "Traceback" not in err and "cannot reach" not in lines[0]
    assert len(lines[0]) < 600, lines[0][:200]  # one line to read, whatever the input's size


def test_a_facts_file_larger_than_the_bound_is_refused_unread(nowhere: Path, tmp_path: Path, capsys, monkeypatch):
    from dvdoctor.facts import model as facts

    monkeypatch.setattr(facts, "MAX_BYTES", 4096)
    big = tmp_path / "facts.json"
    big.write_text('{"pad": "' + "x" * 10_000 + '"}')
    assert run(["check", "--from", str(big)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "larger than 4096 bytes, the most dvdoctor reads" in err


def test_dash_v_gives_the_traceback_of_the_same_error(nowhere: Path, tmp_path: Path, capsys):
    (tmp_path / "c.yaml").write_text("thresholds:\n  space_margin: .nan\n")
    assert run(["-v", "--config", str(tmp_path / "c.yaml"), "check", "--from", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.rstrip().splitlines()[-1].startswith("dvdoctor: error: ") and "space_margin" in err


def test_a_manifest_nested_too_deep_on_the_volume_is_unreadable_not_a_crash():
    """Anyone with the claim can write a manifest: a hostile one is a reported reason, never trusted."""
    import base64

    from dvdoctor.facts.probe import parse_bar_probe

    deep = base64.b64encode(("[" * 30_000 + "]" * 30_000).encode()).decode()
    flat = base64.b64encode(b'{"instance": {"uid": "u1"}}').decode()
    out = parse_bar_probe(f"manifest\t2021-01-22-19-27-31\t60000\t{deep}\nmanifest\t2021-01-23-19-27-31\t27\t{flat}\nend\n")
    assert "nested deeper than 64 levels" in out["manifests"]["2021-01-22-19-27-31"]["error"]
    assert "content" not in out["manifests"]["2021-01-22-19-27-31"]
    assert out["manifests"]["2021-01-23-19-27-31"]["content"] == {"instance": {"uid": "u1"}}


def test_an_empty_or_oversized_manifest_says_which():
    """The probe sends no content for a manifest past its bound, and none for an empty file: an empty
    one was called "0 bytes, too large to be dvdoctor's" (break-it review)."""
    from dvdoctor.facts.probe import parse_bar_probe

    out = parse_bar_probe("manifest\t2021-01-22-19-27-31\t0\t\nmanifest\t2021-01-23-19-27-31\t70000\t\nend\n")
    assert out["manifests"]["2021-01-22-19-27-31"]["error"] == "it is empty (0 bytes)"
    assert out["manifests"]["2021-01-23-19-27-31"]["error"] == "70000 bytes, too large to be dvdoctor's"


def _healthy_facts_file(where: Path, change) -> Path:
    """The builders' healthy facts, changed by `change(data)`, saved as `collect -o` would."""
    import json

    import builders as b

    data = b.healthy()
    change(data)
    path = where / "facts.json"
    path.write_text(json.dumps(data))
    return path


def _set(path: str, value):
    """A change that puts `value` at a slash-separated path (list indexes as numbers)."""
    def change(data: dict) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split("/")]
        for p in parents:
            data = data[p]
        data[last] = value
    return change


# Places the checks read, damaged in a facts file by hand: each crashed a check before (break-it review, L2).
DAMAGED_FACTS = [
    ("objects/deployments/0/spec", "x"),
    ("objects/deployments/0/spec/replicas", "3"),
    ("objects/jobs/0/metadata/labels", 7),
    ("objects/jobs/0/status", [1]),
    ("objects/jobs/0/status/conditions", 7),
    ("objects/pods/0/metadata/ownerReferences", [{"kind": "ReplicaSet", "name": 7}]),
    ("objects/persistentvolumeclaims/0/status", {"capacity": {"storage": "thirty gigs"}}),
    ("access", {"rules": [{"apiGroups": 7, "resources": ["pods"], "verbs": ["get"]}]}),
    ("collected_at", "2026-13-01T00:00:00Z"),
    ("server", {"version": "x"}),
    # ... and what the second break-it review found past the first schema: a count the API cannot hold
    # (a check named each missing pod of 10**12: memory ran out), times Python takes but cannot compare
    # or add to, a size no float holds, and the untyped parts of the volume's and the engine's facts
    ("objects/statefulsets/0/spec/replicas", 10**12),
    ("collected_at", "2026-12-03T13:00:00"),
    ("collected_at", "2021-W01-1"),
    ("collected_at", "9999-12-31T23:59:59Z"),
    ("objects/persistentvolumeclaims/0/spec", {"resources": {"requests": {"storage": "9" * 400}}}),
    ("engine/markers", [{"name": ".bar", "size": "x", "mtime": 1}]),
    ("bar_volume/df/total", 10**400),
    ("bar_volume/entries/0/mtime", 10**18),
]


@pytest.mark.parametrize(("where", "value"), DAMAGED_FACTS, ids=[w for w, _ in DAMAGED_FACTS])
def test_a_facts_file_damaged_where_a_check_reads_is_refused_in_one_line(tmp_path: Path, capsys, where, value):
    path = _healthy_facts_file(tmp_path, _set(where, value))
    assert run(["check", "--from", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a valid dvdoctor facts bundle: at " + where.split("/")[0] in err, err


def test_no_check_crashes_on_facts_the_schema_lets_through(tmp_path: Path):
    """Seeded random damage of the healthy facts (a value's type or a key set to an odd value, one or two
    places at once): every version is either refused on load or judged by every check without a crash."""
    import copy
    import random

    import builders as b
    from dvdoctor.core.errors import UsageError
    from dvdoctor.facts.model import Facts, validate
    from dvdoctor.verdicts.registry import run_checks

    keys = ("spec", "status", "replicas", "labels", "ownerReferences", "conditions", "containerStatuses", "state",
            "restartCount", "completionTime", "startTime", "creationTimestamp", "securityContext", "runAsUser",
            "containers", "volumeMounts", "capacity", "storage", "requests", "phase", "template", "name", "kind",
            "apiGroups", "verbs", "resources", "holderIdentity", "renewTime", "involvedObject", "lastTimestamp")
    values = (None, "x", 7, -1, [], {}, True, [1], {"a": 1}, 1.5, "2020-13-99", "", [None], [{}])

    def places(node, out):
        if isinstance(node, (dict, list)) and node:
            out.append(node)
            for v in (node.values() if isinstance(node, dict) else node):
                places(v, out)
        return out

    healthy, rnd = b.healthy(), random.Random(7)
    judged = 0
    for _ in range(300):
        data = copy.deepcopy(healthy)
        for _ in range(rnd.choice((1, 2))):
            node = rnd.choice(places(data["objects"], []) + places(data.get("access", {}), []))
            value = copy.deepcopy(rnd.choice(values))
            if isinstance(node, dict):
                node[rnd.choice([*node, *keys])] = value
            else:
                node[rnd.randrange(len(node))] = value
        try:
            validate(data)
        except UsageError:
            continue
        judged += 1
        crashed = [(r.check.id, r.reason) for r in run_checks(Facts(data)) if r.status == "crash"]
        assert not crashed, crashed
    assert judged > 100  # most damage lands where no check reads, and is let through


def test_check_from_reads_a_support_bundle_and_refuses_other_gzip_in_one_line(tmp_path: Path, capsys):
    import gzip
    import io
    import tarfile

    facts = _healthy_facts_file(tmp_path, lambda data: None)
    assert run(["check", "--from", str(facts), "-o", "json"]) in (0, 1)
    expected = capsys.readouterr().out

    def tarball(name: str, members: list[tuple[str, bytes]]) -> Path:
        path = tmp_path / name
        with tarfile.open(path, "w:gz") as tar:
            for member, raw in members:
                info = tarfile.TarInfo(member)
                info.size = len(raw)
                tar.addfile(info, io.BytesIO(raw))
        return path

    bundle = tarball("case.tar.gz", [("facts.json", facts.read_bytes()), ("audit.jsonl", b"")])
    assert run(["check", "--from", str(bundle), "-o", "json"]) in (0, 1)
    import json
    got = capsys.readouterr().out
    assert [r["status"] for r in json.loads(got)["results"]] == [r["status"] for r in json.loads(expected)["results"]]

    other = tarball("other.tar.gz", [("notes.txt", b"hello")])
    plain_gzip = tmp_path / "facts.json.gz"
    plain_gzip.write_bytes(gzip.compress(facts.read_bytes()))
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(bundle.read_bytes()[:200])
    # a pax header that announces 64 MiB before any member: refused on its first block, never read whole
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("facts.json")
        info.pax_headers, info.size = {"comment": "x" * (64 * 1024 * 1024)}, 2
        tar.addfile(info, io.BytesIO(b"{}"))
    pax_bomb = tmp_path / "pax.tar.gz"
    pax_bomb.write_bytes(gzip.compress(raw.getvalue()))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("facts.json")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    linked = tmp_path / "linked.tar.gz"
    linked.write_bytes(gzip.compress(raw.getvalue()))
    for path, why in ((other, "its first member is not facts.json"), (plain_gzip, "its first member is not facts.json"),
                      (cut, ""), (pax_bomb, "its first member is not facts.json"),
                      (linked, "its first member is not a regular file")):
        assert run(["check", "--from", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is gzip'd but not a support bundle of `dvdoctor collect --bundle`" in err
        assert why in err and "Traceback" not in err
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xc5\x00\x01")
    assert run(["check", "--from", str(binary)]) == 2
    assert "it is not UTF-8 text (byte 0xc5 at offset 0)" in capsys.readouterr().err


def test_a_closed_stdout_is_one_line_not_a_traceback(tmp_path):
    """Break-it review: `dvdoctor check >&-` (no stdout at all) ended in an AttributeError traceback."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "dvdoctor", "checks"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=60, pass_fds=(),
                          preexec_fn=lambda: __import__("os").close(1))
    assert done.returncode == 2 and "standard output is closed" in done.stderr and "Traceback" not in done.stderr
