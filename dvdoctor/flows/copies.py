"""Copies of good backups off dv-bar-pvc: which backups to copy.

The runbook's warning is that deleting the backup volume loses every backup. A copy in a restic
repository (another claim, object storage) survives that, deduplicated and encrypted. Where the
copy program runs is `dvdoctor.copies.where`; what it writes is `dvdoctor.copies.stream`.
"""

from __future__ import annotations

from ..facts.trust import good_backups
from ..facts.backups import Backup, backups, link_timestamp
from ..core.errors import UsageError
from ..facts.model import Facts


def choose(facts: Facts, wanted: str | None, all_new: bool, copied: set[str]) -> tuple[list[str], list[str]]:
    """The timestamps to copy, and lines saying why others are left out."""
    good = good_backups(facts)
    stamps = [b.timestamp for b in good]
    notes: list[str] = []
    if wanted:
        every = {b.timestamp for b in backups(facts.bar, facts.names)}
        if wanted not in every:
            raise UsageError(f"--from {wanted}: no such backup on {facts.names.bar_pvc} "
                             f"(dvdoctor list shows them)")
        if wanted not in stamps:
            raise UsageError(f"--from {wanted}: not a good backup (it does not read back whole); only good backups "
                             f"are copied")
        todo = [wanted]
    elif all_new:
        todo = stamps
    else:
        current = link_timestamp(facts.bar, facts.names)
        newest = stamps[-1:] if stamps else []
        todo = [current] if current in stamps else newest
    skipped = [t for t in todo if t in copied]
    notes += [f"{t}: already copied" for t in skipped]
    return [t for t in todo if t not in copied], notes
