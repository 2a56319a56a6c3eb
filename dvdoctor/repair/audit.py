"""The local audit log: every change dvdoctor makes, what, where, before and after, one JSON line each.

It is what lets a person (or the next run) see and undo what dvdoctor did. A change that runs on
without dvdoctor once started (the copy program, in its own process or Job) is recorded twice: its
intent before it starts (`state: in progress`, what it will change under `planned`), then what it
did; so a dvdoctor killed meanwhile (kill -9) still leaves a record of a change it set going. Each entry goes through
dvdoctor.core.redact before it is kept or written (a patch may carry an env value), and is appended
without following a symlink planted at the log's name (dvdoctor.core.files.append_line). The file is
$DVDOCTOR_AUDIT, else $XDG_STATE_HOME/dvdoctor/audit.jsonl, else ~/.local/state/dvdoctor/audit.jsonl.
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..core import redact
from ..core.files import append_line


@dataclass
class Change:
    """One change an action made, as the audit log keeps it: what, and its value before and after."""

    what: str
    before: str
    after: str


def default_path() -> Path:
    if os.environ.get("DVDOCTOR_AUDIT"):
        return Path(os.environ["DVDOCTOR_AUDIT"])
    from ..core.state import state_dir

    return state_dir() / "audit.jsonl"


class AuditLog:
    def __init__(self, path: Path | None = None, where: str = "") -> None:
        self.path = path or default_path()
        self.where = where
        self.entries: list[dict] = []

    def record(self, fix: str, action: str, namespace: str, changes: list[Change], error: str | None = None) -> None:
        entry = self._entry(fix, action, namespace, changes)
        if error:
            entry["error"] = error
        self._write(entry)

    def started(self, fix: str, action: str, namespace: str, planned: list[Change]) -> None:
        """The intent of a change that goes on by itself once started, written before it starts: what
        it will change (`planned`) and that it is in progress. Its outcome follows as a `record` with
        the same fix and action; an intent with none after it is a run that was killed meanwhile."""
        entry = self._entry(fix, action, namespace, [])
        entry["state"] = "in progress"
        entry["planned"] = [asdict(c) for c in planned]
        self._write(entry)

    def _entry(self, fix: str, action: str, namespace: str, changes: list[Change]) -> dict:
        return {
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "user": getpass.getuser(),
            "where": self.where,
            "namespace": namespace,
            "fix": fix,
            "action": action,
            "changes": [asdict(c) for c in changes],
        }

    def _write(self, entry: dict) -> None:
        entry = redact.data(entry)
        self.entries.append(entry)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        append_line(self.path, json.dumps(entry))
