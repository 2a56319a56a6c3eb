"""Stop a DV backup job that runs with nobody attached, as an interrupted `dvdoctor backup` stops it.

Deletes the job with its pods (background propagation) and waits until they have ended; only
then removes the partial backup folder it was writing (never the restore point's folder) and the
`.bar` marker, and scales dv-caching, dv-api and dv-unified-console back to the replicas dvdoctor
recorded. A restore job is never stopped: half-way it leaves DV's data half-replaced, so the plan
says to wait for it. This is the one repair that may act while a DV BAR job runs.
Changes: deletes the job and its pods; removes the job's partial folder from dv-bar-pvc and
/mnt/marker_files/.bar; spec.replicas of the side deployments.
"""

from typing import Sequence

from dvdoctor.facts.model import Facts
from dvdoctor.repair.fixer import FixOptions, fix
from dvdoctor.repair.owner import STOP_FIX, stop_backup_plan
from dvdoctor.repair.plan import Plan
from dvdoctor.verdicts.registry import Problem


@fix
def plan(facts: Facts, problems: Sequence[Problem], options: FixOptions) -> Plan:
    out = Plan()
    for problem in problems:  # each a DV job the check found running with nobody attached
        job = problem.data["job"]
        if job.name == facts.names.backup_job:
            stop = stop_backup_plan(facts, job, STOP_FIX)
            out.actions += stop.actions
            out.notes += stop.notes
        else:
            out.notes.append(f"job {job.name} {job.running_for(facts.now)}: a restore is never stopped half-way "
                             "(DV's data would be half-replaced); wait for it to end, then run `dvdoctor check`")
    return out
