"""Clear away a failed DV backup or restore job, as the runbook's workaround does, and name the real cause.

Deletes the failed job with its pods (background propagation, so no pod is orphaned), removes the
`.bar` marker it left so DV can start again, and points at the check its log matched (for example
`bar-permissions` for `[Errno 13] Permission denied`): that repair is what makes the next run work.
Changes: deletes the job and its pods; removes /mnt/marker_files/.bar if present.
"""

from dvdoctor import k8s
from dvdoctor.facts import Facts
from dvdoctor.fixer import FixOptions, fix
from dvdoctor.plan import Delete, EngineScript, Plan
from dvdoctor.signatures import match_log


def failed_bar_jobs(facts: Facts) -> list[dict]:
    """DV's backup/restore jobs that failed, or whose pods failed with a known signature."""
    out = []
    for name in (facts.names.backup_job, facts.names.restore_job):
        job = facts.get("jobs", name)
        if job is None:
            continue
        pods = facts.pods_of_job(name)
        crashed = any(match_log(facts.log(k8s.name(p)) or "") for p in pods if k8s.pod_phase(p) == "Failed" or k8s.restarts(p))
        if k8s.job_state(job) == "failed" or crashed:
            out.append(job)
    return out


@fix("bar-job-failed")
def plan(facts: Facts, options: FixOptions) -> Plan:
    out = Plan("bar-job-failed")
    names = facts.names
    for job in failed_bar_jobs(facts):
        name = k8s.name(job)
        out.actions.append(Delete("jobs", name, f"delete the failed job {name} and its pods"))
        for pod in facts.pods_of_job(name):
            for m in match_log(facts.log(k8s.name(pod)) or ""):
                hint = f"dvdoctor fix --issue {m.fix}" if m.fix else f"dvdoctor explain {m.check}"
                note = f"{name} failed because {m.cause} ({m.line!r}); repair the cause with: {hint}"
                if note not in out.notes:
                    out.notes.append(note)
    if out.actions and any(m["name"] == names.bar_marker for m in (facts.engine or {}).get("markers", [])):
        out.actions.append(EngineScript(("remove-marker", names.marker_dir, names.bar_marker),
                                        f"remove {names.marker_dir}/{names.bar_marker} left by the failed job"))
    return out
