"""The restic repository of copies has lost data that its copies need (checked by `check --verify`).

Symptom: `dvdoctor check --verify` or `dvdoctor list --copies --verify` says `restic check: the
repository is damaged (pack 3f2a…: does not exist)`; `dvdoctor list --copies` alone still lists
every copy complete, and `restore --from-copy` of one that shares a lost pack stops with
"ciphertext verification failed" or a missing blob. `dvdoctor copy` saves new copies but no longer
marks them complete.
Cause: pack files were removed or lost in the repository's storage (a lifecycle rule on the
bucket, a cleanup by hand, a disk or a sync that lost files). restic deduplicates against its
index, so a copy made after the loss is saved without error and is as broken as the old ones.
Only `restic check` finds it: it lists every pack, so dvdoctor runs it with --verify only.
Repair: manual: put the lost packs back if the storage can (a versioned bucket, the storage's own
backup). Otherwise, with restic and the repository's settings: `restic rebuild-index` (restic 0.16
and later: `restic repair index`), then `restic forget` the copies `restic check` still names,
then `dvdoctor copy --all-new`, which copies those backups again from dv-bar-pvc and uploads the
lost data anew; `dvdoctor list --copies --verify` then says whether the repository is whole.
"""

from dvdoctor.facts.model import SECTION_COPIES, Facts
from dvdoctor.verdicts.registry import NOW, NotApplicable, Problem, Skip, check


def _said_by_check(error: str) -> str:
    """The damage as one evidence line that names restic check once (its own lines may already)."""
    return error if error.startswith("restic check") else f"restic check: {error}"


@check(
    "The restic repository of copies holds every pack its copies need",
    applies=[NOW],
    needs=[SECTION_COPIES],
    tags=["copies"],
)
def run(facts: Facts):
    copies = facts.section(SECTION_COPIES)
    if copies.get("error"):
        raise Skip(f"the repository could not be used: {copies['error']} (see copies-unusable)")
    checked = copies.get("repository_check")
    if checked is None:
        raise NotApplicable("restic check lists every pack of the repository: it runs with --verify")
    if checked.get("ok"):
        return
    complete = [s for s in copies.get("snapshots", []) if s.get("complete")]
    yield Problem(
        "the repository of copies is damaged: a copy listed complete may not restore",
        (_said_by_check(checked.get("error") or "it failed"),
         f"{len(complete)} cop{'y' if len(complete) == 1 else 'ies'} of this DV instance listed complete"
         + (f", the newest of backup {complete[-1].get('backup')}" if complete else "")),
        "restic repository",
    )
