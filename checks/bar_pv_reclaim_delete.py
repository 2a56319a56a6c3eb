"""The volume behind dv-bar-pvc is deleted with the claim: one `oc delete pvc` loses every backup.

Symptom: none until it is too late; the runbook warns that if the backup volume is deleted after
the backup job ran, users lose all DV backups.
Cause: the PersistentVolume bound to dv-bar-pvc has `persistentVolumeReclaimPolicy: Delete`, the
default of most dynamic storage classes (ibmc-file-gold-gid's included): deleting the claim, by
hand or with the namespace, deletes the volume and its data.
Repair: set the policy to Retain (a field Kubernetes lets you change on a bound volume; needs
rights on cluster-scoped PVs): `dvdoctor fix --issue bar-pv-reclaim-delete`. When dvdoctor cannot
list PersistentVolumes, the check is skipped, with the reason; a cluster admin can run
`oc get pv $(oc get pvc dv-bar-pvc -o jsonpath='{.spec.volumeName}') -o jsonpath='{.spec.persistentVolumeReclaimPolicy}'`.
"""

from dvdoctor.facts.model import Facts
from dvdoctor.verdicts.registry import WARNING, Problem, Skip, check


@check(
    "Deleting dv-bar-pvc would not delete the backups",
    severity=WARNING,
    tags=["backup-volume", "data-loss"],
)
def run(facts: Facts):
    name = facts.names.bar_pvc
    pvc = facts.get("persistentvolumeclaims", name)
    volume = ((pvc or {}).get("spec") or {}).get("volumeName")
    if not volume:
        return  # no bound claim: bar-pvc-missing reports it
    if not facts.has_kind("persistentvolumes"):
        error = next((e["error"] for e in facts.data.get("errors") or [] if e["what"] == "list persistentvolumes"), "")
        raise Skip(f"PersistentVolumes could not be listed, so the reclaim policy of {volume} is unknown"
                   + (f": {error}" if error else ""))
    pv = facts.pv_of(pvc)
    if pv is None:
        raise Skip(f"claim {name} names volume {volume}, which is not among the listed PersistentVolumes")
    spec = pv.get("spec") or {}
    if spec.get("persistentVolumeReclaimPolicy") != "Delete":
        return
    evidence = [f"persistentvolume/{volume}: persistentVolumeReclaimPolicy Delete, "
                f"capacity {(spec.get('capacity') or {}).get('storage', '?')}, bound to {facts.namespace}/{name}"]
    sc_name = spec.get("storageClassName")
    sc = facts.get("storageclasses", sc_name) if sc_name else None
    if sc is not None:
        evidence.append(f"storageclass/{sc_name}: reclaimPolicy {sc.get('reclaimPolicy', 'Delete')} "
                        "(a claim created anew gets the same)")
    yield Problem(f"deleting {name} deletes volume {volume} and every backup on it", tuple(evidence),
                  f"persistentvolume/{volume}", data={"volume": pv["metadata"]["name"]})
