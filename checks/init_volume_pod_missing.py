"""The dv-init-volume job's pod is gone, so dvcli.sh cannot find DV's BAR image.

Symptom: a dvcli.sh backup or restore stops at once; its log shows an empty image and a sed error:
`2021-01-14_14.40.42.3N_UTC INFO Use DV init image: in dv-backup-job.yaml`, then
`sed: 1: "dv-backup-job.yaml": extra characters at the end of d command`.
Cause: dvcli.sh reads the image that runs the backup and restore logic from the pod
`dv-init-volume-xxxxx` that the dv-init-volume job created. When a person or a program deleted that
pod, the lookup returns nothing and the job template is edited with an empty image. The job itself
still names the image. dvdoctor's own backup and restore read it from the job, so they are not
affected: this is a warning for people who run dvcli.sh.
Repair: take the image from the dv-init-volume job instead of its pod. The runbook does this by
editing dvcli.sh; `dvdoctor fix --issue init-volume-pod-missing --dvcli PATH` writes a repaired copy
beside the original (which stays untouched), or run backups with `dvdoctor backup`.
"""

from dvdoctor.cluster import k8s
from dvdoctor.facts.model import Facts
from dvdoctor.verdicts.registry import WARNING, Problem, check, module_id
from dvdoctor.facts.signatures import match_log

#: This check's id, as the log signatures name it (said once: by this module's name).
CHECK_ID = module_id(__name__)


@check(
    "The dv-init-volume job still has its pod (dvcli.sh reads DV's BAR image from it)",
    severity=WARNING,
    tags=["runbook", "dvcli", "image"],
)
def run(facts: Facts):
    name = facts.names.init_volume_job
    job = facts.get("jobs", name)
    if job is None or facts.pods_of_job(name):
        return  # a missing job is init-volume-job-missing's finding
    evidence = [
        f"job/{name} exists; its image: {k8s.pod_image(k8s.job_pod_spec(job)) or '(none)'}",
        f"pods labelled job-name={name} or owned by job {name}: none",
        'dvcli.sh would log "Use DV init image:  in dv-backup-job.yaml" (empty) and fail with '
        '\'sed: 1: "dv-backup-job.yaml": extra characters at the end of d command\'',
    ]
    for pod, log in sorted((facts.data.get("logs") or {}).items()):
        evidence += [f"log of {pod}: {m.line}" for m in match_log(log) if m.check == CHECK_ID]
    yield Problem(
        f"the pod of job {name} is gone: dvcli.sh cannot find DV's BAR image (dvdoctor reads it from the job)",
        tuple(evidence),
        f"job/{name}",
    )
