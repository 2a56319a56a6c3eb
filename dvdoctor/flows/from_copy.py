"""`restore --from-copy`: a copy written back onto dv-bar-pvc as a backup folder, before the restore.

Everything that can refuse does so before anything is written: the copy must exist and be complete,
its origin (the instance its backup's manifest named, kept as a tag) must pass the rules of a restore,
and the volume must have room. When dv-bar-pvc is gone it is made again first, by the rules of
`bar-pvc-missing` (a kept volume is bound again before an empty claim): the runbook's worst case,
the backup volume deleted, is what copies are for.

The command line hands in what is its own: the person's consent, the repairs (with their consent),
how facts are collected again, and where the copy program runs; this module decides and acts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..checks.bar_low_space import space
from ..cluster.port import Cluster
from ..copies.where import JobOutcome, Run
from ..core.errors import UsageError
from ..core.units import human_bytes
from ..facts import trust
from ..facts.backups import Backup, backups, link_timestamp
from ..facts.model import SECTION_BAR, Facts
from ..facts.origin import live_identity
from .copies import audited_run
from .restore import judge_origin

#: DV keeps a backup twice (the component tarballs and the combined one): a rehydrated copy needs
#: about twice its combined tarball, with a little room besides.
ROOM_FACTOR = 2.1


@dataclass(frozen=True)
class Wanted:
    """What the person asked for, and what they accepted."""

    copy: str  # a backup timestamp or a snapshot id
    yes: bool = False
    accept_other: bool = False
    accept_unverified: bool = False


#: The shortest snapshot id prefix taken: restic's own short id is 8 hex characters.
SHORT_ID = 8


def _is_named(snap: dict, wanted: str) -> bool:
    """Whether `wanted` names this copy: its backup's timestamp, its short id, or its full id or any
    prefix of it of 8 hex characters or more (restic prints the full id; people paste either)."""
    if wanted in (snap["backup"], snap["snapshot"]):
        return True
    full = str(snap.get("id") or "")
    return len(wanted) >= SHORT_ID and all(c in "0123456789abcdef" for c in wanted) and full.startswith(wanted)


def choose(facts: Facts, copies: list[dict], wanted: Wanted) -> dict:
    """The complete copy asked for (the newest of that name), after the refusals that need nothing written."""
    match = [s for s in copies if s.get("complete") and _is_named(s, wanted.copy)]
    ids = {s.get("id") or s["snapshot"] for s in match}
    if len(ids) > 1 and wanted.copy not in {s["backup"] for s in match}:
        raise UsageError(f"--from-copy {wanted.copy}: names {len(ids)} copies ({', '.join(sorted(ids))}); "
                         f"give more of the snapshot id")
    if not match:
        raise UsageError(f"--from-copy {wanted.copy}: no complete copy of this DV instance by that timestamp or "
                         f"snapshot (dvdoctor list --copies shows them)")
    snap = match[-1]
    damaged_on_volume(facts, snap)
    live = live_identity(facts)
    recorded = snap.get("origin", "unknown")
    if live is not None and recorded not in (live.uid, "none", "unknown"):
        if not wanted.accept_other:
            raise UsageError(f"backup {snap['backup']} was taken by another DV instance (dv-engine StatefulSet uid "
                             f"{recorded}), not this one ({live.describe()}); DV 1.5.0 restores only onto the instance "
                             "that took the backup, so nothing was changed. Rerun with --accept-other-instance to "
                             "restore it anyway")
    elif recorded in ("none", "unknown"):
        judge_origin(facts, Backup(snap["backup"]), yes=wanted.yes, accept_other=wanted.accept_other,
                     accept_unverified=wanted.accept_unverified)
    return snap


def damaged_on_volume(facts: Facts, snap: dict) -> str | None:
    """Why the folder of the copy's backup on dv-bar-pvc is damaged (read back by the one trust rule),
    when it is: the copy then takes its place. None when no such folder is there. A folder there that
    is not damaged is refused: restore it from the volume.

    Bit rot on the volume is when a copy is needed; a damaged folder of the same name would otherwise
    stand in its way with no repair that may remove it (it can be the restore point)."""
    ts = snap["backup"]
    if not facts.bar or ts not in {b.timestamp for b in backups(facts.bar, facts.names)}:
        return None
    verdict = trust.survey(facts).verdicts.get(ts)
    if verdict is not None and verdict.state == trust.DAMAGED:
        return verdict.why
    raise UsageError(f"--from-copy: {ts} is still on {facts.names.bar_pvc}; restore it with: dvdoctor restore --from {ts}")


def room_needed(facts: Facts, snap: dict) -> int:
    """Bytes the copy takes on the volume; UsageError when the volume has less free."""
    facts.require(SECTION_BAR)
    damaged_on_volume(facts, snap)
    need = int(snap["tarball"] * ROOM_FACTOR)
    room = space(facts)
    free = room.free if room is not None else None
    if free is not None and need > free:
        raise UsageError(f"--from-copy: {snap['backup']} needs about {human_bytes(need)} on {facts.names.bar_pvc}, "
                         f"which has {human_bytes(free)} free; free space first (dvdoctor prune) or grow the claim")
    return need


@dataclass(frozen=True)
class Outcome:
    """How writing the copy back went: `outcome` is the copy program's (None: the person said no)."""

    facts: Facts
    snap: dict
    outcome: JobOutcome | None


def write_back(cluster: Cluster, facts: Facts, snap: dict, *, run_on: Callable[[Facts], Run],
               repair: Callable[[Facts, list[str]], bool], collect: Callable[[bool], Facts],
               consent: Callable[[str], bool], say: Callable[[str], None], audit_file: Path | None) -> Outcome:
    """Make dv-bar-pvc again when it is gone, check the room, ask, then run the copy program's
    rehydrate as an audited change. `repair` runs fixes by id (the one repair runner, with the
    person's consent); False from it stops here with `outcome` None, as a refusal does."""
    if facts.get("persistentvolumeclaims", facts.names.bar_pvc) is None:
        say(f"{facts.names.bar_pvc} is missing: it is made again first (fix bar-pvc-missing)")
        if not repair(facts, ["bar-pvc-missing"]):
            return Outcome(facts, snap, None)
        facts = collect(False)
    need = room_needed(facts, snap)
    damaged = damaged_on_volume(facts, snap)
    instead = f", in place of the damaged folder of that name there ({damaged})" if damaged else ""
    if not consent(f"Write copy {snap['snapshot']} back onto {facts.names.bar_pvc} as backup {snap['backup']}"
                   f"{instead} (about {human_bytes(need)})?"):
        return Outcome(facts, snap, None)
    outcome = audited_run(cluster, facts, audit_file, "restore", run_on(facts),
                          ("rehydrate", snap["snapshot"], snap["backup"], *(("replace-damaged",) if damaged else ())),
                          f"write copy {snap['snapshot']} back onto {facts.names.bar_pvc} as backup {snap['backup']}"
                          + (", in place of the damaged folder of that name" if damaged else ""),
                          write=True)
    return Outcome(facts, snap, outcome)


def point_at_it_if_unset(facts: Facts, repair: Callable[[Facts, list[str]], bool],
                         collect: Callable[[bool], Facts]) -> bool:
    """A volume made anew has no restore point: it goes to a good backup, which the copy written back
    now is (its backups read back first, as the fix's check judges them). True when nothing was due
    or the repair is done."""
    if link_timestamp(facts.bar, facts.names) is not None:
        return True
    return repair(collect(True), ["broken-backup-symlink"])
