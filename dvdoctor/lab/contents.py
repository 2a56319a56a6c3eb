"""What a fresh lab holds: DV 1.5.0's objects in one namespace, as `oc get -o json` shows them.

Names, mounts and the BAR uid follow domain.md and the runbook; pod images carry the registry
path of an OpenShift internal registry for the lab's namespace.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ..core.names import DEFAULT
from ..core.units import ISO_Z

NAMES = DEFAULT.names
BAR_UID = NAMES.bar_uid
REGISTRY = "image-registry.openshift-image-registry.svc:5000"
TAG = "v1.5.0.0-217"
#: The image in DV's job templates before dvcli.sh replaces it; no registry serves it.
PLACEHOLDER_IMAGE = "docker-registry.default.svc:5000/zen/dv-init-volume:v1.5.0.0"
BAR_CLASS = "ibmc-file-gold-gid"
DATA_SIZE = "40Gi"
#: Files of DV's data volume: (subPath, path, bytes). Random bytes, so gzip can't shrink the backup.
DATA_FILES: tuple[tuple[str, str, int], ...] = (
    ("1.5.0", "metastore/hive/metastore_db/seg0/c10.dat", 96_000),
    ("1.5.0", "metastore/hive/metastore_db/log/log1.dat", 160_000),
    ("1.5.0", "metastore/hive/warehouse/dv_views.orc", 64_000),
    ("1.5.0", "engine/bigsql/db2inst/NODE0000/BIGSQL/T0000002/C0000000.LRG", 900_000),
    ("1.5.0", "engine/bigsql/db2inst/NODE0000/BIGSQL/T0000003/C0000000.LRG", 700_000),
    ("1.5.0", "engine/bigsql/db2inst/NODE0000/SQL00001/LOGSTREAM0000/S0000042.LOG", 320_000),
    ("1.5.0", "engine/gaian/gaiandb_config.properties", 4_000),
    ("uc_dsserver_shared", "config/dsserver.properties", 3_000),
    ("uc_dsserver_shared", "repository/metadata.db", 420_000),
    ("unified_console_data", "console/userdata/profiles.db", 260_000),
    ("unified_console_data", "console/logs/console.log", 48_000),
)


def init_volume_image(namespace: str) -> str:
    return f"{REGISTRY}/{namespace}/dv-init-volume:{TAG}"


def images(namespace: str) -> dict[str, dict]:
    """The images the lab can 'pull': DV's own, and the init-volume image whose bin is the BAR stand-in."""
    known = {f"{REGISTRY}/{namespace}/{n}:{TAG}": {} for n in
             (*NAMES.statefulsets, *NAMES.side_deployments)}
    known[init_volume_image(namespace)] = {"bin": "bin", "sudo": True}
    return known


def write_data(volume: Path, seed: int = 150, scale: float = 1.0) -> int:
    """DV's data files under the data claim's folder, each at `scale` of its size; returns the bytes written."""
    rng = random.Random(seed)
    total = 0
    for sub_path, rel, size in DATA_FILES:
        size = max(1, round(size * scale))
        path = volume / sub_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
        total += size
    return total


def dv_mounts() -> list[dict]:
    """The mounts every DV pod has (and DV's BAR jobs have too), from domain.md."""
    return [
        {"name": "dv-data", "mountPath": "/mnt/PV/versioned", "subPath": "1.5.0"},
        {"name": "dv-data", "mountPath": "/mnt/PV/versioned/uc_dsserver_shared", "subPath": "uc_dsserver_shared"},
        {"name": "dv-data", "mountPath": "/mnt/PV/versioned/unified_console_data", "subPath": "unified_console_data"},
        {"name": "dv-data", "mountPath": NAMES.marker_dir, "subPath": "marker_files"},
    ]


def _template(app: str, namespace: str, mounts: list[dict] | None) -> dict:
    container = {
        "name": app,
        "image": f"{REGISTRY}/{namespace}/{app}:{TAG}",
        "imagePullPolicy": "IfNotPresent",
        "securityContext": {"runAsUser": BAR_UID, "runAsNonRoot": True},
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
    }
    spec: dict = {"serviceAccountName": "default", "securityContext": {"runAsNonRoot": True}, "containers": [container]}
    if mounts:
        container["volumeMounts"] = mounts
        spec["volumes"] = [{"name": "dv-data", "persistentVolumeClaim": {"claimName": NAMES.data_pvc}}]
    return {"metadata": {"labels": {"app": "dv", "component": app}}, "spec": spec}


def statefulset(name: str, namespace: str) -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "labels": {"app": "dv", "component": name}, "generation": 1},
        "spec": {"replicas": 1, "serviceName": name, "selector": {"matchLabels": {"app": "dv", "component": name}},
                 "template": _template(name, namespace, dv_mounts())},
        "status": {"replicas": 1, "readyReplicas": 1, "currentReplicas": 1, "updatedReplicas": 1,
                   "observedGeneration": 1},
    }


def deployment(name: str, namespace: str) -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": "dv", "component": name}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "dv", "component": name}},
                 "template": _template(name, namespace, None)},
    }


def storage_class() -> dict:
    return {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": BAR_CLASS, "labels": {"kubernetes.io/cluster-service": "true"}},
        "provisioner": "ibm.io/ibmc-file",
        "parameters": {"type": "Endurance", "iopsPerGB": "10", "gidAllocate": "true"},
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
        "allowVolumeExpansion": True,
    }


def claim(name: str, size: str, modes: tuple[str, ...] = ("ReadWriteMany",)) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"storageClassName": BAR_CLASS, "accessModes": list(modes),
                     "resources": {"requests": {"storage": size}}}}


def service_account(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}


def stamp(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime(ISO_Z)


def init_volume_job(namespace: str, installed: datetime) -> dict:
    """DV's dv-init-volume Job as it stands long after install: complete, its image the BAR image."""
    done = installed + timedelta(minutes=3)
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": NAMES.init_volume_job, "labels": {"app": "dv", "component": "dv-init-volume"},
                     "creationTimestamp": stamp(installed)},
        "spec": {
            "backoffLimit": 6, "completions": 1, "parallelism": 1,
            "template": {
                "metadata": {"labels": {"app": "dv", "component": "dv-init-volume"}},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": "default",
                    "securityContext": {"runAsNonRoot": True, "runAsUser": BAR_UID},
                    "containers": [{
                        "name": "dv-init-volume",
                        "image": init_volume_image(namespace),
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["/bin/sh", "-c", "echo DV volumes initialized"],
                        "volumeMounts": dv_mounts(),
                    }],
                    "volumes": [{"name": "dv-data", "persistentVolumeClaim": {"claimName": NAMES.data_pvc}}],
                },
            },
        },
        "status": {"startTime": stamp(installed), "completionTime": stamp(done), "succeeded": 1,
                   "conditions": [{"type": "Complete", "status": "True", "lastProbeTime": stamp(done),
                                   "lastTransitionTime": stamp(done)}]},
    }
