"""dv-bar-pvc, the claim that holds every DV backup, is missing or not bound.

Symptom: there is nowhere to restore from; dvcli.sh's restore goes on anyway and fails later, and
a first backup with dvcli.sh creates the claim from DV's template at 20Gi, which the runbook warns
holds one or two backups. A claim stuck `Pending` keeps every BAR pod from starting.
Cause: the claim was never created (no backup yet) or was deleted. When its volume's reclaim policy
is Delete, every backup went with it; when it is Retain, the volume stays, `Released`, with every
backup still on it, but Kubernetes never binds a Released volume to a new claim by itself: a new
dv-bar-pvc gets a new, empty volume and the backups vanish from `list` and `restore`. dvcli.sh
takes any PVC whose name contains "dv-bar" for it, so a look-alike can hide its absence. A Pending
claim means its storage class could not provision or bind a volume (see the claim's events).
Before a backup, a missing claim is only a finding when such a kept volume exists: a backup would
otherwise create a new, empty claim over it (with none, the backup creates the claim itself).
Repair: `dvdoctor fix --issue bar-pvc-missing` (or `dvdoctor backup --fix`). When a Released volume that dv-bar-pvc of this
namespace used is kept, it is bound again: its claimRef loses the old claim's
uid (`oc patch pv NAME --type merge -p '{"spec":{"claimRef":{"uid":null,"resourceVersion":null}}}'`)
and dv-bar-pvc is created with `volumeName: NAME`, the volume's size, class and access modes; the
backups it held are back. When more than one such volume was kept (the claim was made again and
deleted again), which one holds the backups cannot be seen from here (a newer one may be empty):
nothing is bound until you choose, with `--volume PV`. Only when no such volume exists is a new, empty claim created, bigger than the
template's 20Gi (`[--size 60Gi] [--storage-class ibmc-file-gold-gid]`). For a claim that does not
bind, fix the storage class or its provisioner (`oc describe pvc dv-bar-pvc`).
"""

from dvdoctor.cluster import k8s
from dvdoctor.facts.model import Facts
from dvdoctor.verdicts.registry import BACKUP, RESTORE, Problem, Run, check, module_id

ID = module_id(__name__)


def kept_volumes(facts: Facts) -> list[dict]:
    """Volumes left by a deleted dv-bar-pvc of this namespace, newest first: Released ones, and
    Available ones already pre-bound to the claim's name (a rebind cut short before the claim)."""
    name, ns = facts.names.bar_pvc, facts.namespace
    out = []
    for pv in facts.objects("persistentvolumes"):
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        phase = (pv.get("status") or {}).get("phase")
        if ref.get("name") != name or ref.get("namespace") != ns:
            continue
        if phase == "Released" or (phase == "Available" and not ref.get("uid")):
            out.append(pv)
    return sorted(out, key=lambda pv: (pv["metadata"].get("creationTimestamp") or "", k8s.name(pv)), reverse=True)


def describe_volume(pv: dict) -> str:
    spec = pv.get("spec") or {}
    return (f"persistentvolume/{k8s.name(pv)}: {(pv.get('status') or {}).get('phase', 'Unknown')}, "
            f"reclaim {spec.get('persistentVolumeReclaimPolicy', '?')}, {(spec.get('capacity') or {}).get('storage', '?')}, "
            f"storage class {spec.get('storageClassName') or '(none)'}, created {pv['metadata'].get('creationTimestamp', '?')}")


@check(
    "The claim dv-bar-pvc exists and is bound",
    applies=[BACKUP, RESTORE],
    tags=["runbook", "backup-volume"],
)
def run(facts: Facts, run: Run):
    name = facts.names.bar_pvc
    pvc = facts.get("persistentvolumeclaims", name)
    if pvc is None:
        claims = sorted(k8s.name(p) for p in facts.objects("persistentvolumeclaims"))
        evidence = [f"claims in {facts.namespace}: {', '.join(claims) or 'none'}"]
        alike = [c for c in claims if "dv-bar" in c.lower()]
        if alike:
            evidence.append(f"dvcli.sh would take {', '.join(alike)} for it (its lookup matches any name containing 'dv-bar')")
        kept = kept_volumes(facts)
        unread = facts.unread("persistentvolumes")
        if run.phase == BACKUP and not kept:
            return  # the backup creates it (the first backup of a namespace)
        # for the repair: the volumes it may bind again (newest first), and why none could be seen
        missing = {"kept": tuple(kept), "unread": unread}
        if kept:
            # what a kept volume holds cannot be seen until a claim binds it: never said, only named
            evidence += [f"{describe_volume(pv)}: kept from a deleted {name} (what it holds shows once it is bound)"
                         for pv in kept]
            if len(kept) == 1:
                yield Problem(f"claim {name} does not exist, but its volume {k8s.name(kept[0])} was kept (fix binds "
                              "it again; the backups it holds, if any, show in `list` once it is bound)", tuple(evidence),
                              f"persistentvolumeclaim/{name}", data=missing)
            else:
                yield Problem(f"claim {name} does not exist, and {len(kept)} volumes of deleted {name} claims were kept "
                              f"({', '.join(k8s.name(pv) for pv in kept)}): which one holds the backups is yours to "
                              f"choose (fix --issue {ID} --volume PV binds it)", tuple(evidence),
                              f"persistentvolumeclaim/{name}", data=missing)
            return
        evidence.append(f"persistentvolumes: skipped ({unread}); a kept volume holding the backups cannot be ruled out"
                        if unread else f"no Released volume was bound to {facts.namespace}/{name}")
        yield Problem(f"claim {name} does not exist: no backups to restore, nowhere to write one", tuple(evidence),
                      f"persistentvolumeclaim/{name}", data=missing)
        return
    phase = (pvc.get("status") or {}).get("phase", "Unknown")
    if phase == "Bound":
        return
    spec = pvc.get("spec") or {}
    evidence = [f"persistentvolumeclaim/{name}: phase {phase}, storage class {spec.get('storageClassName') or '(default)'}, "
                f"request {((spec.get('resources') or {}).get('requests') or {}).get('storage', '?')}"
                + (f", volume {spec['volumeName']}" if spec.get("volumeName") else "")]
    evidence += facts.event_lines(name)
    yield Problem(f"claim {name} is {phase}, not Bound", tuple(evidence), f"persistentvolumeclaim/{name}")
