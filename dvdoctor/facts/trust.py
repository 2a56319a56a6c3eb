"""The one rule that decides whether a backup is trusted: good, unverified, damaged or in progress.

Every command that keeps, removes, points at, restores or counts a backup asks this module: prune
and the low-space repair (via dvdoctor/repair/retention.py), the restore-point repair, the space estimate,
`list`'s state column, the restore gate and the backup's postflight.

A backup is **good** when its combined `dv_backup.tar.gz` reads back to its end AND every component
tarball inside it reads back too (gunzipped and listed, streamed by bar-probe.sh in one pass), either
in this run, or when dvdoctor took it: the read-back then recorded in its dvdoctor-manifest.json
(result, sha256 and the tarball's `SIZE:MTIME`) counts while the file's size and mtime still match.
It is **damaged** when the combined tarball is missing, empty, not gzip, or a read-back failed; **in
progress** while DV's backup job writes it; **unverified** otherwise (not read back in this run, and
nothing recorded for the file as it is now: a dvcli.sh backup beyond the read-back budget), and always
when the BAR job's uid may not read it (root-owned, the runbook's Errno 13): a permission problem says
nothing of its bytes, so it is neither damaged nor good on a record (DV's restore job could not read
it either), and nothing removes it for that (dvdoctor/repair/retention.py).

A record proves the file as it was: bit rot keeps size and mtime. So `--verify` and every command
that removes backups read all of them back (probe.EVERY_ONE), and a removal counts only backups read
back in that run (`Verdict.fresh`) as the good ones that remain.

A backup's size and its name alone prove nothing: a job killed by a full volume leaves a combined
tarball of some size whose inner engine tarball is cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from . import bar_jobs
from .backups import Backup, OddEntry, backups, link_timestamp, not_future, odd_entries
from .model import SECTION_BAR, Facts
from ..core.names import DvNames

GOOD = "good"
UNVERIFIED = "unverified"
DAMAGED = "damaged"
IN_PROGRESS = "in progress"
STATES = (GOOD, UNVERIFIED, DAMAGED, IN_PROGRESS)

#: The probe's readback state for a file it may not read (a permission problem, not damage).
UNREADABLE = "unreadable"

#: A recorded read-back is for the combined tarball as it was: `manifest["read_back"]` holds these.
RECORD_KEY = "read_back"


@dataclass(frozen=True)
class Verdict:
    state: str
    #: Why, in a few words an operator can act on.
    why: str
    #: sha256 of the combined tarball, when read back now or recorded.
    sha256: str = ""
    #: True when this run read it back (not only trusted a record).
    fresh: bool = False
    #: True when this run could not read it (no read permission for the BAR job's uid).
    unreadable: bool = False


def recorded(b: Backup) -> dict | None:
    """The read-back dvdoctor recorded in the backup's manifest when it took it, if it says good."""
    record = (b.manifest or {}).get(RECORD_KEY)
    if isinstance(record, dict) and record.get("result") == GOOD and isinstance(record.get("stamp"), str):
        return record
    return None


def judge(b: Backup, names: DvNames, writing: bool = False) -> Verdict:
    """The rule, for one backup folder."""
    if writing:
        return Verdict(IN_PROGRESS, "DV's backup job is writing it")
    if b.files.get(names.combined_tarball) is None:
        kind = b.not_files.get(names.combined_tarball)
        if kind:  # something else of its name: DV's job writes a file there, so no job of DV's made this
            what = {"dir": "a folder", "link": "a symbolic link"}.get(kind, "not a regular file (a fifo or a device)")
            return Verdict(DAMAGED, f"its {names.combined_tarball} is {what}, not the file DV's job writes")
        return Verdict(DAMAGED, f"it has no {names.combined_tarball} (its job did not finish)")
    if b.files[names.combined_tarball] <= 0:
        return Verdict(DAMAGED, f"its {names.combined_tarball} is empty (0 bytes)")
    got = b.read_back or {}
    state = got.get("state")
    if state == DAMAGED:
        return Verdict(DAMAGED, str(got.get("message") or "it does not read back"), str(got.get("sha256") or ""), True)
    if state == GOOD:
        return Verdict(GOOD, "read back now, inner tarballs included", str(got.get("sha256") or ""), True)
    if state == UNREADABLE:
        return Verdict(UNVERIFIED, str(got.get("message") or "not readable"), unreadable=True)
    record = recorded(b)
    if record is not None and b.stamp and record["stamp"] == b.stamp:
        return Verdict(GOOD, f"read back when dvdoctor took it ({record.get('at') or 'time not recorded'}), "
                             "unchanged since", str(record.get("sha256") or ""))
    if record is not None:
        return Verdict(UNVERIFIED, f"its {names.combined_tarball} changed since dvdoctor read it back "
                                   f"(size:mtime {record['stamp']} then, {b.stamp or 'unknown'} now)")
    return Verdict(UNVERIFIED, str(got.get("message") or "not read back in this run, and no read-back recorded"))


