"""DV's backup or restore job failed, or its pod keeps failing.

Symptom: `oc get jobs` shows dv-backup-job or dv-restore-job with condition `Failed` (for example
`BackoffLimitExceeded`), or its pod restarts or crash-loops; dvcli.sh does not notice a Failed job
and waits its whole hour. A job that completed is not failing, even when a pod of it failed before
a retry succeeded. The pod's log names the cause, e.g. the runbook's
`Operation failed: [Errno 13] Permission denied: '/mnt/PV/bar/2021-01-14-19-20-07'`.
Cause: whatever the log says. Known lines point at the check for the real cause (one table,
dvdoctor/facts/signatures.py): `[Errno 13] Permission denied` -> bar-permissions, `No space left on
device` -> bar-low-space, tar's `file changed as we read it` -> side-deployments-running, an empty
image or `extra characters at the end of d command` -> init-volume-pod-missing.
Repair: as the runbook's workaround starts: delete the failed job with its pods and remove the
`.bar` marker it left, so DV can come back (`dvdoctor fix --issue bar-job-failed`); then repair the
cause named here before running the backup or restore again.
"""

from dvdoctor.cluster import k8s
from dvdoctor.facts.model import Facts
from dvdoctor.verdicts.registry import Problem, check
from dvdoctor.facts.signatures import match_log


def failing_pods(facts: Facts, job: str) -> list[dict]:
    """Pods of the job that failed, restarted or wait in CrashLoopBackOff."""
    return [p for p in facts.pods_of_job(job)
            if k8s.pod_phase(p) == "Failed" or k8s.restarts(p) > 0 or "CrashLoopBackOff" in k8s.waiting_reasons(p)]


@check(
    "DV's backup and restore jobs are not failing",
    tags=["runbook", "jobs", "logs"],
)
def run(facts: Facts):
    for name in (facts.names.backup_job, facts.names.restore_job):
        job = facts.get("jobs", name)
        if job is None:
            continue
        failure = k8s.job_failure(job)
        if failure is None and k8s.job_state(job) == "complete":
            continue  # it succeeded: a pod that failed before was a retry it outlived
        bad = failing_pods(facts, name)
        if failure is None and not bad:
            continue
        evidence = [f"job/{name}: " + (f"condition Failed, {failure}" if failure else f"{k8s.job_state(job)}, its pods fail")]
        causes: list[str] = []
        for pod in bad or facts.pods_of_job(name):
            pod_name = k8s.name(pod)
            reasons = ", ".join(k8s.waiting_reasons(pod))
            evidence.append(f"pod/{pod_name}: phase {k8s.pod_phase(pod)}, {k8s.restarts(pod)} restarts"
                            + (f", waiting: {reasons}" if reasons else ""))
            log = facts.log(pod_name)
            if log is None:
                evidence.append(f"log of {pod_name}: not collected")
                continue
            matches = match_log(log)
            for m in matches:
                evidence.append(f"log of {pod_name}: {m.line}")
                if m.check not in causes:
                    causes.append(m.check)
            if not matches:
                last = next((ln.strip() for ln in reversed(log.splitlines()) if ln.strip()), "(empty)")
                evidence.append(f"log of {pod_name}, last line (no known signature): {last}")
        cause = f"; root cause: {', '.join(causes)} (see `dvdoctor explain {causes[0]}`)" if causes else ""
        yield Problem(f"job {name} {'failed' if failure else 'keeps failing'}{cause}", tuple(evidence), f"job/{name}",
                      data={"job": name})
