"""Create dv-bar-pvc from DV's own template, big enough for three backups.

DV's template asks for 20Gi, and one backup takes about 10Gi on the runbook's cluster (component
tarballs plus the combined one), so a second backup already fails. The new claim gets --size, else
30Gi; its storage class is --storage-class, else the class of DV's data claim dv-pvc.
Changes: one new PersistentVolumeClaim.
"""

from dvdoctor import k8s
from dvdoctor.errors import UsageError
from dvdoctor.facts import Facts
from dvdoctor.fixer import FixOptions, fix
from dvdoctor.flows.jobs import pvc_from_template
from dvdoctor.plan import Create, Plan

THREE_BACKUPS = "30Gi"


@fix("bar-pvc-missing")
def plan(facts: Facts, options: FixOptions) -> Plan:
    out = Plan("bar-pvc-missing")
    names = facts.names
    if facts.get("persistentvolumeclaims", names.bar_pvc) is not None:
        return out
    storage_class = options.storage_class
    if storage_class is None:
        data = facts.get("persistentvolumeclaims", names.data_pvc)
        storage_class = (data or {}).get("spec", {}).get("storageClassName")
    if storage_class is None:
        raise UsageError(f"no storage class for {names.bar_pvc}: give --storage-class (e.g. ibmc-file-gold-gid)")
    known = {k8s.name(sc) for sc in facts.objects("storageclasses")}
    if facts.has_kind("storageclasses") and storage_class not in known:
        raise UsageError(f"storage class {storage_class!r} does not exist; known: {', '.join(sorted(known)) or 'none'}")
    pvc = pvc_from_template(facts, storage_class, options.size or THREE_BACKUPS)
    out.actions.append(Create("persistentvolumeclaims", pvc,
                              f"create claim {names.bar_pvc} ({storage_class}, {pvc['spec']['resources']['requests']['storage']}) from DV's template"))
    return out
