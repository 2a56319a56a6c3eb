"""Create dv-bar-pvc from DV's own template, big enough for three backups.

DV's template asks for 20Gi, and one backup takes about 10Gi on the runbook's cluster (component
tarballs plus the combined one), so a second backup already fails. The new claim gets --size, else
30Gi; its storage class is --storage-class, else the class of DV's data claim dv-pvc.
Changes: one new PersistentVolumeClaim.
"""

from dvdoctor.facts import Facts
from dvdoctor.fixer import FixOptions, fix
from dvdoctor.flows.jobs import pvc_from_template
from dvdoctor.plan import Create, Plan


@fix("bar-pvc-missing")
def plan(facts: Facts, options: FixOptions) -> Plan:
    out = Plan("bar-pvc-missing")
    names = facts.names
    if facts.get("persistentvolumeclaims", names.bar_pvc) is not None:
        return out
    pvc = pvc_from_template(facts, options.storage_class, options.size)
    spec = pvc["spec"]
    out.actions.append(Create("persistentvolumeclaims", pvc,
                              f"create claim {names.bar_pvc} ({spec['storageClassName']}, {spec['resources']['requests']['storage']}) "
                              "from DV's template"))
    return out
