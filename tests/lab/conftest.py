"""Lab tests: each gets a copy of the session's lab (tests/conftest.py), or an empty folder for a new one."""

from __future__ import annotations

import pytest

from dvdoctor.lab import LabCluster

from labs import copy_lab, remove_lab, traversable_dir


@pytest.fixture
def lab_dir():
    """An empty place for a lab (the lab itself is not there yet)."""
    base = traversable_dir()
    yield base / "lab"
    remove_lab(base)


@pytest.fixture
def lab(golden_lab, lab_dir):
    """A fresh healthy lab: a copy of the session's, as dvdoctor sees it."""
    return LabCluster(copy_lab(golden_lab, lab_dir))
