"""Delete the BAR jobs and pods that `leftover-bar-pods` names, with their pods.

Exactly the objects the check reports, nothing else: dvcli.sh's dv-list-backups-job, the runbook's
dv-test-job, backup/restore jobs that ended over an hour ago, dvdoctor's own finished jobs, and
pods whose job is gone. Never an active backup or restore job (the check never names one).
A failed dv-restore-job, or its pod that failed after the Job object was deleted, is first recorded
on the dv-engine StatefulSet (`restore-incomplete`), as bar-job-failed does: it is the only evidence
that DV's data may be partly replaced.
Changes: deletes those jobs (background propagation: their pods go too), waiting (up to a minute
each) until the garbage collector has removed a job's pods, which it does a moment after the job;
and the pods; for a failed restore, the annotation dvdoctor.io/restore-incomplete on the dv-engine
StatefulSet.
"""

from typing import Sequence

from dvdoctor.cluster import k8s
from dvdoctor.facts.model import Facts
from dvdoctor.facts.restore_record import (Incomplete, failed_job_record, failed_pod_record, failed_restore_pod,
                                           recorded)
from dvdoctor.repair.fixer import FixOptions, fix
from dvdoctor.repair.plan import Delete, Plan, StopJob
from dvdoctor.repair.restore_record import record_action
from dvdoctor.verdicts.registry import Problem

KINDS = {"job": "jobs", "pod": "pods"}


def _record_of(facts: Facts, kind: str, name: str) -> Incomplete | None:
    """The record a failed restore's job or job-less pod is the only evidence of, before it is deleted."""
    names = facts.names
    job = facts.get("jobs", name) if kind == "job" and name == names.restore_job else None
    if job is not None and k8s.job_state(job) == "failed":
        return failed_job_record(job, facts)
    pod = failed_restore_pod(facts) if kind == "pod" else None
    return failed_pod_record(pod, facts) if pod is not None and k8s.name(pod) == name else None


@fix
def plan(facts: Facts, problems: Sequence[Problem], options: FixOptions) -> Plan:
    out = Plan()
    # first, and once (the annotation holds one): the record of a failed restore whose evidence goes
    record = None if recorded(facts) is not None else next(
        (r for p in problems if (r := _record_of(facts, p.data["kind"], p.data["name"])) is not None), None)
    if record is not None:
        out.actions.append(record_action(facts, record))
    for problem in problems:  # what is left over and why, as the check found it
        kind, name = problem.data["kind"], problem.data["name"]
        summary = f"delete {kind} {name}: {problem.data['why']}"
        if kind == "job":  # its pods go too (the garbage collector, a moment after): waited for
            out.actions.append(StopJob(name, summary, timeout=60.0, uid=k8s.uid(facts.get("jobs", name))))
        elif kind in KINDS:
            out.actions.append(Delete(KINDS[kind], name, summary))
    return out
