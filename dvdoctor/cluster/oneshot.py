"""Run a shipped script once in a short-lived Job, the way the runbook uses its dv-test-job.

The Job carries activeDeadlineSeconds, so the cluster stops it if dvdoctor is killed; its
ttlSecondsAfterFinished only helps from Kubernetes 1.21 (before, the TTL controller is alpha and
off: OpenShift 4.5/4.6 drop the field), so dvdoctor removes its Jobs itself: each at the end of its
wait, and those earlier killed runs left (`sweep`) before it starts a new one. A pod that cannot
start never fails on its own, so the wait looks at why the pod is pending (not scheduled, image
pull, a pod creation refused by quota or a security context constraint) and gives up at once with
that reason instead of hanging until its deadline.
"""

from __future__ import annotations

import functools
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from . import k8s
from .port import Cluster, poll
from ..core.errors import ClusterError, Forbidden
from .lock import Holder, identity
from ..core.names import OWNED_LABEL, OWNED_VALUE

#: Waiting reasons after which a pod will not start without someone changing something.
STUCK_REASONS = k8s.STUCK_REASONS
#: Annotation naming the run (user@host:pid) that created a one-shot Job, so a later run can tell
#: a killed run's Job from one another live run still waits on.
CREATED_BY = "dvdoctor.io/created-by"
#: The purposes of dvdoctor's one-shot Jobs (app.kubernetes.io/component): what `sweep` may remove.
#: The scheduled CronJob's Jobs (component "schedule") are its own history, never swept.
PURPOSES = ("inspect", "fix")
#: Job-controller events that say a pod could not even be created (quota, security context constraint).
REFUSED_EVENTS = ("FailedCreate",)


@dataclass
class OneShotResult:
    job: str
    pod: str | None
    #: Succeeded | Failed | Stuck | Timeout
    outcome: str
    log: str
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "Succeeded"


def job_name(purpose: str) -> str:
    return f"dvdoctor-{purpose}-{secrets.token_hex(3)}"


def script_job(
    *,
    name: str,
    purpose: str,
    image: str,
    service_account: str,
    uid: int,
    script_text: str,
    args: list[str],
    env: dict[str, str],
    volumes: list[dict],
    mounts: list[dict],
    deadline_seconds: int = 300,
    ttl_seconds: int = 600,
) -> dict:
    """A Job manifest that runs a static script with values only in env and argv."""
    labels = {OWNED_LABEL: OWNED_VALUE, "app.kubernetes.io/component": purpose}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": dict(labels), "annotations": {CREATED_BY: identity()}},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline_seconds,
            "ttlSecondsAfterFinished": ttl_seconds,
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": service_account,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": uid},
                    "containers": [
                        {
                            "name": purpose,
                            "image": image,
                            "command": ["bash", "-c", script_text, f"dvdoctor-{purpose}", *args],
                            "env": [{"name": k, "value": v} for k, v in env.items()],
                            "volumeMounts": mounts,
                            "resources": {
                                "requests": {"cpu": "50m", "memory": "64Mi"},
                                # a whole core: reading a backup back is two gunzips in a row
                                "limits": {"cpu": "1", "memory": "256Mi"},
                            },
                        }
                    ],
                    "volumes": volumes,
                },
            },
        },
    }


def run_job(
    cluster: Cluster,
    manifest: dict,
    timeout: float = 180,
    progress: Callable[[str], None] | None = None,
) -> OneShotResult:
    """Create the Job, wait for its pod to finish, read its log, and delete the Job in every case."""
    name = manifest["metadata"]["name"]
    sweep(cluster, progress)
    cluster.create("jobs", manifest)
    try:
        return _wait(cluster, name, timeout, progress)
    finally:
        try:
            cluster.delete("jobs", name)  # background propagation: its pod goes with it
        except ClusterError as exc:
            if progress:
                progress(f"could not delete job {name} ({exc}); the next dvdoctor run removes it")


def _owned_one_shot(obj: dict) -> bool:
    labels = obj["metadata"].get("labels") or {}
    return labels.get(OWNED_LABEL) == OWNED_VALUE and labels.get("app.kubernetes.io/component") in PURPOSES


def abandoned(job: dict, now: datetime, host: str) -> str | None:
    """Why a dvdoctor one-shot Job is left over (finished, its run gone, past its deadline), or None."""
    if not _owned_one_shot(job):
        return None
    state = k8s.job_state(job)
    if state != "active":
        return state
    creator = k8s.annotations(job).get(CREATED_BY)
    if creator and Holder(creator, "", None, None, 0).gone_here(host):
        return f"its run {creator} is gone"
    started = k8s.started_at(job)
    deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
    try:
        began = datetime.fromisoformat(str(started).replace("Z", "+00:00"))
    except ValueError:
        return None
    if deadline is not None and now > began + timedelta(seconds=int(deadline) + 60):
        return f"past its deadline of {deadline} s"
    return None


