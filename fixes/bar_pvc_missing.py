"""Bind dv-bar-pvc again to the volume that kept the backups, or create it, big enough for three backups.

When a Released volume of the deleted dv-bar-pvc of this namespace is kept (reclaim Retain), it is
bound again (with more than one kept, only the one named with --volume: the newest may be an empty
one of a claim made again and deleted again, so the choice is the admin's): first its claimRef loses the old claim's uid and resourceVersion, which
leaves it pre-bound to dv-bar-pvc of this namespace (no other claim can take it meanwhile, and the
volume controller makes it Available), then dv-bar-pvc is created with `volumeName` set to it and
the volume's own size, storage class and access modes, so the binder accepts it. Every backup on it
it held is back in `list` and `restore`; --size and --storage-class do not apply to a kept volume (grow it
afterwards with `fix --issue bar-low-space --size`). Only with no kept volume is a new claim created
from DV's own template: DV's template asks for 20Gi, and one backup takes about 10Gi on the
runbook's cluster (component tarballs plus the combined one), so a second backup already fails;
the new claim gets --size, else 30Gi; its storage class is --storage-class, else the class of DV's
data claim dv-pvc.
Changes: with a kept volume, patches that PersistentVolume's claimRef (the old one is in the audit
log), creates one PersistentVolumeClaim naming it and waits (up to a minute) for the binder to bind
them; else one new PersistentVolumeClaim.
"""

from typing import Sequence

from dvdoctor.cluster import k8s
from dvdoctor.checks.bar_pvc_missing import describe_volume
from dvdoctor.facts.model import Facts
from dvdoctor.repair.fixer import FixOptions, fix
from dvdoctor.facts.dv_templates import claim_from_template, pvc_from_template
from dvdoctor.repair.plan import AwaitBound, Create, Patch, Plan
from dvdoctor.verdicts.registry import Problem, module_id

ID = module_id(__name__)


def rebind_plan(facts: Facts, pv: dict, kept: Sequence[dict], options: FixOptions) -> Plan:
    """Pre-bind the kept volume to dv-bar-pvc, then create the claim that names it."""
    out = Plan()
    names = facts.names
    spec = pv.get("spec") or {}
    ref = spec.get("claimRef") or {}
    size = (spec.get("capacity") or {}).get("storage")
    pv_name = k8s.name(pv)
    patch: dict = {"spec": {"claimRef": {"uid": None, "resourceVersion": None}}}
    if pv["metadata"].get("resourceVersion"):
        patch["metadata"] = {"resourceVersion": pv["metadata"]["resourceVersion"]}  # the volume as judged
    held = f"{ref.get('namespace', '?')}/{ref.get('name', '?')}"
    ids = ", ".join(f"{k} {ref[k]}" for k in ("uid", "resourceVersion") if ref.get(k))
    out.actions.append(Patch("persistentvolumes", pv_name, patch,
                             f"clear the old claim's uid from persistentvolume/{pv_name} so it can be bound to "
                             f"{facts.namespace}/{names.bar_pvc} again",
                             before=held + (f" ({ids})" if ids else ""),  # the audit keeps the old uid: it can be undone
                             words=("claimRef", f"{held}, uid and resourceVersion cleared")))
    claim = claim_from_template(facts)
    claim_spec = claim["spec"]
    claim_spec["resources"] = {"requests": {"storage": size}}
    claim_spec["volumeName"] = pv_name
    claim_spec["storageClassName"] = spec.get("storageClassName") or ""  # "" keeps a default class away
    if spec.get("accessModes"):
        claim_spec["accessModes"] = list(spec["accessModes"])
    if spec.get("volumeMode"):
        claim_spec["volumeMode"] = spec["volumeMode"]
    claim_spec.pop("selector", None)
    out.actions.append(Create("persistentvolumeclaims", claim,
                              f"create claim {names.bar_pvc} bound to persistentvolume/{pv_name} "
                              f"({claim_spec['storageClassName'] or 'no class'}, {size}): the backups it kept, if any, come back"))
    out.actions.append(AwaitBound(names.bar_pvc, pv_name))
    out.notes.append(f"kept volume chosen: {describe_volume(pv)}")
    for other in kept:
        if k8s.name(other) != pv_name:
            out.notes.append(f"left alone: {describe_volume(other)}")
    if options.size or options.storage_class:
        out.notes.append("--size/--storage-class do not apply: the kept volume keeps its size and class "
                         "(grow it afterwards with `dvdoctor fix --issue bar-low-space --size SIZE`)")
    return out


@fix
def plan(facts: Facts, problems: Sequence[Problem], options: FixOptions) -> Plan:
    out = Plan()
    names = facts.names
    # the claim the check found missing (a claim that exists but does not bind is its storage class's to fix)
    missing = next((problem.data for problem in problems if "kept" in problem.data), None)
    if missing is None:
        return out
    kept = missing["kept"]
    if options.volume is not None:
        chosen = [pv for pv in kept if k8s.name(pv) == options.volume]
        if chosen:
            return rebind_plan(facts, chosen[0], kept, options)
        out.manual.append(f"--volume {options.volume}: not a Released volume of a deleted "
                          f"{facts.namespace}/{names.bar_pvc}; kept: "
                          + (", ".join(k8s.name(pv) for pv in kept) or "none"))
        return out
    if len(kept) == 1:
        return rebind_plan(facts, kept[0], kept, options)
    if kept:
        # a newer kept volume may be an empty one of a claim made again: which holds the backups is a choice
        out.manual.append(f"{len(kept)} volumes of deleted {names.bar_pvc} claims were kept; which one holds the "
                          "backups cannot be seen before it is bound, so none was chosen:")
        out.manual += [describe_volume(pv) for pv in kept]
        out.manual.append(f"bind the one that holds the backups with `dvdoctor fix --issue {ID} --volume PV` "
                          "(look inside one with `oc describe pv PV` and its storage backend)")
        return out
    pvc = pvc_from_template(facts, options.storage_class, options.size)
    spec = pvc["spec"]
    out.actions.append(Create("persistentvolumeclaims", pvc,
                              f"create claim {names.bar_pvc} ({spec['storageClassName']}, {spec['resources']['requests']['storage']}) "
                              "from DV's template"))
    if (why := missing["unread"]) is not None:
        out.notes.append(f"persistentvolumes could not be read ({why}): if dv-bar-pvc's old volume was kept "
                         "(Released), stop here and rerun with rights to list persistentvolumes, or its backups stay unbound")
    return out
