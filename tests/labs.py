"""Lab folders for tests: where they go, how a prepared one is copied, how one is removed.

Labs live under /tmp in folders every uid can traverse: a lab's pods run as the BAR uid when the
tests run as root, and pytest's own tmp_path parents are 0700. Creating a lab runs a real backup
job (the slow part), so one healthy lab is made per session (`golden_lab` in tests/conftest.py)
and each test gets a copy made with `cp -a` (owners, modes, symlinks and mtimes kept); tests
about creation itself call create_lab on an empty folder.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from dvdoctor.lab import destroy_lab
from dvdoctor.lab.store import Store


def traversable_dir(prefix: str = "dvdoctor-labtest-") -> Path:
    """A new 0755 folder under the system's temp folder (a lab's pods must be able to reach it)."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    base.chmod(0o755)
    return base


def copy_lab(golden: Path, path: Path, bar_hold: float = 0) -> Path:
    """A copy of the golden lab at `path`, as create_lab(path, bar_hold=...) would have made it."""
    subprocess.run(["cp", "-a", str(golden), str(path)], check=True)
    if bar_hold:
        store = Store(path)
        meta = store.meta()
        meta["settings"]["bar_hold"] = bar_hold
        store.save_meta(meta)
    return path


def remove_lab(base: Path) -> None:
    """Kill the pod processes of the lab at base/lab (if there is one) and remove `base`."""
    if (base / "lab" / "lab.json").exists():
        destroy_lab(base / "lab")
    shutil.rmtree(base, ignore_errors=True)
