"""The one deletion rule: never the symlink's target, never the newest complete backup."""

import pytest

from dvdoctor.backups import Backup
from dvdoctor.names import DvNames
from dvdoctor.retention import protected, prunable, redundant_components

NAMES = DvNames()
FULL = {"dv_backup_dv_metastore.tar.gz": 31_780_526, "dv_backup_dv_engine.tar.gz": 3_152_485_198, "dv_backup.tar.gz": 3_184_300_891}


def backup(ts: str, files=FULL) -> Backup:
    return Backup(ts, dict(files))


ITEMS = [
    backup("2021-01-20-19-27-31"),
    backup("2021-01-21-19-27-31", {"dv_backup_dv_metastore.tar.gz": 31_780_526}),
    backup("2021-01-22-19-27-31"),
    backup("2021-01-23-19-27-31"),
]


@pytest.mark.parametrize("keep", [0, 1, 2, 5])
def test_current_and_newest_complete_survive_any_keep(keep):
    gone = {r.path for r in prunable(ITEMS, "2021-01-20-19-27-31", keep, NAMES)}
    assert "2021-01-20-19-27-31" not in gone  # the symlink's target
    assert "2021-01-23-19-27-31" not in gone  # the newest complete


def test_keep_two_removes_incomplete_and_older_complete():
    removals = prunable(ITEMS, "2021-01-23-19-27-31", 2, NAMES)
    assert [(r.path, r.why) for r in removals] == [
        ("2021-01-20-19-27-31", "older than the newest 2 complete backups"),
        ("2021-01-21-19-27-31", "incomplete"),
    ]
    assert removals[0].bytes == sum(FULL.values())


def test_folder_being_written_is_left_alone():
    gone = {r.path for r in prunable(ITEMS, "2021-01-23-19-27-31", 5, NAMES, writing="2021-01-21-19-27-31")}
    assert "2021-01-21-19-27-31" not in gone


def test_protected_without_link():
    assert protected(ITEMS, None, NAMES) == {"2021-01-23-19-27-31"}


def test_components_of_complete_backups_are_redundant():
    paths = [r.path for r in redundant_components(ITEMS, NAMES)]
    assert "2021-01-22-19-27-31/dv_backup_dv_engine.tar.gz" in paths
    assert not any(p.startswith("2021-01-21") for p in paths)  # incomplete: its components are all it has
