"""dv-bar-pvc, the claim that holds every DV backup, is missing or not bound.

Symptom: there is nowhere to restore from; dvcli.sh's restore goes on anyway and fails later, and
a first backup with dvcli.sh creates the claim from DV's template at 20Gi, which the runbook warns
holds one or two backups. A claim stuck `Pending` keeps every BAR pod from starting.
Cause: the claim was never created (no backup yet) or was deleted, and with it, when its volume's
reclaim policy is Delete, every backup. dvcli.sh takes any PVC whose name contains "dv-bar" for it,
so a look-alike can hide its absence. A Pending claim means its storage class could not provision
or bind a volume (see the claim's events).
Repair: create it before the first backup, bigger than the template's 20Gi:
`dvdoctor fix --issue bar-pvc-missing [--size 60Gi] [--storage-class ibmc-file-gold-gid]`. For a
claim that does not bind, fix the storage class or its provisioner (`oc describe pvc dv-bar-pvc`).
"""

from dvdoctor import k8s
from dvdoctor.facts import Facts
from dvdoctor.registry import RESTORE, Problem, check


@check(
    "bar-pvc-missing",
    "The claim dv-bar-pvc exists and is bound",
    applies=[RESTORE],
    fix="bar-pvc-missing",
    tags=["runbook", "backup-volume"],
)
def run(facts: Facts):
    name = facts.names.bar_pvc
    pvc = facts.get("persistentvolumeclaims", name)
    if pvc is None:
        claims = sorted(k8s.name(p) for p in facts.objects("persistentvolumeclaims"))
        evidence = [f"claims in {facts.namespace}: {', '.join(claims) or 'none'}"]
        alike = [c for c in claims if "dv-bar" in c.lower()]
        if alike:
            evidence.append(f"dvcli.sh would take {', '.join(alike)} for it (its lookup matches any name containing 'dv-bar')")
        yield Problem(f"claim {name} does not exist: no backups to restore, nowhere to write one", tuple(evidence),
                      f"persistentvolumeclaim/{name}")
        return
    phase = (pvc.get("status") or {}).get("phase", "Unknown")
    if phase == "Bound":
        return
    spec = pvc.get("spec") or {}
    evidence = [f"persistentvolumeclaim/{name}: phase {phase}, storage class {spec.get('storageClassName') or '(default)'}, "
                f"request {((spec.get('resources') or {}).get('requests') or {}).get('storage', '?')}"]
    evidence += [f"event {e.get('reason')}: {e.get('message', '').strip()}" for e in facts.events_for(name)[-3:]]
    yield Problem(f"claim {name} is {phase}, not Bound", tuple(evidence), f"persistentvolumeclaim/{name}")