#: Ports already swept in this process: one sweep per run.
_swept: set[int] = set()


def sweep(cluster: Cluster, progress: Callable[[str], None] | None = None) -> list[str]:
    """Delete the one-shot Jobs of earlier dvdoctor runs that ended or were abandoned (background
    propagation: their pods go too), and pods such Jobs left without a Job; once per run. Returns
    what it deleted.

    Nothing else removes them before Kubernetes 1.21 (no TTL controller), and a killed run never
    reaches its own delete. A Job another live run still waits on is left alone.
    """
    if id(cluster) in _swept:
        return []
    _swept.add(id(cluster))
    now, host = datetime.now(timezone.utc), socket.gethostname()
    deleted: list[str] = []
    try:
        selector = f"{OWNED_LABEL}={OWNED_VALUE}"
        jobs = cluster.list("jobs", label_selector=selector)
        gone = set()
        for job in jobs:
            why = abandoned(job, now, host)
            if why and cluster.delete("jobs", k8s.name(job)):
                gone.add(k8s.name(job))
                deleted.append(f"job/{k8s.name(job)} ({why})")
        kept = {k8s.name(j) for j in jobs} - gone
        for pod in cluster.list("pods", label_selector=selector):
            job = (pod["metadata"].get("labels") or {}).get("job-name")
            if _owned_one_shot(pod) and job not in kept and job not in gone and cluster.delete("pods", k8s.name(pod)):
                deleted.append(f"pod/{k8s.name(pod)} (its job {job or '(none)'} is gone)")
    except ClusterError as exc:
        if progress:
            progress(f"could not remove what earlier dvdoctor runs left: {exc}")
        return deleted
    if deleted and progress:
        progress(f"removed what earlier dvdoctor runs left: {', '.join(deleted)}")
    return deleted


def _refused(cluster: Cluster, job: str) -> str | None:
    """The job controller's FailedCreate message (quota, security context constraint), if any."""
    for event in cluster.list("events"):
        involved = event.get("involvedObject") or {}
        if involved.get("kind") == "Job" and involved.get("name") == job and event.get("reason") in REFUSED_EVENTS:
            return " ".join(str(event.get("message") or "").split())[:300]
    return None


def _wait(cluster: Cluster, name: str, timeout: float, progress: Callable[[str], None] | None) -> OneShotResult:
    deadline = time.monotonic() + timeout
    pod: dict | None = None
    step = 1.0  # look again soon at first: a reason to stop usually comes within a second or two
    follow: Callable[..., dict | None] = cluster.wait
    while True:
        left = deadline - time.monotonic()
        try:
            job = follow("jobs", name, lambda j: j is None or k8s.job_state(j) != "active", min(step, max(left, 0.0)))
        except Forbidden:
            if follow != cluster.wait:  # already reading: the role may not get jobs either
                raise
            # A role without watch on jobs (the dvdoctor-permissions check names it): the Job already
            # runs, and giving up now deletes it with its pod half-way (the probe's write test left on
            # the backup volume, a repair half-applied). It is followed by reading it instead.
            follow = functools.partial(poll, cluster)
            continue
        step = min(step * 2, 5.0)
        pods = cluster.list("pods", label_selector=f"job-name={name}")
        pod = pods[-1] if pods else pod
        pod_name = k8s.name(pod) if pod else None
        if job is None:
            return OneShotResult(name, pod_name, "Failed", "", "the job disappeared while running")
        state = k8s.job_state(job)
        if state != "active" or (pod and k8s.pod_phase(pod) in ("Succeeded", "Failed")):
            log = cluster.logs(pod_name) if pod_name else ""
            ok = state == "complete" or (pod is not None and k8s.pod_phase(pod) == "Succeeded")
            return OneShotResult(name, pod_name, "Succeeded" if ok else "Failed", log, k8s.job_failure(job) or "")
        if pod is not None:
            why = k8s.pending_reason(pod)
            if why:
                log = cluster.logs(pod_name) if k8s.pod_phase(pod) != "Pending" else ""
                return OneShotResult(name, pod_name, "Stuck", log, f"pod {pod_name} {why}")
            if progress:
                phase = k8s.pod_phase(pod)
                progress(f"waiting for pod {pod_name} to " + ("be scheduled and start" if phase == "Pending" else "finish")
                         + f" ({phase}; {max(0, int(deadline - time.monotonic()))} s left)")
        else:
            refused = _refused(cluster, name)
            if refused:
                return OneShotResult(name, None, "Stuck", "", f"job {name} cannot create its pod: {refused}")
            if progress:
                progress(f"waiting for job {name} to create its pod")
        if time.monotonic() >= deadline:
            reason = (k8s.pod_unschedulable(pod) if pod else None) or "still running"
            return OneShotResult(name, pod_name, "Timeout", cluster.logs(pod_name) if pod_name else "", reason)
