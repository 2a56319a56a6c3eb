"""`lab churn` (and `lab create`'s chown of DV's volume) never follow a symbolic link out of the lab.

Anyone with DV's data volume can put a link in it; as root the lab gave what the link named to the
BAR uid, and churn wrote into it. The links here name files outside the lab: they must stay as they
were, and a dangling link is no traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dvdoctor.cli import run
from dvdoctor.lab import contents, dbdata
from dvdoctor.lab.create import _chown_tree, churn_lab
from dvdoctor.lab.store import Store

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="chown happens only in a root lab (run as root to test it)")


def _lab(tmp_path: Path) -> tuple[Path, Path]:
    """The least a lab needs for churn: lab.json and DV's data volume filled with the model's data."""
    lab = tmp_path / "lab"
    lab.mkdir()
    Store(lab).save_meta({"lab": 1, "namespace": "cpd30", "settings": {}})
    data = Store(lab).volume_dir(contents.NAMES.data_pvc)
    dbdata.write(data, 2 * 1024 * 1024)
    return lab, data


def _victims(tmp_path: Path, data: Path) -> dict[Path, tuple[bytes, int]]:
    """Files outside the lab, each named by a link inside the volume where churn or chown would reach it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    made: dict[Path, tuple[bytes, int]] = {}

    def victim(name: str) -> Path:
        p = outside / name
        p.write_bytes(b"not the lab's " * 4096)
        made[p] = (p.read_bytes(), p.stat().st_uid)
        return p

    (data / "1.5.0" / "engine" / "link-out").symlink_to(victim("a"))
    (data / "1.5.0" / "engine" / "dangling").symlink_to(tmp_path / "nowhere")
    tables = data / dbdata.ROOT
    (tables / "T9999998").mkdir()
    (tables / "T9999998" / "C0000000.DAT").symlink_to(victim("b"))
    (outside / "dir").mkdir()
    (outside / "dir" / "C0000000.INX").write_bytes(b"x" * 65536)
    made[outside / "dir" / "C0000000.INX"] = (b"x" * 65536, 0 if os.geteuid() == 0 else os.geteuid())
    (tables / "T9999999").symlink_to(outside / "dir")
    logs = data / dbdata.LOG_DIR
    (logs / "S9999999.LOG").symlink_to(victim("c"))
    return made


def _untouched(made: dict[Path, tuple[bytes, int]]) -> None:
    for p, (content, uid) in made.items():
        assert p.read_bytes() == content, f"{p} was written through a link"
        assert p.stat().st_uid == uid, f"{p} was given away through a link"


def test_churn_writes_through_no_link_and_a_dangling_one_is_no_traceback(tmp_path):
    lab, data = _lab(tmp_path)
    made = _victims(tmp_path, data)
    done = churn_lab(lab, 20, seed=3)
    assert done["runs"] > 0 and done["appended"] > 0
    _untouched(made)
    assert run(["lab", "churn", str(lab), "--percent", "10"]) == 0
    _untouched(made)


def test_a_table_file_swapped_for_a_link_after_layout_is_not_written():
    """Between layout() and the write a file may become a link: the write refuses it (O_NOFOLLOW)."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        victim, link = Path(d) / "victim", Path(d) / "C0000000.DAT"
        victim.write_bytes(b"v" * 8192)
        link.symlink_to(victim)
        with pytest.raises(OSError):
            dbdata._rewrite(link, 0, b"w" * 8192)
        assert victim.read_bytes() == b"v" * 8192


@root_only
def test_chown_of_the_volume_gives_links_not_what_they_name(tmp_path):
    lab, data = _lab(tmp_path)
    made = _victims(tmp_path, data)
    _chown_tree(data, contents.BAR_UID)
    _untouched(made)
    link = data / "1.5.0" / "engine" / "link-out"
    assert os.lstat(link).st_uid == contents.BAR_UID
    assert (data / dbdata.ROOT / "T0000000" / "C0000000.DAT").stat().st_uid == contents.BAR_UID
