"""Which DV instance a backup came from: the manifest dvdoctor writes beside each backup it takes.

DV 1.5.0's backup and restore is same-instance only (the runbook: DV 1.5.0 must not be
reprovisioned), so a backup should only be restored onto the DV that took it. The identity is the
dv-engine StatefulSet's metadata.uid: a reprovisioned DV, or DV in another namespace or cluster,
gets a new one even with the same name and image. The image and namespace are recorded to say
*which* other instance it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .. import __version__
from ..cluster import k8s
from .backups import Backup
from .model import Facts

MANIFEST_NAME = "dvdoctor-manifest.json"
MANIFEST_SCHEMA = "dvdoctor/backup-manifest/v1"

THIS_INSTANCE = "this instance"
OTHER_INSTANCE = "other instance"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Identity:
    namespace: str
    statefulset: str
    uid: str
    image: str

    def describe(self) -> str:
        return f"StatefulSet {self.statefulset} uid {self.uid} in namespace {self.namespace}, image {self.image}"

    def to_json(self) -> dict:
        return {"namespace": self.namespace, "statefulset": self.statefulset, "uid": self.uid, "image": self.image}

    @classmethod
    def from_json(cls, data: object) -> "Identity | None":
        """The identity a manifest records; None when a field is missing or not text (not dvdoctor's)."""
        if not isinstance(data, dict):
            return None
        fields = [data.get(k) for k in ("namespace", "statefulset", "uid", "image")]
        if not all(isinstance(f, str) and f for f in fields):
            return None
        return cls(*fields)


@dataclass(frozen=True)
class Origin:
    """Where a backup came from, as far as its manifest tells."""

    kind: str  # THIS_INSTANCE, OTHER_INSTANCE or UNKNOWN
    #: For UNKNOWN: why it cannot be told.
    why: str = ""
    recorded: Identity | None = None


def engine_statefulset(facts: Facts) -> str:
    """The StatefulSet of dv-engine-0: a StatefulSet's pods are named `<statefulset>-<ordinal>`."""
    return facts.names.engine_pod.rsplit("-", 1)[0]


def live_identity(facts: Facts) -> Identity | None:
    """This namespace's DV instance, from its dv-engine StatefulSet; None when that is missing."""
    name = engine_statefulset(facts)
    sts = facts.get("statefulsets", name)
    uid = ((sts or {}).get("metadata") or {}).get("uid")
    if not uid:
        return None
    return Identity(facts.namespace, name, uid, k8s.pod_image(k8s.job_pod_spec(sts)) or "unknown")


def manifest(identity: Identity, backup: Backup, tarballs: tuple[str, ...], now: datetime) -> dict:
    """The manifest of a backup dvdoctor just took and proved: who took it, when, and its tarballs' sizes."""
    return {
        "schema": MANIFEST_SCHEMA,
        "backup": backup.timestamp,
        "instance": identity.to_json(),
        "dvdoctor_version": __version__,
        "written_at": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "tarballs": {n: backup.files[n] for n in tarballs if n in backup.files},
    }


def origin(backup: Backup, live: Identity | None) -> Origin:
    """Compare a backup's manifest with the live instance."""
    if backup.manifest is None:
        why = (f"its {MANIFEST_NAME} cannot be read ({backup.manifest_error})" if backup.manifest_error
               else f"it has no {MANIFEST_NAME} (taken by dvcli.sh or before dvdoctor)")
        return Origin(UNKNOWN, why)
    recorded = Identity.from_json(backup.manifest.get("instance"))
    if recorded is None:
        return Origin(UNKNOWN, f"its {MANIFEST_NAME} names no DV instance")
    if live is None:
        return Origin(UNKNOWN, "this namespace has no dv-engine StatefulSet to compare with", recorded)
    return Origin(THIS_INSTANCE if recorded.uid == live.uid else OTHER_INSTANCE, recorded=recorded)
