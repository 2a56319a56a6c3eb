"""Consent before a backup or restore: the question says what happens, and no answer means nothing starts."""

from __future__ import annotations

import sys

import pytest
import typer


@pytest.fixture
def declined(monkeypatch) -> list[str]:
    """A terminal whose user answers no; collects the questions asked."""
    asked: list[str] = []
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)

    def answer_no(question: str, default: bool = False) -> bool:
        asked.append(question)
        return False

    monkeypatch.setattr(typer, "confirm", answer_no)
    return asked


@pytest.mark.parametrize("command", ["backup", "restore"])
def test_without_a_terminal_or_yes_nothing_starts(flow, command):
    before = flow.snapshot()

    code, out, _ = flow.dv(command)

    assert code == 1
    assert "No terminal to ask and no --yes: nothing was changed." in out
    assert flow.snapshot() == before
    assert flow.audit_entries() == []


def test_the_backup_question_names_the_namespace_and_the_downtime(flow, declined):
    before = flow.snapshot()

    assert flow.dv("backup")[0] == 1

    assert declined == ["Back up DV in namespace cpd30? DV is offline until the job ends."]
    assert flow.snapshot() == before


@pytest.mark.mib_backups  # its size said in MiB
def test_the_restore_question_names_the_backup_its_age_and_size(flow, declined):
    (ts,) = flow.timestamps()
    size_mib = (flow.bar / ts / "dv_backup.tar.gz").stat().st_size / 2**20
    before = flow.snapshot()

    assert flow.dv("restore", "--from", ts)[0] == 1

    assert declined == [f"Restore backup {ts} (0.0 h old, {size_mib:.1f} MiB) in namespace cpd30? Its origin is "
                        "unverified: it has no dvdoctor-manifest.json (taken by dvcli.sh or before dvdoctor). "
                        "DV goes offline and its current data is replaced."]
    assert flow.snapshot() == before
