"""dv-caching, dv-api or dv-unified-console are left at 0 replicas with no backup running.

Symptom: DV's web console, REST API or caching stay unavailable after a backup, while the engine is
back.
Cause: the runbook scales the three to 0 before a backup and asks for
`oc scale --replicas=1 deployment dv-caching dv-api dv-unified-console` afterwards; a backup that
failed or was interrupted skips that last step. When dvdoctor scaled one down it recorded the
original count in the annotation `dvdoctor.io/original-replicas`. Whoever scaled them down,
dvdoctor or a person following the runbook, DV's API and console are down while they stay at 0:
an error. A site that runs without one of them on purpose (dv-caching, when DV caching is not
used) says so with a suppression in dvdoctor.yaml.
Repair: `dvdoctor fix --issue side-deployments-left-down` scales each back to its recorded count
(1, the runbook's value, when none is recorded). A backup does the same on its way out, so it
never ends with them down; the gate before a restore stops on it.
"""

from dvdoctor.cluster import k8s
from dvdoctor.facts.model import Facts
from dvdoctor.core.names import REPLICAS_ANNOTATION
from dvdoctor.verdicts.registry import RESTORE, Problem, check


@check(
    "dv-caching, dv-api and dv-unified-console run when no backup does",
    applies=[RESTORE],
    tags=["runbook", "deployments"],
)
def run(facts: Facts):
    if facts.active_bar_jobs():
        return
    for name in facts.names.side_deployments:
        dep = facts.get("deployments", name)
        if dep is None or k8s.spec_replicas(dep) > 0:
            continue
        recorded = k8s.annotations(dep).get(REPLICAS_ANNOTATION)
        evidence = [f"deployment/{name}: spec.replicas 0, ready {k8s.ready_replicas(dep)}",
                    f"active BAR jobs: none ({facts.names.backup_job}, {facts.names.restore_job})"]
        if recorded is not None:
            evidence.append(f"annotation {REPLICAS_ANNOTATION}={recorded}: dvdoctor scaled it down from {recorded}")
            message = f"deployment {name} was scaled down by dvdoctor from {recorded} and never scaled back"
        else:
            message = f"deployment {name} is at 0 replicas while no backup runs"
        yield Problem(message, tuple(evidence), f"deployment/{name}", data={"deployment": name})
