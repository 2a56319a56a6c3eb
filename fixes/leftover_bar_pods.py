"""Delete the BAR jobs and pods that `leftover-bar-pods` names, with their pods.

Exactly the objects the check reports, nothing else: dvcli.sh's dv-list-backups-job, the runbook's
dv-test-job, backup/restore jobs that ended over an hour ago, dvdoctor's own finished jobs, and
pods whose job is gone. Never an active backup or restore job (the check never names one).
Changes: deletes those jobs (background propagation: their pods go too), waiting (up to a minute
each) until the garbage collector has removed a job's pods, which it does a moment after the job;
and the pods.
"""

from typing import Sequence

from dvdoctor.facts.model import Facts
from dvdoctor.repair.fixer import FixOptions, fix
from dvdoctor.repair.plan import Delete, Plan, StopJob
from dvdoctor.verdicts.registry import Problem

KINDS = {"job": "jobs", "pod": "pods"}


@fix
def plan(facts: Facts, problems: Sequence[Problem], options: FixOptions) -> Plan:
    out = Plan()
    for problem in problems:  # what is left over and why, as the check found it
        kind, name = problem.data["kind"], problem.data["name"]
        summary = f"delete {kind} {name}: {problem.data['why']}"
        if kind == "job":  # its pods go too (the garbage collector, a moment after): waited for
            out.actions.append(StopJob(name, summary, timeout=60.0))
        elif kind in KINDS:
            out.actions.append(Delete(KINDS[kind], name, summary))
    return out
