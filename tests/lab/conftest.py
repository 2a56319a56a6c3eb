"""Labs for tests live under /tmp in folders every uid can traverse: a lab's pods run as the BAR uid
when the tests run as root, and pytest's own tmp_path parents are 0700.

One healthy lab is created per session (through create_lab, backup job and all) and each test gets
a copy made with `cp -a` (owners, modes, symlinks and mtimes kept), which is what keeps the module
fast; tests about creation itself call create_lab on an empty folder."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from dvdoctor.lab import LabCluster, create_lab, destroy_lab


def _traversable_dir() -> Path:
    base = Path(tempfile.mkdtemp(prefix="dvdoctor-labtest-"))
    base.chmod(0o755)
    return base


@pytest.fixture(scope="session")
def golden_lab():
    base = _traversable_dir()
    create_lab(base / "lab")
    yield base / "lab"
    destroy_lab(base / "lab")
    base.rmdir()


@pytest.fixture
def lab_dir():
    base = _traversable_dir()
    path = base / "lab"
    yield path
    if (path / "lab.json").exists():
        destroy_lab(path)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def lab(golden_lab, lab_dir):
    """A fresh healthy lab: a copy of the session's, as dvdoctor sees it."""
    subprocess.run(["cp", "-a", str(golden_lab), str(lab_dir)], check=True)
    return LabCluster(lab_dir)
