"""DV's backup or restore job runs with nobody attached: no dvdoctor run and no dvcli.sh waits for it.

Symptom: `oc get jobs` shows dv-backup-job or dv-restore-job active while no dvdoctor runs; DV is
offline, dv-caching, dv-api and dv-unified-console stay at 0, and `dvdoctor backup`, `restore`,
`prune` and `fix` refuse, naming the job.
Cause: the dvdoctor run that started the job was killed (kill -9, a closed cloud shell, a lost
CronJob pod): DV's job runs on by itself, and nobody will remove what it leaves or scale the
side deployments back. Or dvcli.sh, which waits at most 60 minutes for its job, gave up while the
job ran on. A job dvdoctor started is attached while the run named in its `dvdoctor.io/run`
annotation holds dvdoctor's lock; one without that annotation (dvcli.sh's, a schedule's, a
person's) is reported once it has run longer than dvcli.sh waits. A backup or restore pod still at
work after its Job object was deleted (`oc delete job --cascade=orphan`, or a newer Job of the
name) is attached to nobody: both follow the Job.
Repair: for a backup job, `dvdoctor fix --issue bar-job-unattended` stops it as an interrupted
`dvdoctor backup` does: the job is deleted with its pods (or its pod, when the Job is gone) and they
are waited for, then its partial folder and the `.bar` marker are removed, the restore point is
left where it was, and the side deployments go back to the replicas dvdoctor recorded. A restore
job is not stopped (half-way it leaves DV's data half-replaced): wait for it to end, then run
`dvdoctor check` again.
"""

from dvdoctor.cluster import k8s
from dvdoctor.facts.model import Facts
from dvdoctor.cluster.lock import LEASE_NAME, Holder
from dvdoctor.facts.bar_jobs import active_jobs, unattended
from dvdoctor.verdicts.registry import Problem, Skip, check
from dvdoctor.core.units import ISO_Z


@check(
    "No DV backup or restore job runs without a dvdoctor run or dvcli.sh attached",
    tags=["jobs", "interrupted"],
)
def run(facts: Facts):
    if not facts.has_kind("leases") and any(j.by_dvdoctor for j in active_jobs(facts.objects("jobs"), facts.names)):
        raise Skip("Leases could not be listed, so whether the dvdoctor run that started the job still holds "
                   "dvdoctor's lock is unknown")
    lease = facts.get("leases", LEASE_NAME)
    holder = Holder.of(lease) if lease else None
    for job in unattended(facts):
        started = f"{job.started:{ISO_Z}}" if job.started else "an unknown time"
        pods = ", ".join(f"{k8s.name(p)} ({k8s.pod_phase(p)})" for p in facts.pods_of_job(job.name)) or "none"
        evidence = [f"job/{job.name}: active since {started}; its pods: {pods}"]
        if job.pod:
            evidence = [f"pod/{job.pod}: at work since {started}; its job/{job.name} is gone (deleted with its "
                        "pods orphaned, or replaced by a newer Job of the name)"]
            why = "its Job object was deleted, and dvdoctor and dvcli.sh follow the Job, not its pod"
        elif job.by_dvdoctor:
            evidence.append(f"started by `{job.started_by or 'dvdoctor'}` of {job.run or 'an unrecorded run'}; "
                            + (f"lease/{LEASE_NAME}: held by {holder.identity}"
                               + (", a run that is gone" if facts.data["source"].get("lock_holder_gone") is True
                                  or holder.expired(facts.now) else "")
                               if holder else f"lease/{LEASE_NAME}: none (no dvdoctor run holds the namespace)"))
            why = "the dvdoctor run that started it is gone"
        else:
            evidence.append("no dvdoctor.io/run annotation: started by dvcli.sh, a schedule or by hand; "
                            "dvcli.sh stops waiting for its job after 60 minutes")
            why = "it has run longer than dvcli.sh waits for its job"
        marker = facts.marker(facts.names.bar_marker)
        if marker is not None:
            evidence.append(f"{facts.names.engine_pod}:{facts.names.marker_dir}/{facts.names.bar_marker} is there: DV is offline")
        # the job as found, for the repair that stops it (a backup job) or says to wait (a restore job)
        what = f"pod {job.pod} of job {job.name}" if job.pod else f"job {job.name}"
        yield Problem(f"{what} {job.running_for(facts.now)} with nobody attached: {why}",
                      tuple(evidence), f"pod/{job.pod}" if job.pod else f"job/{job.name}", data={"job": job})
