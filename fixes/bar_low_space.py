"""Make room on the backup volume for the next backup: free what is safe, largest first, and grow the claim when that is not enough.

In this order, and only as much as the next backup needs: component tarballs of good backups (their
combined tarball was proven to read back, inner tarballs included, and holds them again), then
damaged backup folders, then unverified backups (never kept in place of a good one), then good
backups older than the newest --keep (default 2). The symlink's target and the newest good backup
are never removed, whatever --keep says, and nothing is removed when no good backup would remain
(then only growing the claim is planned).
A plan is whole or it is not applied: when freeing what is safe still leaves less than the next
backup needs, the plan first grows dv-bar-pvc, when its storage class allows expansion, to the
size the site gives a new dv-bar-pvc (`bar.size` in dvdoctor.yaml, else 30Gi: three of the
runbook's ~10Gi backups), or more when the shortfall needs more; when the class does not allow it,
nothing is changed and the exact command to run once it does (with --size) is printed. With
--size, dv-bar-pvc is grown to that size instead, when its class allows expansion and the size
gives the next backup its room.
Changes: removes files and folders on dv-bar-pvc; when growing, patches the claim's requested size
first and waits for the storage driver to grow it, so a refused or stalled growth removes nothing.
"""

import math
from typing import Sequence

from dvdoctor.core.units import human_bytes, parse_quantity
from dvdoctor.checks.bar_low_space import GIB, claim_size
from dvdoctor.core.errors import UsageError
from dvdoctor.facts.model import SECTION_BAR, Facts
from dvdoctor.repair.fixer import FixOptions, fix
from dvdoctor.facts.dv_templates import THREE_BACKUPS
from dvdoctor.repair.plan import AwaitGrown, BarScript, Patch, Plan
from dvdoctor.verdicts.registry import Problem, module_id
from dvdoctor.repair.retention import (
    WHY_DAMAGED,
    WHY_UNVERIFIED,
    Removal,
    no_good_left,
    prunable,
    redundant_components,
)
from dvdoctor.facts.trust import survey
from dvdoctor.core.words import plural

ID = module_id(__name__)


def candidates(facts: Facts, keep: int) -> list[tuple[tuple[str, str], list[Removal]]]:
    """What may go, by kind (its noun, and words after it), in the order it should go; each kind largest first."""
    s = survey(facts)
    folders = prunable(s, keep)
    kinds = [
        (("component tarball", " already inside a good combined tarball"), redundant_components(s, facts.names)),
        (("damaged backup folder", ""), [r for r in folders if r.why == WHY_DAMAGED]),
        (("unverified backup", ""), [r for r in folders if r.why == WHY_UNVERIFIED]),
        (("good backup", f" older than the newest {max(keep, 1)}"),
         [r for r in folders if r.why not in (WHY_DAMAGED, WHY_UNVERIFIED)]),
    ]
    return [(label, sorted(rs, key=lambda r: -r.bytes)) for label, rs in kinds]


def expandable(facts: Facts) -> tuple[bool, str]:
    """Whether dv-bar-pvc's storage class allows expansion, and the class's name."""
    pvc = facts.get("persistentvolumeclaims", facts.names.bar_pvc)
    sc_name = ((pvc or {}).get("spec") or {}).get("storageClassName") or ""
    sc = facts.get("storageclasses", sc_name) if sc_name else None
    return bool(sc and sc.get("allowVolumeExpansion")), sc_name or "(none)"


def _expand(facts: Facts, size: str, why: str = "") -> Patch:
    names = facts.names
    pvc = facts.get("persistentvolumeclaims", names.bar_pvc)
    current = claim_size(pvc)
    if pvc is None or current is None:
        raise UsageError(f"claim {names.bar_pvc} is missing or has no size")
    if parse_quantity(size) <= current[0]:
        raise UsageError(f"--size {size}: a claim can only grow, and {names.bar_pvc} already has {current[1]}")
    ok, sc_name = expandable(facts)
    if not ok:
        raise UsageError(f"storage class {sc_name} does not allow volume expansion; free space instead "
                         f"(--keep N) or create a bigger {names.bar_pvc} by hand before the next backup")
    return Patch("persistentvolumeclaims", names.bar_pvc, {"spec": {"resources": {"requests": {"storage": size}}}},
                 f"grow claim {names.bar_pvc} from {current[1]} to {size} (storage class {sc_name} allows expansion){why}",
                 before=current[1])


def _size_now(facts: Facts) -> str:
    """The claim's size as the plan read it (capacity when bound), for the growth's before → after."""
    current = claim_size(facts.get("persistentvolumeclaims", facts.names.bar_pvc))
    return current[1].split(" ", 1)[1] if current else ""


