"""Clear away a failed DV backup or restore job, as the runbook's workaround does, and name the real cause.

Deletes exactly the jobs `bar-job-failed` reports, with their pods (background propagation, so no
pod is orphaned), removes the `.bar` marker they left so DV can start again, and points at the
check their log matched (for example `bar-permissions` for `[Errno 13] Permission denied`): that
repair is what makes the next run work.
A failed dv-restore-job is first recorded on the dv-engine StatefulSet (`restore-incomplete`):
DV's data may be partly replaced, and deleting the job must not delete that evidence.
Changes: deletes the job and its pods; removes /mnt/marker_files/.bar if present; for a restore
job, the annotation dvdoctor.io/restore-incomplete on the dv-engine StatefulSet.
"""

from typing import Sequence

from dvdoctor.cluster import k8s
from dvdoctor.facts.model import Facts
from dvdoctor.repair.fixer import FixOptions, fix
from dvdoctor.repair.plan import Delete, Plan, remove_marker
from dvdoctor.verdicts.registry import Problem
from dvdoctor.facts.restore_record import failed_job_record, recorded
from dvdoctor.repair.restore_record import record_action
from dvdoctor.facts.signatures import match_log


@fix
def plan(facts: Facts, problems: Sequence[Problem], options: FixOptions) -> Plan:
    out = Plan()
    names = facts.names
    for problem in problems:  # each a DV BAR job the check found failing
        name = problem.data["job"]
        job = facts.get("jobs", name)
        if name == names.restore_job and job is not None and recorded(facts) is None:
            # the failed job is the only evidence that DV's data is partly replaced: keep it as a record
            out.actions.append(record_action(facts, failed_job_record(job, facts)))
        out.actions.append(Delete("jobs", name, f"delete the failing job {name} and its pods"))
        for pod in facts.pods_of_job(name):
            for m in match_log(facts.log(k8s.name(pod)) or ""):
                hint = f"dvdoctor fix --issue {m.fix}" if m.fix else f"dvdoctor explain {m.check}"
                note = f"{name} failed because {m.cause} ({m.line!r}); repair the cause with: {hint}"
                if note not in out.notes:
                    out.notes.append(note)
    if out.actions and facts.marker(names.bar_marker):
        out.actions.append(remove_marker(facts, names.bar_marker, "left by the failed job"))
    return out
