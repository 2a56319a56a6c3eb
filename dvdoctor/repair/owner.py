"""DV's own BAR job owns the namespace while it runs: which job runs, since when, who watches it,
and the one refusal every changing command gives under it.

dvdoctor's lock only says which dvdoctor run is changing the namespace. DV's backup, restore and
list jobs are something else: a backup job runs on when the dvdoctor run that started it is killed
(its lock then expires), and dvcli.sh or a site's schedule starts them with no lock at all. While
one is active, a restore run over it, a backup that deletes it as "finished" or a prune of the
folder it writes each lose data. So backup, restore, prune and every fix that touches the volume,
the markers or the deployments ask here first and refuse, whatever the lock says, naming the job,
its age and what to do. The only repair that may act under such a job is the one that stops it
(`bar-job-unattended`), and it stops it the way an interrupted `dvdoctor backup` does.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..cluster import k8s
from ..facts.backups import Backup, backups, link_timestamp
from ..core.units import human_bytes, parse_time
from ..cluster.port import Cluster
from ..core.errors import DvdoctorError
from ..facts.model import Facts
from ..cluster.lock import LEASE_NAME, Holder
from ..core.names import NEWEST_BEFORE_ANNOTATION, RUN_ANNOTATION, STARTED_BY_ANNOTATION, DvNames
from .plan import Action, BarScript, Plan, Scale, StopJob, recorded_replicas, remove_marker, scale_back_count

#: dvcli.sh polls its job every 30 s for at most 60 minutes, then gives up and leaves it running.
DVCLI_WAIT = timedelta(minutes=60)
#: A backup folder is named by its pod's clock, the job's start by the API server's. Folders named
#: this close before a running job's start are never deleted while it runs...
PROTECT_SLACK = timedelta(seconds=60)
#: ...but only those named at most this much before it count as its own when it is stopped (a job
#: without a recorded newest-before folder: dvcli.sh's).
OWN_SLACK = timedelta(seconds=5)
#: The repair that stops an unattended backup job; the one fix allowed to act while a job runs.
STOP_FIX = "bar-job-unattended"


class BarJobActive(DvdoctorError):
    """A DV BAR job is active: the command changed nothing; the message names the job, its age and what to do."""


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

    @classmethod
    def of(cls, job: dict) -> "BarJob":
        ann = k8s.annotations(job)
        started = (job.get("status") or {}).get("startTime") or job["metadata"].get("creationTimestamp")
        return cls(k8s.name(job), parse_time(started), ann.get(STARTED_BY_ANNOTATION), ann.get(RUN_ANNOTATION),
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


def active_jobs(jobs: list[dict], names: DvNames) -> list[BarJob]:
    """DV's backup, restore and list jobs that have not ended, backup and restore first."""
    order = (names.backup_job, names.restore_job, names.list_job)
    found = {k8s.name(j): j for j in jobs if k8s.name(j) in order and k8s.job_state(j) == "active"}
    return [BarJob.of(found[n]) for n in order if n in found]


def watcher(job: BarJob, lease: dict | None, holder_gone: bool, now: datetime) -> str | None:
    """Who is attached to the job and will clean up after it, or None when nobody is.

    A job dvdoctor started is watched while the run that started it still holds dvdoctor's lock;
    a job of dvcli.sh (or a person) may be watched by dvcli.sh for its 60 minutes of waiting.
    """
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


def describe(job: BarJob, now: datetime, watched_by: str | None) -> str:
    who = (f"started by `{job.started_by or 'dvdoctor'}`" + (f" of {job.run}" if job.run else "")
           if job.by_dvdoctor else "started by dvcli.sh, a schedule or by hand")
    watch = f"watched by {watched_by}" if watched_by else "nobody is watching it"
    return f"job {job.name} {job.running_for(now)} ({who}; {watch})"


def what_to_do(job: BarJob, names: DvNames, watched_by: str | None) -> str:
    if job.name == names.list_job:
        return (f"it is dvcli.sh's list job, which dvcli.sh never removes: delete it with "
                f"`dvdoctor fix --issue leftover-bar-pods`")
    if job.name == names.restore_job:
        return ("wait for it to end (stopping a restore half-way leaves DV's data half-replaced), "
                "then run `dvdoctor check`")
    if watched_by:
        return "wait for it to end"
    return (f"wait for it to end, or stop it cleanly (job, partial backup folder and {names.bar_marker} marker "
            f"removed, the restore point left alone, DV's deployments back) with `dvdoctor fix --issue {STOP_FIX}`")


def _refusal(active: list[BarJob], names: DvNames, namespace: str, command: str, lease: dict | None,
             holder_gone: bool, now: datetime) -> BarJobActive:
    first = active[0]
    watched = watcher(first, lease, holder_gone, now)
    also = "".join(f"; also job {j.name}, which {j.running_for(now)}" for j in active[1:])
    return BarJobActive(f"{describe(first, now, watched)}: DV's own job owns namespace {namespace} while it runs, "
                        f"so `{command}` changed nothing; {what_to_do(first, names, watched)}{also}")