def growth_size(facts: Facts, short: int) -> str:
    """The size to grow dv-bar-pvc to when `short` bytes are missing: the site's size for a new
    dv-bar-pvc, or the claim's size plus the shortfall when that is more, in whole GiB."""
    current = claim_size(facts.get("persistentvolumeclaims", facts.names.bar_pvc))
    site = parse_quantity(facts.settings.bar_size or THREE_BACKUPS)
    wanted = max(site, (current[0] if current else 0) + short)
    return f"{math.ceil(wanted / GIB)}Gi"


def command(facts: Facts, *args: str) -> str:
    """The exact dvdoctor command line for this namespace (or lab) with these arguments."""
    where = str((facts.data.get("source") or {}).get("where") or "")
    target = f"--lab {where[4:]}" if (facts.data.get("source") or {}).get("kind") == "lab" and where.startswith("lab ") \
        else f"-n {facts.namespace}"
    return " ".join(["dvdoctor", target, *args])


def _free(facts: Facts, keep: int, free: int, need: int) -> tuple[list[BarScript], list[str], int, list[Removal]]:
    """Removals, largest first per kind, until `need` is reached: (actions, note lines, free after, removals)."""
    actions, notes, projected, every = [], [], free, []
    for (noun, rest), removals in candidates(facts, keep):
        chosen: list[Removal] = []
        for r in removals:
            if projected >= need:
                break
            chosen.append(r)
            projected += r.bytes
        if chosen:
            actions.append(BarScript(("remove", *[r.path for r in chosen]),
                                     f"delete {plural(len(chosen), noun)}{rest}, freeing {human_bytes(sum(r.bytes for r in chosen))}"))
            notes += [f"  {r.path}: {human_bytes(r.bytes)}" for r in chosen]
            every += chosen
    return actions, notes, projected, every


@fix
def plan(facts: Facts, problems: Sequence[Problem], options: FixOptions) -> Plan:
    out = Plan()
    facts.require(SECTION_BAR)
    # the room the check found short; none when it found enough (or could not tell: --size still grows)
    room = next((problem.data["space"] for problem in problems), None)
    if options.size:
        grow = _expand(facts, options.size)
        if room is not None:
            current = claim_size(facts.get("persistentvolumeclaims", facts.names.bar_pvc))
            after = room.free + parse_quantity(options.size) - (current[0] if current else 0)
            if after < room.need:
                enough = growth_size(facts, room.need - room.free)
                out.manual.append(
                    f"--size {options.size} leaves {human_bytes(after)} free, the next backup needs {human_bytes(room.need)}: "
                    f"nothing was changed; run `{command(facts, 'fix', '--issue', ID, '--size', enough)}`")
                return out
        out.actions.append(grow)
        return out
    if room is None or room.free >= room.need:
        return out
    removals, notes, projected, chosen = _free(facts, options.keep, room.free, room.need)
    refused = no_good_left(survey(facts), chosen, facts.names)
    if refused:  # nothing may go: only growing the claim can make room
        removals, notes, projected = [], [f"nothing is removed: {refused}"], room.free
    summary = (f"free now {human_bytes(room.free)}, after freeing what is safe {human_bytes(projected)}, "
               f"the next backup needs {human_bytes(room.need)}")
    if projected >= room.need:
        out.actions += removals
        out.notes += notes + [summary]
        return out
    # Freeing is not enough: the plan is whole only with the claim grown, first.
    short = room.need - projected
    size = growth_size(facts, short)
    ok, sc_name = expandable(facts)
    if ok:
        out.actions.append(_expand(facts, size, f": {human_bytes(short)} short after freeing what is safe"))
        out.actions.append(AwaitGrown(facts.names.bar_pvc, size, before=_size_now(facts)))  # the removals count on that room
        out.actions += removals
        out.notes += notes + [summary, f"growing to {size}: the size dvdoctor gives a new {facts.names.bar_pvc}"
                                       f" ({'bar.size of the site' if facts.settings.bar_size else THREE_BACKUPS + ', three backups'})"
                                       " or the shortfall, whichever is more"]
        return out
    steps = [f"{summary}: still {human_bytes(short)} short, and storage class {sc_name} does not allow volume "
             "expansion, so nothing was changed (freeing alone would not make the next backup fit)"]
    steps.append(f"once the class allows expansion (`oc patch storageclass {sc_name} -p "
                 "'{\"allowVolumeExpansion\": true}'`, if its provisioner supports it), run: "
                 f"`{command(facts, 'fix', '--issue', ID, '--size', size)}`")
    for fewer in range(options.keep - 1, -1, -1):
        fewer_plan = _free(facts, fewer, room.free, room.need)
        if fewer_plan[2] >= room.need and not no_good_left(survey(facts), fewer_plan[3], facts.names):
            steps.append(f"or keep fewer good backups: `{command(facts, 'fix', '--issue', ID, '--keep', str(fewer))}`")
            break
    else:
        steps.append(f"or create a bigger {facts.names.bar_pvc} in a class that allows expansion and move the backups to it")
    out.manual += steps
    return out
