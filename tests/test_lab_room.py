"""`lab create --data-size` and `lab churn` on a disk without room: one line, exit 2, no half-made lab.

The pre-check reads the free space (monkeypatched here to a small disk); the cleanup is tested with a
write that fails with ENOSPC and, as root, on a real tmpfs too small for the data.
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from dvdoctor.cli import run
from dvdoctor.lab import contents, create, dbdata
from dvdoctor.lab.store import Store

MiB = 1024 * 1024


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_data_size_larger_than_the_free_space_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(create, "free_bytes", lambda path: 100 * MiB)
    lab = tmp_path / "lab"
    assert run(["lab", "create", str(lab), "--data-size", "1Gi"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "100.0 MiB free" in line or "100 MiB free" in line, line
    assert "need about" in line
    assert not lab.exists()


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("existed", [False, True])
def test_a_full_disk_during_create_is_one_line_and_removes_only_what_create_made(tmp_path, monkeypatch, capsys,
                                                                                 existed):
    lab = tmp_path / "lab"
    if existed:
        lab.mkdir()
    beside = tmp_path / "beside"
    beside.write_text("not the lab's\n")
    monkeypatch.setattr(dbdata, "write", _full_disk)
    assert run(["lab", "create", str(lab), "--data-size", "2Mi"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "no room left" in line and "free" in line and "half-made lab was removed" in line, line
    assert (lab.is_dir() and not any(lab.iterdir())) if existed else not lab.exists()
    assert beside.read_text() == "not the lab's\n"


def test_a_full_disk_during_churn_is_one_line(tmp_path, monkeypatch, capsys):
    lab = tmp_path / "lab"
    lab.mkdir()
    Store(lab).save_meta({"lab": 1, "namespace": "cpd30", "settings": {}})
    dbdata.write(Store(lab).volume_dir(contents.NAMES.data_pvc), 2 * MiB)
    monkeypatch.setattr(dbdata, "_open_nofollow", _full_disk)
    assert run(["lab", "churn", str(lab), "--percent", "10"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "lab churn: no room left" in line and "free" in line and "to the logs" in line, line


@pytest.fixture
def small_disk(tmp_path):
    """A 6 MiB tmpfs (root only): a disk that really fills."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_on_a_real_small_disk_precheck_refuses_and_a_write_that_fills_it_leaves_no_lab(small_disk, monkeypatch, capsys):
    lab = small_disk / "lab"
    assert run(["lab", "create", str(lab), "--data-size", "8Mi"]) == 2
    assert "need about" in _one_line(capsys.readouterr().err)
    assert not lab.exists()
    monkeypatch.setattr(create, "room_needed", lambda size: 0)  # past the check: the disk itself must say no
    assert run(["lab", "create", str(lab), "--data-size", "8Mi"]) == 2
    assert "no room left" in _one_line(capsys.readouterr().err)
    assert list(small_disk.iterdir()) == []
