"""DV's own BAR jobs: built from DV's templates by structured edits, then watched until they end.

dvcli.sh copies the templates out of dv-engine-0 and patches them with sed (GNU or BSD, never
both) after grepping a hard-coded image version. Here the template is parsed YAML: every container
gets the dv-init-volume Job's image, and a restore picks its backup by rewriting the env value
DV's template gives as `dv_backup.tar.gz`.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Callable

from ..facts.dv_templates import SERVER_FIELDS, bar_image, template_object
from ..cluster import k8s, oneshot
from ..cluster.lock import identity
from ..cluster.port import Cluster
from ..core.errors import UsageError
from ..facts.model import SECTION_ENGINE, Facts
from ..core.names import RUN_ANNOTATION, STARTED_BY_ANNOTATION
from ..facts.signatures import Match, match_log
from . import checkpoints

def job_from_template(facts: Facts, template: str, started_by: str) -> dict:
    """DV's job template with the BAR image set; UsageError naming what is missing otherwise."""
    names = facts.names
    facts.require(SECTION_ENGINE)
    body = template_object(facts, template)
    if body is None:
        raise UsageError(f"{names.engine_pod}:{names.template_dir}/{template} is missing or not YAML (check bar-templates-missing)")
    image = bar_image(facts)
    if image is None:
        raise UsageError(f"job {names.init_volume_job} is missing, so the image that runs DV's BAR is unknown")
    job = copy.deepcopy(body)
    meta = job.setdefault("metadata", {})
    for key in SERVER_FIELDS:
        meta.pop(key, None)
    # who started it: a job whose run is gone (killed) is then told from one a live run watches
    meta.setdefault("annotations", {}).update({STARTED_BY_ANNOTATION: started_by, RUN_ANNOTATION: identity()})
    spec = k8s.job_pod_spec(job)
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        container["image"] = image
    return job


def select_backup(job: dict, timestamp: str, symlink: str, combined: str) -> int:
    """Point a restore job at one backup: every env value equal to the symlink's name becomes TS/combined."""
    changed = 0
    spec = k8s.job_pod_spec(job)
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for env in container.get("env") or []:
            if env.get("value") == symlink:
                env["value"] = f"{timestamp}/{combined}"
                changed += 1
    if not changed:
        raise UsageError(f"DV's restore template has no env value {symlink!r} to point at backup {timestamp}")
    return changed


@dataclass
class JobOutcome:
    #: Complete | Failed | Stuck | Timeout | Interrupted
    outcome: str
    pod: str | None = None
    reason: str = ""
    log: str = ""
    matches: list[Match] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome == "Complete"


def watch_job(
    cluster: Cluster,
    name: str,
    timeout: float,
    show: Callable[[str, str, float, str], None],
    interval: float = 2.0,
) -> JobOutcome:
    """Follow a job until it ends, fails, or cannot succeed; never sit out a known failure.

    Stops at once on a Failed condition, on a pod that cannot start, and on a failed or restarted
    pod whose log matches a known failure signature (the job would only retry into the same wall).
    `show(phase, pod, elapsed, last_line)` is called on every look; a pod that is not running yet has
    its reason in `phase` ("Pending: not scheduled: 0/3 nodes are available: ...") as soon as the
    scheduler or kubelet gives one. It is DV's own job: it is waited for until `timeout`, since a
    node may yet come.
    """
    checkpoints.reached("job-running")
    started = time.monotonic()
    pod_name: str | None = None
    while True:
        elapsed = time.monotonic() - started
        job = cluster.wait("jobs", name, lambda j: j is None or k8s.job_state(j) != "active", min(interval, max(timeout - elapsed, 0)))
        pods = sorted(cluster.list("pods", label_selector=f"job-name={name}"),
                      key=lambda p: p["metadata"].get("creationTimestamp", ""))
        pod = pods[-1] if pods else None
        pod_name = k8s.name(pod) if pod else pod_name
        log = cluster.logs(pod_name, tail_lines=200) if pod_name else ""
        last = next((line for line in reversed(log.splitlines()) if line.strip()), "")
        elapsed = time.monotonic() - started
        if job is None:
            return JobOutcome("Failed", pod_name, f"job {name} was deleted while running", log, match_log(log), elapsed)
        state = k8s.job_state(job)
        if state != "active":
            phase = state
        elif pod is None:
            phase = "Pending: waiting for the job controller to create its pod"
        else:
            why = k8s.pending_reason(pod)  # not scheduled, image pull...: said at once, the bound stays
            phase = f"{k8s.pod_phase(pod)}: {why}" if why else k8s.pod_phase(pod)
        show(phase, pod_name or "", elapsed, last)
        if state == "complete":
            return JobOutcome("Complete", pod_name, "", log, [], elapsed)
        if state == "failed":
            return JobOutcome("Failed", pod_name, k8s.job_failure(job) or "failed", log, match_log(log), elapsed)
        failed_pods = [p for p in pods if k8s.pod_phase(p) == "Failed" or k8s.restarts(p) > 0]
        if failed_pods:
            failed_log = cluster.logs(k8s.name(failed_pods[-1]), tail_lines=200)
            matches = match_log(failed_log)
            if matches:
                return JobOutcome("Failed", k8s.name(failed_pods[-1]), "the pod failed with a known error; retrying cannot help",
                                  failed_log, matches, elapsed)
        if pod is not None:
            stuck = [r for r in k8s.waiting_reasons(pod) if r in oneshot.STUCK_REASONS]
            if stuck:
                return JobOutcome("Stuck", pod_name, f"pod {pod_name}: {stuck[0]}", log, match_log(log), elapsed)
        if elapsed >= timeout:
            why = (k8s.pod_unschedulable(pod) if pod else None) or f"still running after {timeout:.0f} s"
            return JobOutcome("Timeout", pod_name, why, log, match_log(log), elapsed)
