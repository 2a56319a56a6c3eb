"""What the API server itself decides: kinds, RBAC, label selectors, merge patches, immutable fields.

Kept apart from the controllers so each rule a real server enforces can be read in one place.
"""

from __future__ import annotations

import copy

from ..cluster import permissions
from ..core.units import parse_quantity
from ..core.errors import Conflict, Forbidden, Invalid, UsageError
from ..core.names import is_subdomain

#: plural -> (API group, apiVersion, Kind)
KIND_INFO: dict[str, tuple[str, str, str]] = {
    "pods": ("", "v1", "Pod"),
    "jobs": ("batch", "batch/v1", "Job"),
    "deployments": ("apps", "apps/v1", "Deployment"),
    "statefulsets": ("apps", "apps/v1", "StatefulSet"),
    "persistentvolumeclaims": ("", "v1", "PersistentVolumeClaim"),
    "serviceaccounts": ("", "v1", "ServiceAccount"),
    "events": ("", "v1", "Event"),
    "leases": ("coordination.k8s.io", "coordination.k8s.io/v1", "Lease"),
    "persistentvolumes": ("", "v1", "PersistentVolume"),
    "storageclasses": ("storage.k8s.io", "storage.k8s.io/v1", "StorageClass"),
    # written by `schedule --apply` only; the lab stores them and runs nothing on a schedule
    "cronjobs": ("batch", "batch/v1", "CronJob"),
    "roles": ("rbac.authorization.k8s.io", "rbac.authorization.k8s.io/v1", "Role"),
    "rolebindings": ("rbac.authorization.k8s.io", "rbac.authorization.k8s.io/v1", "RoleBinding"),
    "clusterroles": ("rbac.authorization.k8s.io", "rbac.authorization.k8s.io/v1", "ClusterRole"),
    "clusterrolebindings": ("rbac.authorization.k8s.io", "rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
}
CLUSTER_SCOPED = ("persistentvolumes", "storageclasses", "clusterroles", "clusterrolebindings")


def kind_info(kind: str) -> tuple[str, str, str]:
    try:
        return KIND_INFO[kind]
    except KeyError:
        raise UsageError(f"the lab has no kind {kind!r}; it knows {', '.join(KIND_INFO)}") from None


def full_rules() -> list[dict]:
    """Every kind the lab knows, cluster-scoped ones included: what a healthy lab grants (an admin's
    rights, so `schedule --apply` may create its ClusterRole; faults take rights away)."""
    by_group: dict[str, list[str]] = {}
    for kind, (group, _, _) in KIND_INFO.items():
        by_group.setdefault(group, []).append(kind)
    by_group[""] += ["pods/log", "pods/exec"]
    return [{"apiGroups": [g], "resources": sorted(r), "verbs": ["*"]} for g, r in sorted(by_group.items())]


def authorize(rules: list[dict], namespace: str, verb: str, kind: str, subresource: str | None = None) -> None:
    """Refuse what the lab's RBAC rules do not grant, with the API server's 403 wording."""
    group = KIND_INFO[kind][0]
    resource = f"{kind}/{subresource}" if subresource else kind
    if permissions.allows(rules, group, resource, verb):
        return
    where = "at the cluster scope" if kind in CLUSTER_SCOPED else f'in the namespace "{namespace}"'
    raise Forbidden(f'{resource} is forbidden: User "lab-user" cannot {verb} resource "{resource}" '
                    f'in API group "{group}" {where}')


def selector_matches(labels: dict, selector: str | None) -> bool:
    """Equality-based label selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a`, comma-separated."""
    if not selector:
        return True
    for term in (t.strip() for t in selector.split(",")):
        if not term:
            continue
        if "!=" in term:
            key, value = (s.strip() for s in term.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = (s.strip() for s in term.replace("==", "=").split("=", 1))
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


def check_precondition(kind: str, obj: dict, patch: dict) -> None:
    """A patch naming metadata.resourceVersion applies only to that version (optimistic concurrency): 409."""
    wanted = ((patch.get("metadata") or {}) if isinstance(patch, dict) else {}).get("resourceVersion")
    if wanted is not None and str(wanted) != str(obj["metadata"].get("resourceVersion")):
        raise Conflict(f'Operation cannot be fulfilled on {kind} "{obj["metadata"]["name"]}": the object has been '
                       "modified; please apply your changes to the latest version and try again")


def check_name(kind: str, body: dict) -> str:
    name = (body.get("metadata") or {}).get("name")
    if not is_subdomain(name):
        raise Invalid(f'{KIND_INFO[kind][2]} "{name}" is invalid: metadata.name: Invalid value: "{name}": '
                      "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'")
    return name


def check_job_patch(job: dict, merged: dict) -> None:
    """A Job's pod template is immutable once created."""
    if (job.get("spec") or {}).get("template") != (merged.get("spec") or {}).get("template"):
        raise Invalid(f'Job.batch "{job["metadata"]["name"]}" is invalid: spec.template: Invalid value: '
                      '"...": field is immutable')


def claim_request(pvc: dict) -> str | None:
    return (((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")


def check_claim_patch(pvc: dict, merged: dict, storage_class: dict | None) -> bool:
    """A bound claim's spec is immutable except a larger storage request, allowed only when its class
    says allowVolumeExpansion. Returns True when the claim grows."""
    name = pvc["metadata"]["name"]
    old_spec, new_spec = copy.deepcopy(pvc.get("spec") or {}), copy.deepcopy(merged.get("spec") or {})
    old_size, new_size = claim_request(pvc), claim_request(merged)
    for spec in (old_spec, new_spec):
        spec.get("resources", {}).get("requests", {}).pop("storage", None)
    if old_spec != new_spec:
        raise Invalid(f'PersistentVolumeClaim "{name}" is invalid: spec: Forbidden: spec is immutable after creation '
                      "except resources.requests for bound claims")
    if old_size == new_size:
        return False
    try:
        old_bytes, new_bytes = parse_quantity(old_size or "0"), parse_quantity(new_size or "0")
    except ValueError as exc:
        raise Invalid(f'PersistentVolumeClaim "{name}" is invalid: spec.resources.requests.storage: {exc}') from None
    if new_bytes < old_bytes:
        raise Invalid(f'PersistentVolumeClaim "{name}" is invalid: spec.resources.requests.storage: Forbidden: '
                      "field can not be less than previous value")
    if new_bytes > old_bytes and not (storage_class or {}).get("allowVolumeExpansion"):
        cls = (pvc.get("spec") or {}).get("storageClassName", "")
        raise Invalid(f'persistentvolumeclaims "{name}" is forbidden: only dynamically provisioned pvc can be resized '
                      f"and the storageclass that provisions the pvc must support resize (storage class {cls})")
    return new_bytes > old_bytes
