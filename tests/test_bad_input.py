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
    (["backup", "--timeout", "0"], "--timeout"),
    (["backup", "--timeout", "soon"], "'--timeout': Input should be a valid number"),
    (["backup", "--log-dir", "/nonexistent/logs"], "/nonexistent/logs"),
    (["backup", "--ignore-check", "no-such-check"], "no-such-check"),
    (["restore", "--from", "yesterday"], "'yesterday'"),
    (["restore", "--from", "2021-01-22-19-27"], "'2021-01-22-19-27'"),
    (["restore", "--from", "../../etc"], "'../../etc'"),
    (["restore", "--ready-timeout", "-1"], "--ready-timeout"),
    (["restore", "--log-dir", "/nonexistent/logs"], "/nonexistent/logs"),
    (["prune", "--keep", "0"], "--keep"),
    (["prune", "--keep", "many"], "'--keep': Input should be a valid integer"),
    (["prune"], "--keep"),
    (["fix"], "--issue"),
    (["fix", "--issue", "no-such-check"], "no-such-check"),
    (["fix", "--issue", "bar-low-space", "--size", "lots"], "'lots'"),
    (["fix", "--issue", "bar-low-space", "--keep", "-1"], "--keep"),
    (["fix", "--issue", "broken-backup-symlink", "--to", "latest"], "'latest'"),
    (["fix", "--issue", "bar-pvc-missing", "--storage-class", "UPPER"], "'UPPER'"),
    (["check", "--only", "nope"], "nope"),
    (["check", "-o", "xml"], "'xml'"),
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
    (["-n", "cpd30", "rbac", "--for", "everything"], "'everything'"),
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
