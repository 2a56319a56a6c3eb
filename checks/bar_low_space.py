"""The backup volume has too little free space for the next backup.

Symptom: the second (or a later) backup fails with `No space left on device`; `df -h` in a pod that
mounts the volume shows /mnt/PV/bar nearly full, as in the runbook:
`20G 15G 5.3G 74% /mnt/PV/bar`.
Cause: a backup keeps its data twice, the component tarballs (`dv_backup_dv_metastore.tar.gz`,
`dv_backup_dv_engine.tar.gz`) and the combined `dv_backup.tar.gz`: 6.2 GB in the runbook's
listing, "about 10 Gi" on its ROKS cluster, against dv-bar-pvc's default 20Gi.
How the next backup's size is estimated: the size of the newest good backup, one proven to read
back (components plus combined; when its components were pruned, the combined tarball counts
twice, since the next backup writes both again). A damaged backup (cut short by a full volume)
or an unverified one never sets the estimate: it may be a fraction of a real one. With no good
backup there is nothing to learn from and the facts hold no data size, so the runbook's own
figure for one backup, 10 GiB, is assumed (or the largest unverified backup, when bigger):
conservative for a fresh instance (3-4 GB per tarball) and the size that fills the default claim. Free space is
the smaller of what `df` reports and the claim's size minus what is on the volume, because not
every storage class (NFS, for one) enforces the claim's size. The margin is
thresholds.space_margin.
Repair: free space by removing old and incomplete backups (never the restore point or the newest
complete one), or grow dv-bar-pvc when its storage class allows expansion:
`dvdoctor fix --issue bar-low-space` (`--keep N`, `--size 60Gi`).
"""

from dataclasses import dataclass

from dvdoctor.facts.backups import Backup
from dvdoctor.core.units import human_bytes, parse_quantity
from dvdoctor.facts.model import SECTION_BAR, Facts
from dvdoctor.core.names import DvNames
from dvdoctor.verdicts.registry import BACKUP, Problem, Skip, check
from dvdoctor.facts.trust import UNVERIFIED, survey

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


def backup_footprint(b: Backup, names: DvNames) -> int:
    """What taking this backup again writes: its components and its combined tarball (the combined
    one counted twice when its components were pruned)."""
    combined = b.combined_size(names)
    whole = all(b.files.get(n, 0) > 0 for n in names.component_tarballs)
    return combined + (b.component_size(names) if whole else combined)


def footprint_basis(b: Backup, names: DvNames) -> str:
    whole = all(b.files.get(n, 0) > 0 for n in names.component_tarballs)
    return (f"components {human_bytes(b.component_size(names))} + combined {human_bytes(b.combined_size(names))}"
            + ("" if whole else " (components pruned: combined counted twice)"))


def space(facts: Facts) -> Space | None:
    """The volume's room for the next backup; None when neither df nor claim size and usage are known.

    Shared with `list` and `copy`, which show it; the repair is handed it in the check's problem.
    """
    bar, names = facts.bar, facts.names
    s = survey(facts)
    newest = s.newest_good()
    if newest is not None:
        expected = backup_footprint(newest, names)
        basis = f"size of the newest good backup {newest.timestamp}: {footprint_basis(newest, names)}"
    else:
        expected = FIRST_BACKUP_ESTIMATE
        basis = "no good backup to learn from: the runbook's ~10 GiB per backup is assumed"
        biggest = max(s.with_state(UNVERIFIED), key=lambda b: backup_footprint(b, names), default=None)
        if biggest is not None and backup_footprint(biggest, names) > expected:
            expected = backup_footprint(biggest, names)
            basis = (f"no good backup to learn from: the largest unverified one, {biggest.timestamp}, "
                     f"{footprint_basis(biggest, names)}")

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
    "The backup volume has room for the next backup",
    applies=[BACKUP],
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
        data={"space": room},  # the repair frees (or grows the claim) until free reaches need
    )
