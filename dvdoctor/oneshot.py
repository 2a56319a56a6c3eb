"""Run a shipped script once in a short-lived Job, the way the runbook uses its dv-test-job.

The Job carries activeDeadlineSeconds and ttlSecondsAfterFinished, so if dvdoctor is killed the
cluster stops and removes it by itself; normally dvdoctor deletes it as soon as it has the log.
A pod that cannot start (image pull, scheduling, config) never fails on its own, so the wait
looks at the pod's waiting reason and gives up with that reason instead of hanging.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Callable

from . import k8s
from .cluster.port import Cluster
from .errors import ClusterError
from .names import OWNED_LABEL, OWNED_VALUE

#: Waiting reasons after which a pod will not start without someone changing something.
STUCK_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError",
                 "CreateContainerError", "CrashLoopBackOff")


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
        "metadata": {"name": name, "labels": dict(labels)},
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
    cluster.create("jobs", manifest)
    try:
        return _wait(cluster, name, timeout, progress)
    finally:
        try:
            cluster.delete("jobs", name)
        except ClusterError:
            pass  # the Job's TTL and deadline remove it anyway


def _wait(cluster: Cluster, name: str, timeout: float, progress: Callable[[str], None] | None) -> OneShotResult:
    deadline = time.monotonic() + timeout
    pod: dict | None = None
    while True:
        left = deadline - time.monotonic()
        job = cluster.wait("jobs", name, lambda j: j is None or k8s.job_state(j) != "active", min(5.0, max(left, 0.0)))
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
            stuck = [r for r in k8s.waiting_reasons(pod) if r in STUCK_REASONS]
            if stuck:
                return OneShotResult(name, pod_name, "Stuck", cluster.logs(pod_name), f"pod {pod_name}: {stuck[0]}")
            if progress:
                progress(f"{pod_name}: {k8s.pod_phase(pod)}")
        if time.monotonic() >= deadline:
            reason = (k8s.pod_unschedulable(pod) if pod else None) or "still running"
            return OneShotResult(name, pod_name, "Timeout", cluster.logs(pod_name) if pod_name else "", reason)
