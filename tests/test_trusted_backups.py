"""A backup is trusted only when its combined tarball reads back completely: bar-probe.sh's VERIFY
runs gzip -t and a tar listing that must hold both component tarballs, for real on real files."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest

import builders as b
from dvdoctor.backups import backups
from dvdoctor.names import DEFAULT

COMPONENTS = ("dv_backup_dv_metastore.tar.gz", "dv_backup_dv_engine.tar.gz")


@pytest.fixture
def bar():
    root = b.pod_root()
    yield root / "mnt" / "PV" / "bar"
    shutil.rmtree(root, ignore_errors=True)


def combined(folder: Path, members: tuple[str, ...]) -> Path:
    """A backup folder whose dv_backup.tar.gz holds `members` (random bytes, so gzip can't shrink them)."""
    folder.mkdir(mode=0o755)
    for name in COMPONENTS:
        (folder / name).write_bytes(os.urandom(64 * 1024))
    with tarfile.open(folder / "dv_backup.tar.gz", "w:gz") as tar:
        for name in members:
            tar.add(folder / name, arcname=name)
    return folder / "dv_backup.tar.gz"


def probe(bar: Path) -> dict:
    return b.run_bar_probe(bar.parent.parent.parent, verify=True)


def test_a_whole_tarball_with_both_components_reads_back(bar: Path) -> None:
    combined(bar / b.TS, COMPONENTS)
    (item,) = backups(probe(bar), DEFAULT.names)
    assert item.verified is True and item.complete(DEFAULT.names)


def test_a_tarball_cut_short_does_not_read_back(bar: Path) -> None:
    path = combined(bar / b.TS, COMPONENTS)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a job killed while writing it
    (item,) = backups(probe(bar), DEFAULT.names)
    assert item.verified is False and not item.complete(DEFAULT.names)
    assert item.verify_message.startswith("gzip -t: ")


def test_a_valid_gzip_missing_a_component_does_not_read_back(bar: Path) -> None:
    """gzip -t alone would pass this one: only the tar listing shows the engine's tarball is not inside."""
    combined(bar / b.TS, COMPONENTS[:1])
    (item,) = backups(probe(bar), DEFAULT.names)
    assert item.verified is False
    assert item.verify_message == "tar listing has no dv_backup_dv_engine.tar.gz"


def test_a_gzip_of_something_else_does_not_read_back(bar: Path) -> None:
    folder = bar / b.TS
    folder.mkdir(mode=0o755)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as gz:
        gz.write(b"not a tar archive\n" * 100)
    (folder / "dv_backup.tar.gz").write_bytes(buf.getvalue())
    (item,) = backups(probe(bar), DEFAULT.names)
    assert item.verified is False and item.verify_message.startswith("tar listing: ")
