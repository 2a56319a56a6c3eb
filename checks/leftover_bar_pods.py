"""BAR jobs and pods are left over from earlier runs and workarounds.

Symptom: `oc get pods | grep -i dv` lists dv-list-backups-job-xxxxx still Running, a dv-test-job
pod, old completed or failed dv-backup-job / dv-restore-job pods, or dvdoctor's own finished
jobs; they hold the backup volume mounted, use quota, and confuse the next `grep`.
Cause: dvcli.sh's list action starts dv-list-backups-job and never removes it; the runbook's
permission workaround starts dv-test-job by hand (its last step, deleting it, is easy to forget);
dvcli.sh deletes an old dv-backup-job only when the next backup starts; a killed dvdoctor leaves
its short-lived job behind, and before Kubernetes 1.21 (OpenShift 4.5/4.6) no TTL controller
removes it (the next dvdoctor run that starts a short-lived job does).
Before a backup or restore (its gate, `check --for backup|restore`), a running list job is an
error, not a warning: DV's own job owns the namespace while it runs, so the backup would refuse
(dvcli.sh always leaves it, so a scheduled backup would fail every night); `dvdoctor backup --fix`
deletes it first.
When it warns: the list and test jobs always; a finished dv-backup-job or dv-restore-job once it
ended more than an hour ago; a finished object labelled app.kubernetes.io/managed-by=dvdoctor; a
running dvdoctor job whose run is gone (its creator's pid no longer exists on this host) or that is
past its deadline.
Repair: `dvdoctor fix --issue leftover-bar-pods` deletes them with their pods (never an active
backup or restore job, nor a backup's or restore's pod still at work after its Job was deleted:
that pod owns the namespace as its job did, until it ends).
"""

from datetime import timedelta

from dvdoctor.cluster import k8s
from dvdoctor.facts.model import Facts, pod_at_work
from dvdoctor.core.units import parse_time
from dvdoctor.core.names import OWNED_LABEL, OWNED_VALUE
from dvdoctor.verdicts.registry import BACKUP, RESTORE, WARNING, Problem, Run, check

#: A finished backup or restore job younger than this is still someone's evidence to read.
KEEP_FINISHED = timedelta(hours=1)


def _age(facts: Facts, stamp: str | None) -> timedelta | None:
    when = parse_time(stamp)
    return facts.now - when if when else None


def _show(age: timedelta | None) -> str:
    return f"{age.total_seconds() / 3600:.1f} h ago" if age is not None else "at an unknown time"


def _pods(facts: Facts, job: str) -> str:
    pods = facts.pods_of_job(job)
    return ", ".join(f"{k8s.name(p)} ({k8s.pod_phase(p)})" for p in pods) or "none"


def _owned(obj: dict) -> bool:
    return (obj["metadata"].get("labels") or {}).get(OWNED_LABEL) == OWNED_VALUE


@check(
    "No BAR jobs or pods left over from earlier runs",
    severity=WARNING,
    tags=["cleanup", "jobs"],
)
def run(facts: Facts, run: Run):
    names = facts.names
    reported: set[str] = set()
    for job in facts.objects("jobs"):
        name, state = k8s.name(job), k8s.job_state(job)
        age = _age(facts, k8s.job_finished_at(job))
        if name in (names.list_job, names.test_job):
            why = ("dvcli.sh's list job, never cleaned up" if name == names.list_job
                   else "the runbook's permission workaround's test job")
        elif name in (names.backup_job, names.restore_job) and state != "active" and (age is None or age > KEEP_FINISHED):
            why = f"{state} {_show(age)}"
        elif _owned(job) and state != "active":
            why = f"dvdoctor's own job, {state} {_show(age)}"
        elif name in facts.data["source"].get("abandoned_jobs", {}):
            why = f"dvdoctor's own job, {facts.data['source']['abandoned_jobs'][name]}"
        else:
            continue
        reported.add(name)
        # a running list job is a BAR job at work: the backup or restore this gate guards would refuse
        blocks = name == names.list_job and state == "active" and run.phase in (BACKUP, RESTORE)
        if blocks:
            why += (f"; it is running, and DV's own job owns the namespace while it runs, so a {run.phase} "
                    f"refuses: `dvdoctor {run.phase} --fix` deletes it first")
        yield Problem(f"job {name} is left over: {why}",
                      (f"job/{name}: {state}, ended {_show(age)}" if state != "active" else f"job/{name}: active",
                       f"its pods: {_pods(facts, name)}"),
                      f"job/{name}", blocks=blocks, data={"kind": "job", "name": name, "why": why})
    jobs = {k8s.name(j): j for j in facts.objects("jobs")}
    for pod in facts.objects("pods"):
        pod_name = k8s.name(pod)
        job, _ = k8s.job_of_pod(pod)
        if pod_at_work(pod, jobs, names):
            continue  # a backup or restore at work although its Job is gone: never removed half-way
        if job in reported or (job and job in jobs) or pod["metadata"].get("deletionTimestamp"):
            continue  # reported with its job, or still has one, or is being deleted
        orphan_of_bar = job in (names.list_job, names.test_job, names.backup_job, names.restore_job)
        if orphan_of_bar or (_owned(pod) and k8s.pod_phase(pod) in ("Succeeded", "Failed")):
            started = _age(facts, (pod.get("status") or {}).get("startTime"))
            why = f"pod {pod_name} is left over from job {job or '(none)'}, which no longer exists"
            yield Problem(why, (f"pod/{pod_name}: phase {k8s.pod_phase(pod)}, started {_show(started)}",),
                          f"pod/{pod_name}", data={"kind": "pod", "name": pod_name, "why": why})
