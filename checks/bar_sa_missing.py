"""The service account dv-bar-sa, which DV's backup and restore jobs run as, is missing.

Symptom: dvcli.sh stops before doing anything with "Make sure required security settings are
configured"; a BAR job created anyway is refused by the API (a pod may not name a service account
that does not exist), and dvdoctor cannot start its inspection pod.
Cause: the security setup of DV's BAR feature was not done in this namespace, or dv-bar-sa was
deleted. BAR pods run as the bigsql uid under this account (the runbook's test job names it).
Repair: manual, since it needs cluster-admin rights and is part of DV's installation: do the BAR
security setup of DV 1.5.0's documentation (svc-dv/dv-bar.html, linked from the runbook), which
creates dv-bar-sa and lets it run pods as the bigsql uid; then check again.
"""

from dvdoctor.cluster import k8s
from dvdoctor.facts.model import Facts
from dvdoctor.verdicts.registry import Problem, check


@check(
    "The service account dv-bar-sa exists",
    tags=["runbook", "security"],
)
def run(facts: Facts):
    name = facts.names.bar_sa
    if facts.get("serviceaccounts", name) is not None:
        return
    dv = sorted(k8s.name(s) for s in facts.objects("serviceaccounts") if k8s.name(s).startswith("dv-"))
    yield Problem(
        f"service account {name} does not exist: BAR jobs cannot run",
        (f"service accounts named dv-*: {', '.join(dv) or 'none'}",
         'dvcli.sh stops with "Make sure required security settings are configured"'),
        f"serviceaccount/{name}",
    )
