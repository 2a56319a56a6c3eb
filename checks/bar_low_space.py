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


@check(
    "bar-low-space",
    "The backup volume has room for the next backup",
    applies=[BACKUP],
    fix="bar-low-space",
    needs=[SECTION_BAR],
    tags=["runbook", "backup-volume", "space"],
)
def run(facts: Facts):
    bar, names = facts.bar, facts.names
    if not bar.get("exists", True):
        return
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

    limits: list[tuple[int, str]] = []
    evidence: list[str] = []
    df = bar.get("df")
    if df:
        pct = round(100 * df["used"] / df["total"]) if df["total"] else 0
        evidence.append(f"df -h {names.bar_mount}: Size {human_bytes(df['total'])}  Used {human_bytes(df['used'])}  "
                        f"Avail {human_bytes(df['avail'])}  Use% {pct}%  (avail {df['avail']} B)")
        limits.append((df["avail"], "df"))
    size = claim_size(facts.get("persistentvolumeclaims", names.bar_pvc))
    if size is not None and "used_bytes" in bar:
        left = max(size[0] - bar["used_bytes"], 0)
        evidence.append(f"{names.bar_pvc} {size[1]} ({size[0]} B) minus {sized(bar['used_bytes'])} on the volume "
                        f"leaves {sized(left)}")
        limits.append((left, "claim"))
    if not limits:
        raise Skip(f"neither df nor the size of {names.bar_pvc} and the volume's usage are known")
    free = min(limits)[0]
    need = int(expected * (1 + facts.thresholds.space_margin))
    if free >= need:
        return
    evidence += [
        f"next backup expected: {sized(expected)} ({basis})",
        f"needed with the {facts.thresholds.space_margin:.0%} margin: {sized(need)}; free: {sized(free)}",
    ]
    yield Problem(
        f"{names.bar_mount} has {human_bytes(free)} free, the next backup needs about {human_bytes(need)}",
        tuple(evidence),
        f"persistentvolumeclaim/{names.bar_pvc}",
    )
