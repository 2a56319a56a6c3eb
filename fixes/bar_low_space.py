"""Make room on the backup volume for the next backup: free what is safe, largest first, or grow the claim.

In this order, and only as much as the next backup needs: component tarballs of backups whose
combined tarball is complete and reads back (gzip -t; the combined one holds them again), then
incomplete backup folders, then complete backups older than the newest --keep (default 2). The
symlink's target and the newest complete backup are never removed, whatever --keep says. With
--size, dv-bar-pvc is grown instead or as well, when its storage class allows expansion.
Changes: removes files and folders on dv-bar-pvc; with --size, patches the claim's requested size.
"""

from dvdoctor.backups import backups, human_bytes, link_timestamp, parse_quantity
from dvdoctor.checks.bar_low_space import claim_size, space
from dvdoctor.errors import UsageError
from dvdoctor.facts import SECTION_BAR, Facts
from dvdoctor.fixer import FixOptions, fix
from dvdoctor.plan import BarScript, Patch, Plan
from dvdoctor.retention import Removal, folder_being_written, prunable, redundant_components


def candidates(facts: Facts, keep: int) -> list[tuple[str, list[Removal]]]:
    """What may go, by kind, in the order it should go; each kind largest first."""
    names = facts.names
    items = backups(facts.bar, names)
    link_ts = link_timestamp(facts.bar, names)
    writing = folder_being_written(facts, items)
    readable = {b.timestamp for b in items if b.verified}
    comps = [r for r in redundant_components(items, names) if r.path.split("/")[0] in readable]
    folders = prunable(items, link_ts, keep, names, writing)
    kinds = [
        ("component tarballs already inside a verified combined tarball", comps),
        ("incomplete backup folders", [r for r in folders if r.why == "incomplete"]),
        (f"complete backups older than the newest {max(keep, 1)}", [r for r in folders if r.why != "incomplete"]),
    ]
    return [(label, sorted(rs, key=lambda r: -r.bytes)) for label, rs in kinds]


def _expand(facts: Facts, size: str) -> Patch:
    names = facts.names
    pvc = facts.get("persistentvolumeclaims", names.bar_pvc)
    current = claim_size(pvc)
    if pvc is None or current is None:
        raise UsageError(f"claim {names.bar_pvc} is missing or has no size")
    if parse_quantity(size) <= current[0]:
        raise UsageError(f"--size {size}: a claim can only grow, and {names.bar_pvc} already has {current[1]}")
    sc_name = (pvc.get("spec") or {}).get("storageClassName")
    sc = facts.get("storageclasses", sc_name) if sc_name else None
    if sc is None or not sc.get("allowVolumeExpansion"):
        raise UsageError(f"storage class {sc_name or '(none)'} does not allow volume expansion; free space instead "
                         f"(--keep N) or create a bigger {names.bar_pvc} by hand before the next backup")
    return Patch("persistentvolumeclaims", names.bar_pvc, {"spec": {"resources": {"requests": {"storage": size}}}},
                 f"grow claim {names.bar_pvc} from {current[1]} to {size} (storage class {sc_name} allows expansion)")


@fix("bar-low-space")
def plan(facts: Facts, options: FixOptions) -> Plan:
    out = Plan("bar-low-space")
    facts.require(SECTION_BAR)
    room = space(facts)
    if options.size:
        out.actions.append(_expand(facts, options.size))
        return out
    if room is None or room.free >= room.need:
        return out
    projected = room.free
    for label, removals in candidates(facts, options.keep):
        chosen = []
        for r in removals:
            if projected >= room.need:
                break
            chosen.append(r)
            projected += r.bytes
        if chosen:
            out.actions.append(BarScript(("remove", *[r.path for r in chosen]),
                                         f"delete {len(chosen)} {label}, freeing {human_bytes(sum(r.bytes for r in chosen))}"))
            out.notes += [f"  {r.path}: {human_bytes(r.bytes)}" for r in chosen]
    out.notes.append(f"free now {human_bytes(room.free)}, after this plan {human_bytes(projected)}, "
                     f"the next backup needs {human_bytes(room.need)}")
    if projected < room.need:
        pvc = facts.get("persistentvolumeclaims", facts.names.bar_pvc)
        sc = facts.get("storageclasses", (pvc or {}).get("spec", {}).get("storageClassName", ""))
        grow = "grow it with --size (its storage class allows expansion)" if sc and sc.get("allowVolumeExpansion") \
            else "its storage class cannot grow it: create a bigger dv-bar-pvc before the next backup"
        out.notes.append(f"still short by {human_bytes(room.need - projected)}: {grow}")
    return out
