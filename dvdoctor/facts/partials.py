"""Folders a restore from a copy left half-written on the backup volume (`.dvdoctor-rehydrate-TS`).

`restore --from-copy` writes the copy back into a hidden folder and renames it to the backup's
timestamp only once every file matches the checksums recorded at copy time. A copy program killed
on the way (kill -9, a lost node, a Job past its deadline) leaves the hidden folder, possibly
gigabytes, which no backup listing shows. It is still being written while a run of
`restore --from-copy` holds dvdoctor's lock, or while dvdoctor's copy Job that writes it runs on
(its dvdoctor was killed, the Job was not): then it is in progress, never stale.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..cluster import k8s
from ..cluster.lock import LEASE_NAME, Holder
from ..core.names import OWNED_LABEL, OWNED_VALUE
from ..core.units import is_timestamp
from .model import Facts

#: The hidden folder's prefix; the copy program (dvdoctor/copies/job.py, PARTIAL) writes it.
PREFIX = ".dvdoctor-rehydrate-"


@dataclass(frozen=True)
class PartialFolder:
    """One half-written folder: its name, the backup it was to become, the bytes its files hold."""

    name: str
    timestamp: str
    bytes: int
    mtime: float
    #: A restore from a copy still writes it (the lock's holder, or dvdoctor's copy Job, says so).
    in_progress: bool
    #: Where it points when the name is a symbolic link (planted: dvdoctor never makes one); its
    #: target is never followed, sized or removed, only the link itself.
    link: str | None = None


def partial_folders(facts: Facts) -> list[PartialFolder]:
    """Every `.dvdoctor-rehydrate-TS` folder at the top of the backup volume, oldest name first.

    Its size is the sum of the files the inspection lists (two levels deep: where the copy program
    writes the tarballs), so it is what removing it frees, give or take a nested folder. A symbolic
    link at such a name is listed too (0 bytes, its target named): restore --from-copy removes one
    rather than write through it, and check must show it was planted."""
    bar = facts.bar or {}
    found: dict[str, list[float]] = {}
    links: dict[str, str] = {}
    for entry in bar.get("entries", []):
        top, _, rest = entry["path"].partition("/")
        if not top.startswith(PREFIX) or not is_timestamp(top[len(PREFIX):]):
            continue
        if not rest and entry["type"] == "link":  # the probe lists a link, never what is behind it
            links[top] = str(entry.get("target") or "")
        elif not rest and entry["type"] != "dir":
            continue
        size_mtime = found.setdefault(top, [0, 0.0])
        if rest and entry["type"] == "file":
            size_mtime[0] += int(entry.get("size") or 0)
        size_mtime[1] = max(size_mtime[1], float(entry.get("mtime") or 0))
    writing = _being_written(facts)
    return [PartialFolder(name, name[len(PREFIX):], int(v[0]), v[1], name[len(PREFIX):] in writing or "*" in writing,
                          links.get(name))
            for name, v in sorted(found.items())]


def _being_written(facts: Facts) -> set[str]:
    """Timestamps a restore from a copy writes now ("*": one does, for a backup this cannot tell)."""
    out: set[str] = set()
    lease = facts.get("leases", LEASE_NAME) if facts.has_kind("leases") else None
    if lease is not None:
        holder = Holder.of(lease)
        gone = (facts.data.get("source") or {}).get("lock_holder_gone") is True
        if "--from-copy" in holder.command and not (gone or holder.expired(facts.now)):
            out.add("*")  # it names a timestamp or a snapshot id: any partial may be the one it writes
    for job in facts.objects("jobs") if facts.has_kind("jobs") else []:
        labels = (job.get("metadata") or {}).get("labels") or {}
        if labels.get(OWNED_LABEL) != OWNED_VALUE or k8s.job_state(job) != "active":
            continue
        for c in k8s.job_pod_spec(job).get("containers") or []:
            command = [str(a) for a in c.get("command") or []]
            if "rehydrate" in command:
                out.add(command[-1])
    return out
