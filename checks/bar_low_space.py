"""The backup volume has too little free space for the next backup.

Symptom: the second (or a later) backup fails with `No space left on device`; `df -h` in a pod that
mounts the volume shows /mnt/PV/bar nearly full, as in the runbook:
`20G 15G 5.3G 74% /mnt/PV/bar`.
Cause: a backup keeps its data twice, the component tarballs (`dv_backup_dv_metastore.tar.gz`,
`dv_backup_dv_engine.tar.gz`) and the combined `dv_backup.tar.gz`: 6.2 GB in the runbook's
listing, "about 10 Gi" on its ROKS cluster, against dv-bar-pvc's default 20Gi.
How the next backup's size is estimated: the size of the newest complete backup (components plus
combined; when its components were pruned, the combined tarball counts twice, since the next
backup writes both again). With no complete backup there is nothing to learn from and the facts
hold no data size, so the runbook's own figure for one backup, 10 GiB, is assumed: conservative
for a fresh instance (3-4 GB per tarball) and the size that fills the default claim. Free space is
the smaller of what `df` reports and the claim's size minus what is on the volume, because not
every storage class (NFS, for one) enforces the claim's size. The margin is
thresholds.space_margin.
Repair: free space by removing old and incomplete backups (never the restore point or the newest
complete one), or grow dv-bar-pvc when its storage class allows expansion:
`dvdoctor fix --issue bar-low-space` (`--keep N`, `--size 60Gi`).
"""

from dataclasses import dataclass

from dvdoctor.backups import backups, human_bytes, newest_complete, parse_quantity
from dvdoctor.facts import SECTION_BAR, Facts
from dvdoctor.registry import BACKUP, Problem, Skip, check

GIB = 1024**3
#: The runbook's size of one backup, for a volume without a complete backup to learn from.
FIRST_BACKUP_ESTIMATE = 10 * GIB


def claim_size(pvc: dict | None) -> tuple[int, str] | None:
    """The claim's size in bytes and where it was read: status.capacity when bound, else the request."""
    if pvc is None:
        return None
    capacity = ((pvc.get("status") or {}).get("capacity") or {}).get("storage")
    if capacity:
        return parse_quantity(capacity), f"capacity {capacity}"
    request = (((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
    return (parse_quantity(request), f"request {request}") if request else None


def sized(n: int) -> str:
    return f"{human_bytes(n)} ({n} B)"


@dataclass(frozen=True)
class Space:
    """Free space on the backup volume against what the next backup needs, with the evidence for both."""

    free: int
    need: int
    expected: int
    basis: str
    evidence: tuple[str, ...]


def space(facts: Facts) -> Space | None:
    """The volume's room for the next backup; None when neither df nor claim size and usage are known.

    Shared with the low-space repair, which frees until `free` reaches `need`.
    """
    bar, names = facts.bar, facts.names
    newest = newest_complete(backups(bar, names), names)
    if newest is not None:
        combined = newest.combined_size(names)
        components = newest.component_size(names)
        complete_components = all(newest.files.get(n, 0) > 0 for n in names.component_tarballs)
        expected = combined + (components if complete_components else combined)
        basis = (f"size of the newest complete backup {newest.timestamp}: components {human_bytes(components)}"
                 f" + combined {human_bytes(combined)}" + ("" if complete_components else " (components pruned: combined counted twice)"))
    else:
        expected = FIRST_BACKUP_ESTIMATE
        basis = "no complete backup to learn from: the runbook's ~10 GiB per backup is assumed"

    limits: list[int] = []
    evidence: list[str] = []
    df = bar.get("df")
    if df:
        # df's own Use%: used over what non-root users can reach (used + avail), rounded up.
        reachable = df["used"] + df["avail"]
        pct = -(-100 * df["used"] // reachable) if reachable else 0
        evidence.append(f"df -h {names.bar_mount}: Size {human_bytes(df['total'])}  Used {human_bytes(df['used'])}  "
                        f"Avail {human_bytes(df['avail'])}  Use% {pct}%  (avail {df['avail']} B)")
        limits.append(df["avail"])
    size = claim_size(facts.get("persistentvolumeclaims", names.bar_pvc))
    if size is not None and "used_bytes" in bar:
        left = max(size[0] - bar["used_bytes"], 0)
        evidence.append(f"{names.bar_pvc} {size[1]} ({size[0]} B) minus {sized(bar['used_bytes'])} on the volume "
                        f"leaves {sized(left)}")
        limits.append(left)
    if not limits:
        return None
    need = int(expected * (1 + facts.thresholds.space_margin))
    return Space(min(limits), need, expected, basis, tuple(evidence))


@check(
    "bar-low-space",
    "The backup volume has room for the next backup",
    applies=[BACKUP],
    fix="bar-low-space",
    needs=[SECTION_BAR],
    tags=["runbook", "backup-volume", "space"],
)
def run(facts: Facts):
    if not facts.bar.get("exists", True):
        return
    room = space(facts)
    if room is None:
        raise Skip(f"neither df nor the size of {facts.names.bar_pvc} and the volume's usage are known")
    if room.free >= room.need:
        return
    yield Problem(
        f"{facts.names.bar_mount} has {human_bytes(room.free)} free, the next backup needs about {human_bytes(room.need)}",
        room.evidence + (
            f"next backup expected: {sized(room.expected)} ({room.basis})",
            f"needed with the {facts.thresholds.space_margin:.0%} margin: {sized(room.need)}; free: {sized(room.free)}",
        ),
        f"persistentvolumeclaim/{facts.names.bar_pvc}",
    )
