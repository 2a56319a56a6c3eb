"""The status blocks the API server and kubelet write, built the way `oc get -o json` shows them.

Checks and flows read pods and jobs only through these fields (phase, conditions, container
states, job conditions), so the lab writes them in exactly that shape.
"""

from __future__ import annotations

from .store import now_iso


def _condition(kind: str, status: bool, reason: str | None = None, message: str | None = None) -> dict:
    c = {"type": kind, "status": "True" if status else "False", "lastProbeTime": None, "lastTransitionTime": now_iso()}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def _container(container: dict, state: dict, ready: bool, restarts: int = 0) -> dict:
    return {"name": container["name"], "image": container.get("image", ""), "imageID": "", "ready": ready,
            "restartCount": restarts, "started": "running" in state, "state": state}


def running(spec: dict, started: str | None = None, ready: bool = True) -> dict:
    started = started or now_iso()
    return {
        "phase": "Running",
        "startTime": started,
        "hostIP": "10.0.0.1",
        "podIP": "10.128.0.10",
        "conditions": [_condition("Initialized", True), _condition("Ready", ready),
                       _condition("ContainersReady", ready), _condition("PodScheduled", True)],
        "containerStatuses": [_container(c, {"running": {"startedAt": started}}, ready) for c in spec["containers"]],
    }


def crash_looping(spec: dict, restarts: int, message: str) -> dict:
    """Running but not Ready: the container keeps dying and the kubelet backs off restarting it."""
    status = running(spec, ready=False)
    status["containerStatuses"] = [
        _container(c, {"waiting": {"reason": "CrashLoopBackOff",
                                   "message": f"back-off 5m0s restarting failed container={c['name']}"}}, False, restarts)
        | {"lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": message,
                                        "finishedAt": now_iso()}}}
        for c in spec["containers"]
    ]
    for cond in status["conditions"]:
        if cond["type"] in ("Ready", "ContainersReady"):
            cond["reason"] = "ContainersNotReady"
            cond["message"] = f"containers with unready status: [{spec['containers'][0]['name']}]"
    return status


def terminated(spec: dict, started: str | None, rc: int, reason: str | None = None) -> dict:
    """A finished pod: Succeeded on exit code 0, else Failed; `reason` (DeadlineExceeded) when killed for it."""
    now = now_iso()
    state = {"terminated": {"exitCode": rc, "reason": "Completed" if rc == 0 else "Error",
                            "startedAt": started or now, "finishedAt": now}}
    status = {
        "phase": "Succeeded" if rc == 0 else "Failed",
        "startTime": started or now,
        "hostIP": "10.0.0.1",
        "conditions": [_condition("Initialized", True, "PodCompleted"), _condition("Ready", False, "PodCompleted"),
                       _condition("ContainersReady", False, "PodCompleted"), _condition("PodScheduled", True)],
        "containerStatuses": [_container(c, state, False) for c in spec["containers"]],
    }
    if reason:
        status["reason"] = reason
        status["message"] = "Pod was active on the node longer than the specified deadline"
    return status


def unschedulable(message: str) -> dict:
    """A pod the scheduler cannot place (a missing or unbound claim): Pending for ever, never Failed."""
    return {"phase": "Pending", "conditions": [_condition("PodScheduled", False, "Unschedulable", message)]}


def image_pull(spec: dict, reason: str, message: str) -> dict:
    """A pod whose image cannot be pulled: Pending with ErrImagePull, then ImagePullBackOff."""
    status = {
        "phase": "Pending",
        "startTime": now_iso(),
        "hostIP": "10.0.0.1",
        "conditions": [_condition("Initialized", True),
                       _condition("Ready", False, "ContainersNotReady", "containers with unready status"),
                       _condition("ContainersReady", False, "ContainersNotReady"), _condition("PodScheduled", True)],
        "containerStatuses": [_container(c, {"waiting": {"reason": reason, "message": message}}, False)
                              for c in spec["containers"]],
    }
    return status


def job_condition(kind: str, reason: str | None = None, message: str | None = None) -> dict:
    return _condition(kind, True, reason, message)
