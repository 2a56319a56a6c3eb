"""The dv-init-volume job is missing, so the image that runs DV's backup and restore is unknown.

Symptom: dvcli.sh logs an empty image (`Use DV init image:  in dv-backup-job.yaml`) and fails as in
the runbook's issue 1, and the runbook's workaround (read the image from the job) fails too;
dvdoctor cannot inspect dv-bar-pvc or run a backup either.
Cause: the dv-init-volume job, created when DV was provisioned, was deleted. It is the only object
that names DV's init-volume image (`.../dv-init-volume:v1.5.0.0-217` on the runbook's cluster), the
image whose code backs up and restores DV.
Repair: none automatic, since the image can't be guessed safely. Find the image DV was installed
with (for example `oc get pods -o jsonpath='{..image}'` over DV's pods, or the image stream of
the namespace's registry: the runbook's is
`image-registry.openshift-image-registry.svc:5000/cpd30/dv-init-volume:v1.5.0.0-217`) and recreate
the dv-init-volume job from DV's installation, or ask IBM support. Never reprovision DV 1.5.0.
"""

from dvdoctor.cluster import k8s
from dvdoctor.facts.model import Facts
from dvdoctor.verdicts.registry import Problem, check


@check(
    "The dv-init-volume job exists (it names DV's BAR image)",
    tags=["runbook", "image"],
)
def run(facts: Facts):
    name = facts.names.init_volume_job
    if facts.get("jobs", name) is not None:
        return
    jobs = sorted(k8s.name(j) for j in facts.objects("jobs"))
    orphans = [k8s.name(p) for p in facts.pods_of_job(name)]
    evidence = [f"jobs in {facts.namespace}: {', '.join(jobs) or 'none'} (no {name})"]
    if orphans:
        images = {k8s.pod_image(p.get("spec") or {}) for p in facts.pods_of_job(name)}
        evidence.append(f"pods left by the job: {', '.join(orphans)}, image {', '.join(sorted(i for i in images if i))}")
    yield Problem(f"job {name} is missing: the image that runs DV's backup and restore is unknown",
                  tuple(evidence), f"job/{name}")
