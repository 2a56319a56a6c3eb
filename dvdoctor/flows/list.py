"""`list`: every backup on dv-bar-pvc with its sizes, its state by the one trust rule, its origin, and
the entries on the volume that are not backups.

The rows are data (the CLI prints them as a table or as JSON): what a backup is, here; how it looks,
in the command line.
"""

from __future__ import annotations

from ..facts.model import SECTION_BAR, Facts
from ..facts.origin import live_identity, origin
from ..facts.trust import Survey, survey


def listing(facts: Facts) -> tuple[Survey, list[dict], list[dict]]:
    """The survey of the volume, a row per backup (oldest first) and a row per entry that is not one."""
    facts.require(SECTION_BAR)
    names = facts.names
    s = survey(facts)
    live = live_identity(facts)
    rows = [
        {
            "timestamp": b.timestamp,
            "age_hours": round((facts.now - b.time).total_seconds() / 3600, 1),
            "combined_bytes": b.combined_size(names),
            "component_bytes": b.component_size(names),
            # by the one rule (dvdoctor/facts/trust.py): good / unverified / damaged / in progress, and why
            "state": s.verdicts[b.timestamp].state,
            "why": s.verdicts[b.timestamp].why,
            "sha256": s.verdicts[b.timestamp].sha256,
            "current": b.timestamp == s.link_ts,
            "missing": b.missing(names),
            # which DV instance took it, from its dvdoctor-manifest.json: this instance / other instance / unknown
            "origin": origin(b, live).kind,
            "manifest": b.manifest,
        }
        for b in s.backups
    ]
    odd = [{"name": o.name, "kind": o.kind, "why": o.why} for o in s.odd]
    return s, rows, odd
