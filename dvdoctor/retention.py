"""Which backups may be deleted: the one rule that prune and the low-space repair share.

Never the symlink's target, never the newest complete backup, whatever --keep says; beyond that,
incomplete folders (except one an active backup job is writing) and complete backups older than
the newest `keep`.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import k8s
from .backups import Backup, newest_complete
from .facts import Facts
from .names import DvNames


@dataclass(frozen=True)
class Removal:
    path: str
    bytes: int
    why: str


def protected(items: list[Backup], link_ts: str | None, names: DvNames) -> set[str]:
    newest = newest_complete(items, names)
    return {t for t in (link_ts, newest.timestamp if newest else None) if t}


def prunable(items: list[Backup], link_ts: str | None, keep: int, names: DvNames, writing: str | None = None) -> list[Removal]:
    """Whole backup folders that may go, oldest first."""
    keep_ts = protected(items, link_ts, names)
    complete = [b for b in items if b.complete(names)]
    keep_ts |= {b.timestamp for b in complete[len(complete) - keep:]} if keep > 0 else set()
    out = []
    for b in items:
        if b.timestamp in keep_ts or b.timestamp == writing:
            continue
        why = "incomplete" if not b.complete(names) else f"older than the newest {max(keep, 1)} complete backups"
        out.append(Removal(b.timestamp, b.size(), why))
    return out


def redundant_components(items: list[Backup], names: DvNames) -> list[Removal]:
    """Component tarballs of complete backups: the combined tarball holds the same data again."""
    out = []
    for b in items:
        if not b.complete(names):
            continue
        for comp in names.component_tarballs:
            if b.files.get(comp):
                out.append(Removal(f"{b.timestamp}/{comp}", b.files[comp], "also inside the combined dv_backup.tar.gz"))
    return out


def folder_being_written(facts: Facts, items: list[Backup]) -> str | None:
    """While DV's backup job runs, the newest folder is its work in progress."""
    job = facts.get("jobs", facts.names.backup_job)
    if job is not None and k8s.job_state(job) == "active" and items:
        return items[-1].timestamp
    return None