def refuse_while_active(facts: Facts, command: str, ending: frozenset[str] = frozenset()) -> None:
    """Raise BarJobActive when the facts show an active DV BAR job (other than those in `ending`,
    the jobs the command itself stops first)."""
    active = [j for j in active_jobs(facts.objects("jobs"), facts.names) if j.name not in ending]
    if active:
        raise _refusal(active, facts.names, facts.namespace, command, facts.get("leases", LEASE_NAME),
                       facts.data["source"].get("lock_holder_gone") is True, facts.now)


def refuse_while_active_live(cluster: Cluster, names: DvNames, command: str,
                             ending: frozenset[str] = frozenset()) -> None:
    """As refuse_while_active, asking the cluster now: just before a change, or before taking over a lock."""
    active = [j for j in active_jobs(cluster.list("jobs"), names) if j.name not in ending]
    if active:
        lease = cluster.get("leases", LEASE_NAME)
        gone = lease is not None and Holder.of(lease).gone_here(socket.gethostname())
        raise _refusal(active, names, cluster.namespace, command, lease, gone, datetime.now(timezone.utc))


def unattended(facts: Facts) -> list[BarJob]:
    """Backup and restore jobs that run with nobody attached (the list job is leftover-bar-pods' business).

    When dvdoctor's lock could not be read (no right to list Leases), a job dvdoctor started counts
    as attended: nobody may stop a job whose run may still be watching it.
    """
    lease = facts.get("leases", LEASE_NAME)
    gone = facts.data["source"].get("lock_holder_gone") is True
    return [j for j in active_jobs(facts.objects("jobs"), facts.names)
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
    """Folders an active backup job may be writing: never to be deleted while it runs."""
    job = facts.get("jobs", facts.names.backup_job)
    if job is None or k8s.job_state(job) != "active":
        return set()
    written = set(folders_of_job(items, BarJob.of(job), None, PROTECT_SLACK))
    return written | ({items[-1].timestamp} if items else set())


def cleanup_after_stop(facts: Facts, job: BarJob, plan: Plan) -> None:
    """What a stopped backup job leaves, removed: its partial folders and the `.bar` marker.

    The restore point is never touched (folders_of_job leaves its folder out, and bar-fix.sh
    refuses to remove the link's target). Call with facts gathered after the job's pods ended, or
    accept that a folder the job creates after them is left for `incomplete-backups`.
    """
    names = facts.names
    if facts.bar is None:
        plan.notes.append(f"the backup volume could not be inspected ({facts.skipped('bar_volume')}): a partial "
                          "folder, if any, is left for `dvdoctor fix --issue incomplete-backups`")
    else:
        items = backups(facts.bar, names)
        link_ts = link_timestamp(facts.bar, names)
        partial = folders_of_job(items, job, link_ts)
        if partial:
            size = sum(b.size() for b in items if b.timestamp in partial)
            plan.actions.append(BarScript(("remove", *partial), f"delete the partial backup folder "
                                          f"{', '.join(partial)} ({human_bytes(size)}) the stopped job was writing"))
        plan.notes.append(f"the restore point stays where it was: {names.symlink} -> "
                          f"{(facts.bar.get('link') or {}).get('target') or 'nothing'}")
    if facts.engine is not None:
        plan.actions.append(remove_marker(facts, names.bar_marker, "the stopped job left, so DV can start again"))
    else:
        plan.notes.append(f"cannot look inside {names.engine_pod}: remove {names.marker_dir}/{names.bar_marker} "
                          "when it runs (`dvdoctor fix --issue stale-bar-marker`)")


def scale_back_actions(facts: Facts) -> list[Action]:
    """The side deployments dvdoctor scaled to 0, back to the counts it recorded (a recorded 0: 1, as
    side-deployments-left-down does; those a person scaled down are that check's, judged once no job runs)."""
    out: list[Action] = []
    for name in facts.names.side_deployments:
        dep = facts.get("deployments", name)
        if dep is not None and k8s.spec_replicas(dep) == 0 and recorded_replicas(dep) is not None:
            out.append(Scale(name, scale_back_count(dep)))
    return out


def stop_backup_plan(facts: Facts, job: BarJob, fix_id: str) -> Plan:
    """Stop an unattended backup job as an interrupted `dvdoctor backup` does: delete it with its pods
    and wait for them, remove its partial folder and the marker, then bring the side deployments back."""
    plan = Plan(fix_id, [StopJob(job.name, f"delete job {job.name} (it {job.running_for(facts.now)}) with its pods, "
                                           "and wait until they have ended")])
    cleanup_after_stop(facts, job, plan)
    plan.actions += scale_back_actions(facts)
    return plan
