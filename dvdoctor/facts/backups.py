"""What is on the backup volume, read from the bar-probe facts: backups, their state, the current one.

DV writes each backup into a folder named by its UTC start time (`2021-01-22-19-27-31`) holding
two component tarballs and a combined `dv_backup.tar.gz`, and points the `dv_backup.tar.gz`
symlink at the root of the volume to the combined tarball of the restore point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..core.names import DAMAGED_ASIDE, DvNames
from ..core.units import TIMESTAMP_RE, is_timestamp, timestamp_time


def shown(name: str) -> str:
    """A name from the volume as it can be printed on one line: control and non-ASCII characters escaped."""
    return name.encode("unicode_escape").decode("ascii")


@dataclass
class Backup:
    timestamp: str
    files: dict[str, int] = field(default_factory=dict)
    mtime: float = 0.0
    #: `SIZE:MTIME` of the combined tarball (stat %s:%Y), when there is one: what a recorded read-back is for.
    stamp: str = ""
    #: What this run's read-back found: {"state": good|damaged|unreadable|unread|recorded, "sha256", "message"}.
    read_back: dict | None = None
    #: Its dvdoctor-manifest.json (which DV instance took it), when there is a readable one.
    manifest: dict | None = None
    #: Entries in the folder that are not regular files, by name: "dir", "link" or "other" (a fifo, a device).
    not_files: dict[str, str] = field(default_factory=dict)
    #: Why a manifest that is there cannot be read; empty when it reads or is absent.
    manifest_error: str = ""

    @property
    def time(self) -> datetime:
        return timestamp_time(self.timestamp)

    def combined_size(self, names: DvNames) -> int:
        return self.files.get(names.combined_tarball, 0)

    def component_size(self, names: DvNames) -> int:
        return sum(self.files.get(n, 0) for n in names.component_tarballs)

    def size(self) -> int:
        return sum(self.files.values())

    def missing(self, names: DvNames) -> list[str]:
        """The tarballs a whole backup folder has and this one lacks (or holds empty)."""
        wanted = (*names.component_tarballs, names.combined_tarball)
        return [n for n in wanted if self.files.get(n, 0) <= 0]


#: How far ahead of dvdoctor's clock a folder's name may be (the pod's clock, not the admin's
#: laptop's, named it); beyond this a folder is future-dated: a finding, never "the newest", never
#: a running job's folder, and nothing dvdoctor does removes, restores or points at it.
CLOCK_SKEW = timedelta(minutes=10)


def not_future(items: list[Backup], now: datetime) -> list[Backup]:
    """The backups not dated in the future (beyond CLOCK_SKEW of `now`), in their order."""
    return [b for b in items if b.time <= now + CLOCK_SKEW]


def backups(bar: dict, names: DvNames) -> list[Backup]:
    """Every folder on the volume named by a valid timestamp, oldest first (`odd_entries` has the rest).

    Whether each one is trusted is not decided here: dvdoctor/facts/trust.py does, by one rule.
    """
    found: dict[str, Backup] = {}
    for entry in bar.get("entries", []):
        parts = entry["path"].split("/")
        if not is_timestamp(parts[0]):
            continue
        if len(parts) == 1:
            if entry["type"] != "dir":
                continue
            b = found.setdefault(parts[0], Backup(parts[0]))
            b.mtime = max(b.mtime, entry["mtime"])
        elif len(parts) == 2 and entry["type"] == "file":
            b = found.setdefault(parts[0], Backup(parts[0]))
            b.files[parts[1]] = entry["size"]
            b.mtime = max(b.mtime, entry["mtime"])
        elif len(parts) == 2:
            found.setdefault(parts[0], Backup(parts[0])).not_files[parts[1]] = entry["type"]
    for ts, stamp in (bar.get("stamps") or {}).items():
        if ts in found:
            found[ts].stamp = str(stamp)
    for ts, result in (bar.get("read_back") or {}).items():
        if ts in found and isinstance(result, dict):
            found[ts].read_back = result
    for ts, result in (bar.get("manifests") or {}).items():
        if ts in found:
            found[ts].manifest = result.get("content")
            found[ts].manifest_error = str(result.get("error") or "")
    return sorted(found.values(), key=lambda b: b.timestamp)


@dataclass(frozen=True)
class OddEntry:
    """Something at the top of the backup volume that is not a backup folder, and why."""

    name: str
    kind: str
    why: str


#: Top-level names that belong on a volume and are no backup: a filesystem's own folder.
EXPECTED_NAMES = ("lost+found",)


def odd_entries(bar: dict, names: DvNames) -> list[OddEntry]:
    """Top-level entries that are neither a backup folder nor the restore-point link (dvdoctor's hidden
    temporary files aside): odd names, impossible timestamps, files or links where a folder should be."""
    out = []
    for entry in bar.get("entries", []):
        name = entry["path"]
        if name.startswith(DAMAGED_ASIDE) and "/" not in name:
            out.append(OddEntry(name, entry["type"], "a damaged backup folder that restore --from-copy set aside when "
                                                     "its copy took the folder's place, and could not remove: remove "
                                                     "it by hand (its backup is whole again from the copy)"))
            continue
        if "/" in name or name == names.symlink or name in EXPECTED_NAMES or name.startswith(".dvdoctor-"):
            continue
        if is_timestamp(name):
            if entry["type"] != "dir":
                out.append(OddEntry(name, entry["type"], f"a {entry['type']} where a backup folder should be"))
            continue
        if TIMESTAMP_RE.fullmatch(name):
            why = "named like a backup, but no such date or time exists"
        else:
            why = "not a backup folder's name (DV names them by UTC time, like 2021-01-22-19-27-31)"
        out.append(OddEntry(name, entry["type"], why))
    return out


def link_timestamp(bar: dict, names: DvNames) -> str | None:
    """The timestamp folder the restore-point symlink names, whether or not it exists."""
    link = bar.get("link")
    if not link:
        return None
    target = link["target"]
    prefix = names.bar_mount.rstrip("/") + "/"
    if target.startswith(prefix):
        target = target[len(prefix):]
    parts = [p for p in target.split("/") if p and p != "."]
    return parts[0] if len(parts) == 2 and parts[1] == names.combined_tarball and is_timestamp(parts[0]) else None
