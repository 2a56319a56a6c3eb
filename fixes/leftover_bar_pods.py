"""Delete the BAR jobs and pods that `leftover-bar-pods` names, with their pods.

Exactly the objects the check reports, nothing else: dvcli.sh's dv-list-backups-job, the runbook's
dv-test-job, backup/restore jobs that ended over an hour ago, dvdoctor's own finished jobs, and
pods whose job is gone. Never an active backup or restore job (the check never names one).
Changes: deletes those jobs (background propagation: their pods go too) and pods.
"""

from dvdoctor.facts import Facts
from dvdoctor.fixer import FixOptions, fix
from dvdoctor.plan import Delete, Plan
from dvdoctor.registry import load_all

KINDS = {"job": "jobs", "pod": "pods"}


@fix("leftover-bar-pods")
def plan(facts: Facts, options: FixOptions) -> Plan:
    out = Plan("leftover-bar-pods")
    for problem in load_all()["leftover-bar-pods"].run(facts):
        kind, _, name = (problem.object or "").partition("/")
        if kind in KINDS:
            out.actions.append(Delete(KINDS[kind], name, f"delete {kind} {name}: {problem.message.split(': ', 1)[-1]}"))
    return out
