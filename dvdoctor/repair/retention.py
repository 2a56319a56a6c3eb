"""Which backups may be deleted: the one rule that prune and the low-space repair share.

It stands on the trust rule (dvdoctor/facts/trust.py): only a backup proven good counts as one to keep.
Never removed, whatever --keep says: the symlink's target, the newest good backup, the folder DV's
backup job is writing. --keep N keeps the newest N good backups; unverified ones only fill the slots
good ones cannot (never kept in place of a good one). Beyond that go damaged folders, unverified
backups and good backups older than the newest N. Never removed either: a backup this run could not
read (no read permission for the BAR job's uid): that says nothing of its bytes. A plan is refused,
whatever it frees, unless a backup read back IN THIS RUN remains: a record in a manifest proves the
file as it was, and bit rot keeps its size and mtime (callers gather with probe.EVERY_ONE).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import DvdoctorError
from ..core.names import DvNames
from ..facts.trust import DAMAGED, GOOD, UNVERIFIED, Survey

#: `why` of each kind of removal, also how the low-space repair groups them.
WHY_DAMAGED = "damaged"
WHY_UNVERIFIED = "unverified"


class NoGoodBackupLeft(DvdoctorError):
    """A removal that would leave no backup proven good: refused before anything is changed."""


@dataclass(frozen=True)
class Removal:
    path: str
    bytes: int
    why: str


def protected(s: Survey) -> set[str]:
    """The restore point, the newest good backup and the folder being written: never removed."""
    newest = s.newest_good()
    return {t for t in (s.link_ts, newest.timestamp if newest else None) if t} | s.writing | s.protect


def kept(s: Survey, keep: int) -> set[str]:
    """What --keep N keeps besides the protected ones: the newest N good backups; only when fewer than
    N are good, the newest unverified ones fill the rest (an unverified backup never takes a good
    one's place, and is not thrown away while it is all there is besides)."""
    if keep <= 0:
        return set()
    good = [b.timestamp for b in s.good()][-keep:]
    unverified = [b.timestamp for b in s.with_state(UNVERIFIED)]
    return set(good) | set(unverified[len(unverified) - (keep - len(good)):] if keep > len(good) else [])


def prunable(s: Survey, keep: int) -> list[Removal]:
    """Whole backup folders that may go, oldest first."""
    keep_ts = protected(s) | kept(s, keep)
    out = []
    for b in s.backups:
        if b.timestamp in keep_ts:
            continue
        if s.verdicts[b.timestamp].unreadable:
            continue  # never removed only because it could not be read
        state = s.verdicts[b.timestamp].state
        why = {DAMAGED: WHY_DAMAGED, UNVERIFIED: WHY_UNVERIFIED}.get(
            state, "older than the newest good backup" if max(keep, 1) == 1
            else f"older than the newest {keep} good backups")
        if state in (GOOD, DAMAGED, UNVERIFIED):
            out.append(Removal(b.timestamp, b.size(), why))
    return out


def redundant_components(s: Survey, names: DvNames) -> list[Removal]:
    """Component tarballs of good backups: the combined tarball holds the same data again, and was
    proven to read back inner tarballs included. A damaged or unverified backup keeps its components:
    they may be all that is left of it."""
    out = []
    for b in s.good():
        for comp in names.component_tarballs:
            if b.files.get(comp):
                out.append(Removal(f"{b.timestamp}/{comp}", b.files[comp], "also inside the combined dv_backup.tar.gz"))
    return out


def no_good_left(s: Survey, removals: list[Removal], names: DvNames) -> str | None:
    """Why a removal plan must be refused: after it no backup proven good IN THIS RUN (read back now, not
    only on a record) would remain; else None."""
    if not removals:
        return None
    whole = {r.path for r in removals if "/" not in r.path}
    if any(b.timestamp not in whole for b in s.read_back_good()):
        return None
    states = ", ".join(f"{b.timestamp} {s.verdicts[b.timestamp].state}"
                       + ("" if s.verdicts[b.timestamp].fresh or s.verdicts[b.timestamp].state != GOOD
                          else " (on a record only)") for b in s.backups) or "none"
    return (f"refusing to delete: no backup on {names.bar_pvc} would be left that is proven good, read back "
            f"in this run (backups: {states}); nothing was changed. Take a backup first (`dvdoctor backup`), "
            "or prove one with `dvdoctor list --verify`")


def refuse_unless_good_remains(s: Survey, removals: list[Removal], names: DvNames) -> None:
    """Raise NoGoodBackupLeft (one line, exit 2) when the plan would leave no good backup."""
    why = no_good_left(s, removals, names)
    if why:
        raise NoGoodBackupLeft(why)