def record(b: Backup, verdict: Verdict, names: DvNames, when: datetime) -> dict:
    """What the manifest keeps of a good read-back: later runs trust it while the stamp still matches."""
    return {"result": GOOD, "stamp": b.stamp, "sha256": verdict.sha256,
            "at": when.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "tarball": names.combined_tarball, "components": list(names.component_tarballs)}


@dataclass
class Survey:
    """The backup volume as the rule sees it: backups (oldest first) with their verdicts, the restore
    point, the folder being written, and what is on the volume that is no backup."""

    backups: list[Backup]
    verdicts: dict[str, Verdict]
    link_ts: str | None
    #: Folders DV's active backup job is writing: in progress.
    writing: set[str]
    odd: list[OddEntry] = field(default_factory=list)
    #: Folders never to delete while that job runs (bar_jobs.folders_being_written: the newest too).
    protect: set[str] = field(default_factory=set)

    def state(self, ts: str | None) -> str | None:
        v = self.verdicts.get(ts or "")
        return v.state if v else None

    def get(self, ts: str | None) -> Backup | None:
        return next((b for b in self.backups if b.timestamp == ts), None)

    def good(self) -> list[Backup]:
        return [b for b in self.backups if self.verdicts[b.timestamp].state == GOOD]

    def read_back_good(self) -> list[Backup]:
        """Good backups this run read back (not only on a record): what a removal may rely on to remain."""
        return [b for b in self.good() if self.verdicts[b.timestamp].fresh]

    def newest_good(self) -> Backup | None:
        good = self.good()
        return good[-1] if good else None

    def with_state(self, state: str) -> list[Backup]:
        return [b for b in self.backups if self.verdicts[b.timestamp].state == state]


def in_progress(facts: Facts, items: list[Backup], link_ts: str | None) -> set[str]:
    """While DV's backup job runs, the folders it wrote (dvdoctor/facts/bar_jobs.py: newer than the newest one
    when it started, or named at or after its start); never the restore point's, which the job moves
    the link to last, when the backup is whole."""
    job = bar_jobs.backup_at_work(facts.objects("jobs"), facts.objects("pods"), facts.names)
    if job is None:
        return set()
    return set(bar_jobs.folders_of_job(items, job, link_ts, bar_jobs.PROTECT_SLACK))


def survey(facts: Facts, bar: dict | None = None) -> Survey:
    """Judge every backup on the volume (facts.bar unless another inspection is given)."""
    bar = facts.bar if bar is None else bar
    names = facts.names
    found = backups(bar, names)
    items = not_future(found, facts.now)
    future = [b for b in found if b not in items]
    odd = odd_entries(bar, names) + [
        OddEntry(b.timestamp, "dir", f"dated in the future ({(b.time - facts.now).total_seconds() / 3600:.1f} h "
                                     "ahead of now): not a backup DV took, and never counted as the newest")
        for b in future]
    link_ts = link_timestamp(bar, names)
    writing = in_progress(facts, items, link_ts)
    verdicts = {b.timestamp: judge(b, names, b.timestamp in writing) for b in items}
    return Survey(items, verdicts, link_ts, writing, odd, bar_jobs.folders_being_written(facts, items))


def good_backups(facts: Facts) -> list[Backup]:
    """Backups that may be copied off the volume: good by this rule (read back, inner tarballs
    included, now or when dvdoctor took it). A copy must be as trustworthy as the backup it is
    made from, so only good ones go; `copy` and `no-recent-copy`'s repair both ask here."""
    facts.require(SECTION_BAR)
    return survey(facts).good()
