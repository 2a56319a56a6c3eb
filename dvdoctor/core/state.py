"""Where dvdoctor keeps its own files on this machine: the audit log and the BAR jobs' logs.

The XDG state folder ($XDG_STATE_HOME, else ~/.local/state) under dvdoctor/, never the current
folder: a job log dropped wherever the command ran ends up committed, or lost.
"""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "dvdoctor"


def default_log_dir() -> Path:
    """Where `backup` and `restore` save DV's job logs unless --log-dir says otherwise."""
    return state_dir() / "logs"
