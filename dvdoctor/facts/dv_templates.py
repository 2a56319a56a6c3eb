"""Objects dvdoctor builds from DV's own templates and objects: the pod that sees the backup volume
as DV's BAR job does, the exec target in dv-engine-0, and dv-bar-pvc as DV's template shapes it.

They read what `collect` gathered (the templates from dv-engine-0, the init-volume Job, the engine
pod), so they sit with the facts: collect's inspection Job, the repairs' bar-fix Job, the copy Job
and the flows' claim are all built here, from one reading of DV's templates. They take the typed
facts, as every other reader of them does; collect, which builds its inspection Job while it is
still gathering, hands them a Facts on the dict it is filling (a Facts reads its dict live).
"""

from __future__ import annotations

import copy
import functools

import yaml

from ..cluster import k8s, oneshot
from ..core.errors import UsageError
from . import probe
from .model import Facts

#: Cluster-assigned metadata a template copied from a live object may carry; never sent back.
SERVER_FIELDS = ("namespace", "uid", "resourceVersion", "creationTimestamp", "selfLink", "generation", "managedFields")



def template_object(facts: Facts, template: str) -> dict | None:
    """One of DV's BAR templates from dv-engine-0, parsed; None when absent or unreadable."""
    text = (facts.engine or {}).get("templates", {}).get(template)
    if not text:
        return None
    obj = _parsed(text)
    return copy.deepcopy(obj) if obj is not None else None


@functools.lru_cache(maxsize=16)
def _parsed(text: str) -> dict | None:
    """A template's text parsed once: one run builds several objects from the same few templates,
    and PyYAML's pure-Python parser costs about 20 ms a template. Callers get a deep copy each
    (they change what they build from it), so the cache is never seen."""
    try:
        obj = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return obj if isinstance(obj, dict) else None


def bar_volume_spec(facts: Facts) -> tuple[list[dict], list[dict]]:
    """The volumes and mounts that put dv-bar-pvc at /mnt/PV/bar, read from DV's backup job template.

    Without the template, fall back to the claim name and the data version subPath that dv-engine-0
    uses for /mnt/PV/versioned (the runbook's test job mounts both with subPath 1.5.0).
    """
    names = facts.names
    tmpl = template_object(facts, "dv-backup-job.yaml")
    if tmpl:
        spec = k8s.job_pod_spec(tmpl)
        for c in spec.get("containers") or []:
            for m in c.get("volumeMounts") or []:
                if m.get("mountPath") == names.bar_mount:
                    vols = [v for v in spec.get("volumes") or [] if v.get("name") == m["name"]]
                    if vols:
                        return vols, [m]
    sub_path = "1.5.0"
    engine = facts.get("pods", names.engine_pod)
    if engine:
        for c in engine["spec"].get("containers") or []:
            for m in c.get("volumeMounts") or []:
                if m.get("mountPath") == "/mnt/PV/versioned" and m.get("subPath"):
                    sub_path = m["subPath"]
    return (
        [{"name": "dv-bar-data", "persistentVolumeClaim": {"claimName": names.bar_pvc}}],
        [{"name": "dv-bar-data", "mountPath": names.bar_mount, "subPath": sub_path}],
    )


def init_volume_job(facts: Facts) -> dict | None:
    return facts.get("jobs", facts.names.init_volume_job)


def engine_container(facts: Facts) -> str:
    """The container of dv-engine-0 to exec into: DV's `dv-engine` when the pod has it, else its first.

    A site whose pod names the container otherwise still gets a working exec without configuring it.
    """
    names = facts.names
    pod = facts.get("pods", names.engine_pod)
    containers = [c.get("name") for c in ((pod or {}).get("spec") or {}).get("containers") or []]
    return names.engine_container if names.engine_container in containers or not containers else containers[0]


def bar_image(facts: Facts) -> str | None:
    """The image that runs DV's BAR logic, read from the dv-init-volume Job (not its pod, which may be gone)."""
    job = init_volume_job(facts)
    return k8s.pod_image(k8s.job_pod_spec(job)) if job else None


def bar_uid(facts: Facts) -> int:
    """The uid DV's BAR jobs run as: the backup template's, else the init-volume job's, else the default."""
    tmpl = template_object(facts, "dv-backup-job.yaml")
    for spec in ([k8s.job_pod_spec(tmpl)] if tmpl else []) + (
        [k8s.job_pod_spec(j)] if (j := init_volume_job(facts)) else []
    ):
        uid = k8s.run_as_user(spec)
        if uid is not None:
            return uid
    return facts.names.bar_uid


def bar_job(facts: Facts, purpose: str, script_name: str, args: list[str], env: dict[str, str],
            deadline_seconds: int = 300) -> dict:
    """A one-shot Job that sees the backup volume as DV's BAR job does: its image, account, uid and mounts.

    The caller has checked that the image is known (the dv-init-volume Job exists).
    """
    names = facts.names
    volumes, mounts = bar_volume_spec(facts)
    return oneshot.script_job(
        name=oneshot.job_name(purpose),
        purpose=purpose,
        image=bar_image(facts) or "",
        service_account=names.bar_sa,
        uid=bar_uid(facts),
        script_text=probe.script(script_name),
        args=args,
        env={"BAR_DIR": names.bar_mount, "SYMLINK": names.symlink, **env},
        volumes=volumes,
        mounts=mounts,
        deadline_seconds=deadline_seconds,
    )


#: dv-bar-pvc's size when none is given: three of the runbook's ~10Gi backups. DV's template asks for
#: 20Gi, which a second backup already fills.
THREE_BACKUPS = "30Gi"


def pvc_from_template(facts: Facts, storage_class: str | None, size: str | None) -> dict:
    """dv-bar-pvc from DV's template, sized for three backups, in the storage class DV's data uses.

    The class is `storage_class`, else dv-pvc's (the template names "managed-nfs-storage", which a
    CP4D cluster rarely has); a class the cluster does not have is one clear error.
    """
    names = facts.names
    if storage_class is None:
        data = facts.get("persistentvolumeclaims", names.data_pvc)
        storage_class = ((data or {}).get("spec") or {}).get("storageClassName")
    if storage_class is None:
        raise UsageError(f"no storage class for a new {names.bar_pvc}: give --storage-class (e.g. ibmc-file-gold-gid)")
    known = {k8s.name(sc) for sc in facts.objects("storageclasses")}
    if facts.has_kind("storageclasses") and storage_class not in known:
        raise UsageError(f"storage class {storage_class!r} does not exist; known: {', '.join(sorted(known)) or 'none'}")
    pvc = claim_from_template(facts)
    spec = pvc["spec"]
    spec["storageClassName"] = storage_class
    spec.setdefault("resources", {}).setdefault("requests", {})["storage"] = size or THREE_BACKUPS
    return pvc


def claim_from_template(facts: Facts) -> dict:
    """dv-bar-pvc as DV's template shapes it (labels, access modes), without server fields; the caller sizes it."""
    names = facts.names
    body = template_object(facts, "dv-bar-pvc.yaml")
    if body is None:
        body = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": names.bar_pvc}}
    pvc = copy.deepcopy(body)
    for key in SERVER_FIELDS:
        pvc.setdefault("metadata", {}).pop(key, None)
    pvc["metadata"]["name"] = names.bar_pvc
    pvc.pop("status", None)
    spec = pvc.setdefault("spec", {})
    spec.setdefault("accessModes", ["ReadWriteMany"])
    return pvc
