"""DV's own BAR jobs as the facts show them: which are active, since when, who started and who
watches them, and the backup folders a backup job writes.

Reading only: the trust rule (a folder being written is neither good nor removable) and the
`bar-job-unattended` check need this as much as the refusal in dvdoctor/repair/owner.py does, so it
sits with the facts, below both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

from ..cluster import k8s
from ..cluster.lock import LEASE_NAME, Holder
from ..core.names import NEWEST_BEFORE_ANNOTATION, RUN_ANNOTATION, STARTED_BY_ANNOTATION, DvNames
from ..core.units import parse_time
from .backups import Backup
from .model import Facts, pods_at_work

#: dvcli.sh polls its job every 30 s for at most 60 minutes, then gives up and leaves it running.
DVCLI_WAIT = timedelta(minutes=60)
#: A backup folder is named by its pod's clock, the job's start by the API server's. Folders named
#: this close before a running job's start are never deleted while it runs...
PROTECT_SLACK = timedelta(seconds=60)
#: ...but only those named at most this much before it count as its own when it is stopped (a job
#: without a recorded newest-before folder: dvcli.sh's).
OWN_SLACK = timedelta(seconds=5)

@dataclass(frozen=True)
class BarJob:
    """One active DV BAR job, as its object tells: since when, and who started it."""

    name: str
    started: datetime | None
    #: The dvdoctor command that started it (annotation), None for dvcli.sh's or a person's job.
    started_by: str | None
    #: user@host:pid of the dvdoctor run that started it, when recorded.
    run: str | None
    #: The newest backup folder on the volume when dvdoctor started it ("" for none), when recorded:
    #: every folder after it is this job's.
    newest_before: str | None = None
    #: A pod of the job still at work after its Job object was deleted (`--cascade=orphan`): its
    #: tar runs on, so it owns the namespace as the job did.
    pod: str | None = None

    @classmethod
    def of(cls, job: dict) -> "BarJob":
        ann = k8s.annotations(job)
        return cls(k8s.name(job), parse_time(k8s.started_at(job)), ann.get(STARTED_BY_ANNOTATION), ann.get(RUN_ANNOTATION),
                   ann.get(NEWEST_BEFORE_ANNOTATION))

    @property
    def by_dvdoctor(self) -> bool:
        return self.started_by is not None or self.run is not None

    def age(self, now: datetime) -> timedelta | None:
        return now - self.started if self.started else None

    def running_for(self, now: datetime) -> str:
        """`has been running for 12 min`: the job's age, in the words every message uses."""
        age = self.age(now)
        if age is None:
            return "has been running for an unknown time"
        minutes = max(0, int(age.total_seconds() // 60))
        return ("has been running for under a minute" if minutes < 1 else
                f"has been running for {minutes} min" if minutes < 120 else
                f"has been running for {minutes / 60:.1f} h")


def active_jobs(jobs: list[dict], names: DvNames, pods: Iterable[dict] = ()) -> list[BarJob]:
    """DV's backup, restore and list jobs that have not ended, backup and restore first; then a backup's
    or a restore's pod still at work without its Job object (given `pods`; see pod_at_work): a tar at
    work all the same. dvcli.sh's list job's orphan pod only reads: leftover-bar-pods' business."""
    order = (names.backup_job, names.restore_job, names.list_job)
    found = {k8s.name(j): j for j in jobs if k8s.name(j) in order and k8s.job_state(j) == "active"}
    out = [BarJob.of(found[n]) for n in order if n in found]
    for job, pod in pods_at_work(jobs, pods, names).items():
        if job not in found:
            out.append(BarJob(job, parse_time(k8s.started_at(pod)), None, None, pod=k8s.name(pod)))
    return out


def backup_at_work(jobs: list[dict], pods: Iterable[dict], names: DvNames) -> BarJob | None:
    """DV's backup job while it runs, or its pod still at work without its Job object: either way a
    tar is writing a backup folder, which is neither damaged nor removable until it ends."""
    return next((j for j in active_jobs(jobs, names, pods) if j.name == names.backup_job), None)


def watcher(job: BarJob, lease: dict | None, holder_gone: bool, now: datetime) -> str | None:
    """Who is attached to the job and will clean up after it, or None when nobody is.

    A job dvdoctor started is watched while the run that started it still holds dvdoctor's lock;
    a job of dvcli.sh (or a person) may be watched by dvcli.sh for its 60 minutes of waiting. A pod
    at work after its Job object was deleted is watched by nobody: both follow the Job.
    """
    if job.pod:
        return None
    if job.by_dvdoctor:
        if lease is None:
            return None
        holder = Holder.of(lease)
        if holder_gone or holder.expired(now) or (job.run is not None and holder.identity != job.run):
            return None
        return f"dvdoctor run {holder.identity} (`{holder.command}`)"
    age = job.age(now)
    if age is None or age < DVCLI_WAIT:
        return "dvcli.sh, if it started it (it waits up to 60 minutes for its job)"
    return None


def unattended(facts: Facts) -> list[BarJob]:
    """Backup and restore jobs that run with nobody attached (the list job is leftover-bar-pods' business),
    and their pods at work after the Job object was deleted (nobody follows a pod without its Job).

    When dvdoctor's lock could not be read (no right to list Leases), a job dvdoctor started counts
    as attended: nobody may stop a job whose run may still be watching it.
    """
    lease = facts.get("leases", LEASE_NAME)
    gone = facts.data["source"].get("lock_holder_gone") is True
    return [j for j in active_jobs(facts.objects("jobs"), facts.names, facts.objects("pods"))
            if j.name != facts.names.list_job and not (j.by_dvdoctor and not facts.has_kind("leases"))
            and watcher(j, lease, gone, facts.now) is None]


def folders_of_job(items: list[Backup], job: BarJob | None, link_ts: str | None,
                   slack: timedelta = OWN_SLACK) -> list[str]:
    """The backup folders a backup job wrote: those newer than the newest one that existed when
    dvdoctor started it (recorded on the job), else those named at or after its start.

    Never the restore point's folder: a job stopped just after it moved the symlink has finished
    its backup, and that folder is then DV's restore point.
    """
    if job is not None and job.newest_before is not None:
        return [b.timestamp for b in items if b.timestamp > job.newest_before and b.timestamp != link_ts]
    if job is None or job.started is None:
        return [items[-1].timestamp] if items and items[-1].timestamp != link_ts else []
    since = (job.started - slack).replace(microsecond=0)
    return [b.timestamp for b in items if b.time >= since and b.timestamp != link_ts]


def folders_being_written(facts: Facts, items: list[Backup]) -> set[str]:
    """Folders an active backup job (or its pod at work without it) may be writing: never to be
    deleted while it runs."""
    job = backup_at_work(facts.objects("jobs"), facts.objects("pods"), facts.names)
    if job is None:
        return set()
    written = set(folders_of_job(items, job, None, PROTECT_SLACK))
    return written | ({items[-1].timestamp} if items else set())
