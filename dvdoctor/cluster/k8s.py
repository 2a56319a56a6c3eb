"""Pure readings of Kubernetes objects (as API dicts): is a pod ready, how did a job end; and the
API's JSON merge patch, as the lab and the tests' fake API server apply it.

Shared by checks, fixes and flows, so "ready" and "failed" mean one thing everywhere.
"""

from __future__ import annotations

import copy

from ..core.names import REPLICAS_ANNOTATION


def name(obj: dict) -> str:
    return obj["metadata"]["name"]


def uid(obj: dict | None) -> str | None:
    """The object's uid, None for no object: what tells one run of a reused name from the next."""
    return None if obj is None else obj["metadata"].get("uid")


def annotations(obj: dict) -> dict:
    return obj["metadata"].get("annotations") or {}


def recorded_replicas(dep: dict) -> int | None:
    """The count dvdoctor recorded before it scaled a deployment to 0, or None when it recorded none.

    Read by a check (was DV caching on before the backup?) as much as by the repairs that scale back.
    """
    value = annotations(dep).get(REPLICAS_ANNOTATION, "")
    return int(value) if value.isdigit() else None


def pod_phase(pod: dict) -> str:
    return (pod.get("status") or {}).get("phase", "Unknown")


def job_of_pod(pod: dict) -> tuple[str | None, str | None]:
    """The Job a pod belongs to, (name, uid): its `job-name` label (or the newer
    `batch.kubernetes.io/job-name`), else its owner reference; the uid from the owner reference."""
    labels = pod["metadata"].get("labels") or {}
    refs = [o for o in pod["metadata"].get("ownerReferences") or [] if o.get("kind") == "Job"]
    refs.sort(key=lambda o: not o.get("controller"))
    ref = refs[0] if refs else {}
    return labels.get("job-name") or labels.get("batch.kubernetes.io/job-name") or ref.get("name"), ref.get("uid")


def has_its_job(pod: dict, jobs: dict[str, dict]) -> bool:
    """Whether the pod's own Job object is among `jobs` (by name): one of its Job's name, and of its
    uid when the pod records one (DV reuses a Job's name every run, so a newer Job is not its own)."""
    name, uid = job_of_pod(pod)
    current = jobs.get(name) if name else None
    return current is not None and (uid is None or current["metadata"].get("uid") == uid)


def started_at(obj: dict) -> str | None:
    """When a Job or pod started: status.startTime, else its creation (one not started yet)."""
    return (obj.get("status") or {}).get("startTime") or (obj.get("metadata") or {}).get("creationTimestamp")


def pod_ready(pod: dict) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return pod_phase(pod) == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
    )


def container_statuses(pod: dict) -> list[dict]:
    status = pod.get("status") or {}
    return (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])


def waiting_reasons(pod: dict) -> list[str]:
    """Why containers are not running: CrashLoopBackOff, ImagePullBackOff, ... (may be empty)."""
    return [
        cs["state"]["waiting"].get("reason", "Waiting")
        for cs in container_statuses(pod)
        if (cs.get("state") or {}).get("waiting")
    ]


def restarts(pod: dict) -> int:
    return sum(cs.get("restartCount", 0) for cs in container_statuses(pod))


def pod_unschedulable(pod: dict) -> str | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("status") == "False":
            return c.get("message") or c.get("reason") or "unschedulable"
    return None


#: Waiting reasons after which a container will not start without someone changing something.
STUCK_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError",
                 "CreateContainerError", "CrashLoopBackOff")


def pending_reason(pod: dict) -> str | None:
    """Why a pod is not running yet, in the scheduler's or kubelet's words, once there is a reason.

    Not scheduled (no node fits, an unbound claim: the scheduler's FailedScheduling message is in
    the PodScheduled condition), or a container that cannot start (image pull, bad config).
    """
    unscheduled = pod_unschedulable(pod)
    if unscheduled:
        return f"not scheduled: {unscheduled}"
    for cs in container_statuses(pod):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in STUCK_REASONS:
            message = " ".join(str(waiting.get("message") or "").split())[:200]
            return f"{waiting['reason']}" + (f": {message}" if message else "")
    return None


def job_state(job: dict) -> str:
    """complete | failed | active: read from conditions, which is where a Job says how it ended."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("status") != "True":
            continue
        if c.get("type") in ("Complete", "SuccessCriteriaMet"):
            return "complete"
        if c.get("type") in ("Failed", "FailureTarget"):
            return "failed"
    return "active"


def job_failure(job: dict) -> str | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Failed" and c.get("status") == "True":
            return f"{c.get('reason', 'Failed')}: {c.get('message', '')}".rstrip(": ")
    return None


def spec_replicas(obj: dict) -> int:
    return int((obj.get("spec") or {}).get("replicas", 1))


def ready_replicas(obj: dict) -> int:
    return int((obj.get("status") or {}).get("readyReplicas", 0) or 0)


def pod_image(spec: dict) -> str | None:
    """The first container's image of a pod spec (a job's template spec or a pod's spec)."""
    containers = spec.get("containers") or []
    return containers[0].get("image") if containers else None


def job_pod_spec(job: dict) -> dict:
    return ((job.get("spec") or {}).get("template") or {}).get("spec") or {}


def run_as_user(pod_spec: dict) -> int | None:
    """The uid a pod spec runs as: the first container's setting wins over the pod's."""
    for c in pod_spec.get("containers") or []:
        uid = (c.get("securityContext") or {}).get("runAsUser")
        if uid is not None:
            return int(uid)
    uid = (pod_spec.get("securityContext") or {}).get("runAsUser")
    return int(uid) if uid is not None else None


def job_finished_at(job: dict) -> str | None:
    """When a Job ended: completionTime for a success, else the time its terminal condition turned True."""
    status = job.get("status") or {}
    if status.get("completionTime"):
        return status["completionTime"]
    for c in status.get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return c.get("lastTransitionTime")
    return None


def owner(obj: dict, kind: str) -> str | None:
    """The name of the controller (or first owner) of this kind, from ownerReferences."""
    refs = [o for o in obj["metadata"].get("ownerReferences") or [] if o.get("kind") == kind]
    refs.sort(key=lambda o: not o.get("controller"))
    return refs[0].get("name") if refs else None


def merge_patch(target: object, patch: object) -> object:
    """RFC 7386 JSON merge patch: objects merge key by key, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out
