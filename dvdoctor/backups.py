"""What is on the backup volume, read from the bar-probe facts: backups, their state, the current one.

DV writes each backup into a folder named by its UTC start time (`2021-01-22-19-27-31`) holding
two component tarballs and a combined `dv_backup.tar.gz`, and points the `dv_backup.tar.gz`
symlink at the root of the volume to the combined tarball of the restore point.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .names import DvNames

TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}$")


def timestamp_time(ts: str) -> datetime:
    return datetime.strptime(ts, "%Y-%m-%d-%H-%M-%S").replace(tzinfo=timezone.utc)


@dataclass
class Backup:
    timestamp: str
    files: dict[str, int] = field(default_factory=dict)
    mtime: float = 0.0
    #: Whether the combined tarball read back (gzip -t, and a tar listing holding every component
    #: tarball), when the probe was asked to verify; None when it was not.
    verified: bool | None = None
    #: Why it did not read back, in the probe's words.
    verify_message: str = ""
    #: Its dvdoctor-manifest.json (which DV instance took it), when there is a readable one.
    manifest: dict | None = None
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
        """The tarballs a complete backup has and this one lacks (or holds empty)."""
        wanted = (*names.component_tarballs, names.combined_tarball)
        return [n for n in wanted if self.files.get(n, 0) <= 0]

    def complete(self, names: DvNames) -> bool:
        """Restorable: the combined tarball is there (and read back, when verified).

        Component tarballs are not required: the combined one contains them, and the low-space
        repair may remove them. A combined tarball cut short by a dying job is only caught by
        `--verify` (gzip -t and a tar listing), since its size alone can't tell.
        """
        return self.files.get(names.combined_tarball, 0) > 0 and self.verified is not False


def backups(bar: dict, names: DvNames) -> list[Backup]:
    """Every timestamp folder on the volume, oldest first."""
    found: dict[str, Backup] = {}
    for entry in bar.get("entries", []):
        parts = entry["path"].split("/")
        if not TIMESTAMP_RE.match(parts[0]):
            continue
        b = found.setdefault(parts[0], Backup(parts[0]))
        if len(parts) == 1 and entry["type"] == "dir":
            b.mtime = entry["mtime"]
        elif len(parts) == 2 and entry["type"] == "file":
            b.files[parts[1]] = entry["size"]
            b.mtime = max(b.mtime, entry["mtime"])
    for path, result in (bar.get("verified") or {}).items():
        ts = path.split("/")[0]
        if ts in found:
            found[ts].verified = bool(result.get("ok"))
            found[ts].verify_message = str(result.get("message") or "")
    for ts, result in (bar.get("manifests") or {}).items():
        if ts in found:
            found[ts].manifest = result.get("content")
            found[ts].manifest_error = str(result.get("error") or "")
    return sorted(found.values(), key=lambda b: b.timestamp)


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
    return parts[0] if len(parts) == 2 and TIMESTAMP_RE.match(parts[0]) else None


def newest_complete(items: list[Backup], names: DvNames) -> Backup | None:
    done = [b for b in items if b.complete(names)]
    return done[-1] if done else None


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


_SUFFIX = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "Pi": 1024**5,
           "k": 1000, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4, "P": 1000**5, "": 1}
QUANTITY_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|k|K|M|G|T|P|)$")


def parse_quantity(q: str) -> int:
    """A Kubernetes storage quantity (`20Gi`, `500M`, `1073741824`) in bytes; ValueError otherwise."""
    m = QUANTITY_RE.fullmatch(str(q))  # whole: "30Gi\n" is not a size
    if not m:
        raise ValueError(f"{q!r} is not a storage size (use a number with Ki, Mi, Gi, Ti, or k, M, G, T)")
    return int(float(m.group(1)) * _SUFFIX[m.group(2)])
