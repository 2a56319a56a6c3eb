"""dv-caching, dv-api or dv-unified-console still run while a backup reads DV's files.

Symptom: the backup fails with tar's `file changed as we read it` (the runbook's note on its ROKS
cluster).
Cause: DV's backup job stops DV's engine but not the side deployments, which keep writing to DV's
volumes while tar reads them. The runbook's first backup step scales them to 0:
`oc scale --replicas=0 deployment dv-caching dv-api dv-unified-console`.
When it fails: before a backup (phase `backup`), whenever one of them has replicas above 0; at any
other time only while a dv-backup-job runs (or its pod is still at work after its Job object was
deleted), since outside a backup they are meant to run.
Repair: `dvdoctor fix --issue side-deployments-running` scales them to 0 and records each one's
replica count in an annotation, so `side-deployments-left-down` can put back exactly what was
there after the backup. `dvdoctor backup` does both itself. While DV's backup job runs, dvdoctor
changes nothing (the job owns the namespace, and its tar has already read files beside the
writers): let it end or stop it (`dvdoctor fix --issue bar-job-unattended`), then run `dvdoctor
backup`, which scales them down before it starts DV's job.
"""

from dvdoctor.cluster import k8s
from dvdoctor.facts.bar_jobs import backup_at_work
from dvdoctor.facts.model import Facts
from dvdoctor.verdicts.registry import BACKUP, Problem, Run, check


@check(
    "dv-caching, dv-api and dv-unified-console are at 0 replicas during a backup",
    applies=[BACKUP],
    tags=["runbook", "backup", "deployments"],
)
def run(facts: Facts, run: Run):
    names = facts.names
    backup = backup_at_work(facts.objects("jobs"), facts.objects("pods"), names)  # a job-less pod still tars
    if run.phase != BACKUP and backup is None:
        return
    running = [d for n in names.side_deployments if (d := facts.get("deployments", n)) and k8s.spec_replicas(d) > 0]
    if not running:
        return
    when = ("a backup is about to start" if backup is None else
            f"pod {backup.pod} of job {names.backup_job}, whose Job object was deleted, is at work" if backup.pod else
            f"job {names.backup_job} is running")
    evidence = [f"deployment/{k8s.name(d)}: spec.replicas {k8s.spec_replicas(d)}, ready {k8s.ready_replicas(d)}"
                for d in running]
    evidence.append("tar then fails with 'file changed as we read it'")
    if backup is not None:
        evidence.append(f"dvdoctor changes nothing while {names.backup_job} runs: let it "
                        "end, or, if nobody watches it, stop it with `dvdoctor fix --issue bar-job-unattended`; "
                        "then `dvdoctor backup` scales them down first")
    yield Problem(f"{', '.join(k8s.name(d) for d in running)} still run{'s' if len(running) == 1 else ''} while {when}",
                  tuple(evidence), f"deployment/{k8s.name(running[0])}",
                  data={"deployments": tuple(k8s.name(d) for d in running)})  # what the repair scales to 0
