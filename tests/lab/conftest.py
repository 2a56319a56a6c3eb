"""Labs for tests live under /tmp in folders every uid can traverse: a lab's pods run as the BAR uid
when the tests run as root, and pytest's own tmp_path parents are 0700."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from dvdoctor.lab import create_lab, destroy_lab


@pytest.fixture
def lab_dir():
    base = Path(tempfile.mkdtemp(prefix="dvdoctor-labtest-"))
    base.chmod(0o755)
    path = base / "lab"
    yield path
    if (path / "lab.json").exists():
        destroy_lab(path)
    base.rmdir()


@pytest.fixture
def lab(lab_dir):
    """A fresh healthy lab (about half a second to create)."""
    return create_lab(lab_dir)
