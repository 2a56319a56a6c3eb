"""A restore of DV failed part-way: DV's data is partly replaced by a backup's.

Symptom: DV misbehaves after a restore that stopped with an error: some of its data is the
backup's and some is what was there before (DV's restore job empties DV's volumes, then untars
the backup's component tarballs over them one by one).
Cause: DV's restore job failed after it began replacing the data: a volume that filled, files it
could not write, a pod that was killed, or dvdoctor giving up on a job stuck past `--timeout`.
dvdoctor records each such failure on the dv-engine StatefulSet (annotation
`dvdoctor.io/restore-incomplete`: when, which backup, why); a failed `dv-restore-job` that dvcli.sh
ran counts too, and so does its pod that failed after the Job object was deleted (the repair that
deletes such a job or pod, `bar-job-failed` or `leftover-bar-pods`, writes the record first). The
record stays until a restore succeeds, whoever looks and from wherever.
Repair: restore again, after repairing the cause the record names: `dvdoctor restore --from TS`
with the same backup, or, if that one fails the same way again, the previous good backup
(`dvdoctor list` shows them). The restore that succeeds removes the record. There is no automatic
repair: which backup DV should hold is the administrator's choice.
"""

from dvdoctor.cluster import k8s
from dvdoctor.facts.model import Facts
from dvdoctor.core.units import parse_time
from dvdoctor.core.names import RESTORE_INCOMPLETE_ANNOTATION
from dvdoctor.facts.origin import engine_statefulset
from dvdoctor.verdicts.registry import Problem, check
from dvdoctor.facts.restore_record import backup_of_job, failed_restore_pod, pod_failure, recorded


@check(
    "No restore of DV has failed part-way since the last one that succeeded",
    tags=["restore", "data"],
)
def run(facts: Facts):
    names = facts.names
    sts = engine_statefulset(facts)
    job = facts.get("jobs", names.restore_job)
    state = k8s.job_state(job) if job else None
    record = recorded(facts)
    if record is not None:
        failed_at = parse_time(record.when) if record.when[:4].isdigit() else None
        done_at = parse_time(k8s.job_finished_at(job)) if job is not None and state == "complete" else None
        if failed_at is not None and done_at is not None and done_at > failed_at:
            return  # a restore (dvcli.sh's, say) succeeded since: DV's data is whole again
        yield Problem(
            f"the restore of backup {record.backup} failed part-way at {record.when}: DV's data is partly replaced",
            (f"statefulset/{sts}: annotation {RESTORE_INCOMPLETE_ANNOTATION}: when {record.when}, backup "
             f"{record.backup}, job {record.job or 'unknown'}", f"why: {record.why}"),
            f"statefulset/{sts}",
        )
    elif (pod := failed_restore_pod(facts)) is not None:
        started = (pod.get("status") or {}).get("startTime") or "an unknown time"
        yield Problem(
            f"pod {k8s.name(pod)} of job {names.restore_job} failed after its Job object was deleted: DV's data "
            f"may be partly replaced by backup {backup_of_job(pod, names)}",
            (f"pod/{k8s.name(pod)}: phase Failed ({pod_failure(pod)}), started {started}; job/{names.restore_job} "
             "is gone, so nothing else records this restore",),
            f"pod/{k8s.name(pod)}",
        )
    elif job is not None and state == "failed":
        yield Problem(
            f"job {names.restore_job} failed: DV's data may be partly replaced by backup {backup_of_job(job, names)}",
            (f"job/{names.restore_job}: condition Failed, {k8s.job_failure(job)}, ended {k8s.job_finished_at(job) or 'at an unknown time'}",),
            f"job/{names.restore_job}",
        )
