"""The one deletion rule, on the one trust rule: only a backup proven good is kept in place of others;
never the symlink's target, never the newest good backup, never the folder being written, and
nothing when no good backup would remain."""

import pytest

import builders as b
from dvdoctor.facts.model import Facts
from dvdoctor.core.names import DvNames
from dvdoctor.repair.retention import (
    WHY_DAMAGED,
    WHY_UNVERIFIED,
    NoGoodBackupLeft,
    no_good_left,
    protected,
    prunable,
    redundant_components,
    refuse_unless_good_remains,
)
from dvdoctor.facts.trust import UNVERIFIED, survey

NAMES = DvNames()
FULL = {"dv_backup_dv_metastore.tar.gz": 31_780_526, "dv_backup_dv_engine.tar.gz": 3_152_485_198, "dv_backup.tar.gz": 3_184_300_891}
OLD, CUT, CURRENT, NEWEST = "2021-01-20-19-27-31", "2021-01-21-19-27-31", b.TS, "2021-01-23-02-00-00"


def volume(newest_state: str | None = "good", link: str = CURRENT):
    """Four backups: an old good one, one cut short by a full volume, the runbook's (good), a newer one."""
    data = b.healthy()
    bar = data["bar_volume"]
    b.add_backup(bar, OLD, FULL)
    b.add_backup(bar, CUT, {"dv_backup_dv_metastore.tar.gz": 31_780_526, "dv_backup.tar.gz": 1_000_000},
                 read_back="damaged", message="its dv_backup_dv_engine.tar.gz does not read back: gzip: unexpected end of file")
    b.add_backup(bar, NEWEST, FULL, read_back=newest_state)
    bar["link"]["target"] = f"/mnt/PV/bar/{link}/dv_backup.tar.gz"
    return survey(Facts(data))


@pytest.mark.parametrize("keep", [0, 1, 2, 5])
def test_current_and_newest_good_survive_any_keep(keep):
    gone = {r.path for r in prunable(volume(), keep)}
    assert CURRENT not in gone and NEWEST not in gone


def test_keep_two_removes_damaged_and_older_good():
    removals = prunable(volume(), 2)
    assert [(r.path, r.why) for r in removals] == [(OLD, "older than the newest 2 good backups"), (CUT, WHY_DAMAGED)]
    assert removals[0].bytes == sum(FULL.values())


def test_an_unverified_backup_is_never_kept_in_place_of_a_good_one():
    """The newest backup is unverified: --keep 1 keeps the newest *good* one (and the restore point)."""
    s = volume(newest_state=None, link=OLD)
    assert protected(s) == {OLD, CURRENT}
    assert {(r.path, r.why) for r in prunable(s, 1)} == {(CUT, WHY_DAMAGED), (NEWEST, WHY_UNVERIFIED)}


def test_the_folder_being_written_is_left_alone():
    data = b.healthy()
    b.add_backup(data["bar_volume"], NEWEST, {"dv_backup_dv_metastore.tar.gz": 1})
    data["objects"]["jobs"].append(b.job("dv-backup-job", state="active"))
    s = survey(Facts(data))
    assert s.writing == {NEWEST} and NEWEST in protected(s)
    assert NEWEST not in {r.path for r in prunable(s, 1)}


def test_no_removal_may_leave_no_good_backup():
    data = b.healthy()
    data["bar_volume"]["read_back"][CURRENT] = {"state": "damaged", "message": "reading it: gzip: unexpected end of file"}
    b.add_backup(data["bar_volume"], NEWEST, FULL, read_back=None)
    data["bar_volume"]["link"]["target"] = f"/mnt/PV/bar/{NEWEST}/dv_backup.tar.gz"
    s = survey(Facts(data))
    removals = prunable(s, 1)
    assert [r.path for r in removals] == [CURRENT]  # damaged; the unverified one is the restore point
    assert "no backup on dv-bar-pvc would be left that is proven good" in no_good_left(s, removals, NAMES)
    with pytest.raises(NoGoodBackupLeft, match="nothing was changed"):
        refuse_unless_good_remains(s, removals, NAMES)
    refuse_unless_good_remains(s, [], NAMES)  # nothing to remove: nothing to refuse


def test_components_only_of_good_backups_are_redundant():
    paths = [r.path for r in redundant_components(volume(newest_state=None), NAMES)]
    assert f"{OLD}/dv_backup_dv_engine.tar.gz" in paths
    assert not any(p.startswith((CUT, NEWEST)) for p in paths)  # damaged / unverified: they may be all that is left


def test_a_backup_that_could_not_be_read_is_never_removed_for_it():
    """Not readable by the BAR job's uid is a permission problem: it says nothing of the bytes."""
    s = volume(newest_state="unreadable", link=OLD)
    assert s.verdicts[NEWEST].state == UNVERIFIED and s.verdicts[NEWEST].unreadable
    for keep in (0, 1, 5):
        assert NEWEST not in {r.path for r in prunable(s, keep)}
    assert (CUT, WHY_DAMAGED) in {(r.path, r.why) for r in prunable(s, 1)}


def test_a_removal_relies_only_on_a_backup_read_back_in_this_run():
    """A record proves the file as it was (bit rot keeps size and mtime): good on a record only is not
    enough to remain for a removal; the same volume read back now is."""
    data = b.healthy()
    bar = data["bar_volume"]
    bar["read_back"][CURRENT] = {"state": "recorded", "sha256": "", "message": ""}
    bar["manifests"][CURRENT] = {"size": 200, "content": {"read_back": {
        "result": "good", "stamp": bar["stamps"][CURRENT], "sha256": "ab" * 32}}}
    b.add_backup(bar, OLD, FULL, read_back="damaged", message="reading it: gzip: invalid compressed data--crc error")
    s = survey(Facts(data))
    assert s.verdicts[CURRENT].state == "good" and not s.verdicts[CURRENT].fresh
    removals = prunable(s, 1)
    assert [r.path for r in removals] == [OLD]
    assert "read back in this run" in no_good_left(s, removals, NAMES)

    bar["read_back"][CURRENT] = {"state": "good", "sha256": "ab" * 32, "message": ""}
    s = survey(Facts(data))
    assert no_good_left(s, prunable(s, 1), NAMES) is None
