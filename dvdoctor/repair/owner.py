"""DV's own BAR job owns the namespace while it runs: which job runs, since when, who watches it,
and the one refusal every changing command gives under it.

dvdoctor's lock only says which dvdoctor run is changing the namespace. DV's backup, restore and
list jobs are something else: a backup job runs on when the dvdoctor run that started it is killed
(its lock then expires), and dvcli.sh or a site's schedule starts them with no lock at all. While
one is active, a restore run over it, a backup that deletes it as "finished" or a prune of the
folder it writes each lose data. So backup, restore, prune and every fix that touches the volume,
the markers or the deployments ask here first and refuse, whatever the lock says, naming the job,
its age and what to do. The repairs that may act under such a job act on the job itself: the one
that stops it (`bar-job-unattended`), the way an interrupted `dvdoctor backup` does, and the one that
deletes dvcli.sh's list job (`leftover-bar-pods`, never an active backup or restore job).
"""

from __future__ import annotations

import socket
from datetime import datetime, timezone

from ..cluster import k8s
from ..cluster.lock import LEASE_NAME, Holder
from ..cluster.port import Cluster
from ..core.errors import DvdoctorError
from ..core.names import DvNames
from ..core.units import human_bytes
from ..facts.backups import backups, link_timestamp, not_future
from ..facts.bar_jobs import BarJob, active_jobs, folders_of_job, watcher
from ..facts.model import Facts
from .plan import Action, BarScript, Plan, Scale, StopJob, remove_marker, scale_back_count

#: The repair that stops an unattended backup job; the one fix allowed to act while a job runs.
STOP_FIX = "bar-job-unattended"


class BarJobActive(DvdoctorError):
    """A DV BAR job is active: the command changed nothing; the message names the job, its age and what to do."""


def describe(job: BarJob, now: datetime, watched_by: str | None) -> str:
    if job.pod:
        return f"pod {job.pod} of job {job.name}, whose Job object was deleted, {job.running_for(now)}"
    who = (f"started by `{job.started_by or 'dvdoctor'}`" + (f" of {job.run}" if job.run else "")
           if job.by_dvdoctor else "started by dvcli.sh, a schedule or by hand")
    watch = f"watched by {watched_by}" if watched_by else "nobody is watching it"
    return f"job {job.name} {job.running_for(now)} ({who}; {watch})"


#: Repairs that may act while a DV BAR job runs: the one that stops an unattended backup job, and
#: the one that deletes leftover jobs (dvcli.sh's list job; never an active backup or restore job).
#: Every other repair refuses under a job, scaling the side deployments down included: a backup
#: whose tar has read DV's files beside running writers is not made whole by stopping them half-way,
#: and DV's job owns the namespace while it runs (break-it review, L3).
UNDER_BAR_JOB = ("bar-job-unattended", "leftover-bar-pods")


def fix_waits_for(facts: Facts, fix_id: str) -> str | None:
    """Why this repair cannot act now, as a report says it in place of a command that would only be
    refused ("none while job X runs: what to do", in the refusal's own words), or None when it may act.
    The two repairs that act on DV's job itself are refused too by a restore job: stopping a restore
    half-way leaves DV's data half-replaced, so bar-job-unattended never does it."""
    active = active_jobs(facts.objects("jobs"), facts.names, facts.objects("pods"))
    if fix_id in UNDER_BAR_JOB:
        active = [j for j in active if fix_id == STOP_FIX and j.name == facts.names.restore_job]
    if not active:
        return None
    job = active[0]
    watched = watcher(job, facts.get("leases", LEASE_NAME), facts.data["source"].get("lock_holder_gone") is True,
                      facts.now)
    return (f"none while job {job.name} runs (dvdoctor changes nothing under DV's job): "
            f"{what_to_do(job, facts.names, watched)}")


def what_to_do(job: BarJob, names: DvNames, watched_by: str | None) -> str:
    if job.pod and job.name == names.restore_job:
        return ("wait for it to end (deleting it half-way leaves DV's data half-replaced), then remove it with "
                "`dvdoctor fix --issue leftover-bar-pods`")
    if job.name == names.list_job:
        return ("it is dvcli.sh's list job, which dvcli.sh never removes: delete it with "
                "`dvdoctor fix --issue leftover-bar-pods`")
    if job.name == names.restore_job:
        return ("wait for it to end (stopping a restore half-way leaves DV's data half-replaced), "
                "then run `dvdoctor check`")
    if watched_by:
        return "wait for it to end"
    what = "pod" if job.pod else "job"
    return (f"wait for it to end, or stop it cleanly ({what}, partial backup folder and {names.bar_marker} marker "
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
    active = [j for j in active_jobs(facts.objects("jobs"), facts.names, facts.objects("pods")) if j.name not in ending]
    if active:
        raise _refusal(active, facts.names, facts.namespace, command, facts.get("leases", LEASE_NAME),
                       facts.data["source"].get("lock_holder_gone") is True, facts.now)


def refuse_while_active_live(cluster: Cluster, names: DvNames, command: str,
                             ending: frozenset[str] = frozenset()) -> None:
    """As refuse_while_active, asking the cluster now: just before a change, or before taking over a lock."""
    active = [j for j in active_jobs(cluster.list("jobs"), names, cluster.list("pods")) if j.name not in ending]
    if active:
        lease = cluster.get("leases", LEASE_NAME)
        gone = lease is not None and Holder.of(lease).gone_here(socket.gethostname())
        raise _refusal(active, names, cluster.namespace, command, lease, gone, datetime.now(timezone.utc))


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
        items = not_future(backups(facts.bar, names), facts.now)  # a future-dated folder is no job's
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
        if dep is not None and k8s.spec_replicas(dep) == 0 and k8s.recorded_replicas(dep) is not None:
            out.append(Scale(name, scale_back_count(dep)))
    return out


def stop_backup_plan(facts: Facts, job: BarJob, fix_id: str) -> Plan:
    """Stop an unattended backup job as an interrupted `dvdoctor backup` does: delete it with its pods
    and wait for them, remove its partial folder and the marker, then bring the side deployments back."""
    if job.pod:  # its Job object deleted, its pod's tar runs on: the pod is what stops
        stop = StopJob(job.name, f"delete pod {job.pod} of job {job.name}, whose Job object was deleted (it "
                                 f"{job.running_for(facts.now)}), and wait until it has ended", pod=job.pod,
                       uid=k8s.uid(facts.get("pods", job.pod)))
    else:
        stop = StopJob(job.name, f"delete job {job.name} (it {job.running_for(facts.now)}) with its pods, "
                                 "and wait until they have ended", uid=k8s.uid(facts.get("jobs", job.name)))
    plan = Plan(fix_id, [stop])
    cleanup_after_stop(facts, job, plan)
    plan.actions += scale_back_actions(facts)
    return plan
