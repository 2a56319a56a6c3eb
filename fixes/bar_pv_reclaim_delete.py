"""Set the backup volume's reclaim policy to Retain, so deleting dv-bar-pvc no longer deletes every backup.

Changes: spec.persistentVolumeReclaimPolicy of the PersistentVolume bound to dv-bar-pvc (a field
Kubernetes allows to change on a bound volume). Needs rights to patch cluster-scoped PVs.
"""

from typing import Sequence

from dvdoctor.core.errors import UsageError
from dvdoctor.facts.model import Facts
from dvdoctor.repair.fixer import FixOptions, fix
from dvdoctor.repair.plan import Patch, Plan
from dvdoctor.verdicts.registry import Problem


@fix
def plan(facts: Facts, problems: Sequence[Problem], options: FixOptions) -> Plan:
    out = Plan()
    pvc = facts.get("persistentvolumeclaims", facts.names.bar_pvc)
    if pvc is None:
        return out
    if not facts.has_kind("persistentvolumes"):
        raise UsageError("cannot read PersistentVolumes (cluster-scoped): ask a cluster admin to run this fix")
    for problem in problems:  # the claim's volume, whose reclaim policy the check found to be Delete
        name = problem.data["volume"]
        out.actions.append(Patch("persistentvolumes", name, {"spec": {"persistentVolumeReclaimPolicy": "Retain"}},
                                 f"set persistentvolume/{name} reclaim policy Delete → Retain"))
    return out
