"""dvdoctor's short-lived pods on a real server with no nodes: a pod that cannot be scheduled is
reported at once with the scheduler's reason, and dvdoctor's Jobs are removed by dvdoctor, since
Kubernetes 1.20 drops ttlSecondsAfterFinished (the TTL controller is alpha and off before 1.21)."""

from __future__ import annotations

import json
import signal
import time

OWNED = "app.kubernetes.io/managed-by=dvdoctor"


def test_an_unschedulable_inspection_pod_is_reported_at_once_and_removed(dv):
    started = time.monotonic()
    result = dv.dvdoctor("check", "-o", "json", timeout=170)
    took = time.monotonic() - started
    report = result.json
    skipped = {r["id"]: r["reason"] for r in report["results"] if r["status"] == "skip"}
    assert "no nodes available to schedule pods" in skipped["bar-low-space"], skipped
    # "not scheduled: ..." is the stop at the scheduler's first word, not the end of the 180 s bound
    assert "not scheduled" in skipped["bar-low-space"], f"{skipped} after {took:.0f} s"
    # its Job is deleted with background propagation: the garbage collector takes the pod too
    dv.api.wait("dvdoctor's job and pod to be gone", lambda: not dv.api.list("Job", dv.name, OWNED)
                and not dv.api.list("Pod", dv.name, OWNED), timeout=30)


def test_a_pod_the_job_controller_cannot_create_is_reported_with_its_reason(dv):
    # as OpenShift refuses a pod no security context constraint admits: here a quota of no pods
    dv.api.create({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "no-pods"},
                   "spec": {"hard": {"pods": "0"}}}, dv.name)
    dv.api.wait("the quota to be counted", lambda: (dv.api.get("ResourceQuota", dv.name, "no-pods").get("status") or {}).get("used"))
    started = time.monotonic()
    result = dv.dvdoctor("check", "-o", "json", timeout=170)
    took = time.monotonic() - started
    reason = next(r["reason"] for r in result.json["results"] if r["id"] == "bar-low-space")
    assert "cannot create its pod" in reason and "exceeded quota" in reason, f"{reason} after {took:.0f} s"


def test_the_server_drops_the_ttl_so_the_next_run_removes_a_killed_runs_job(dv):
    run = dv.spawn("check", "-o", "json")
    job = dv.api.wait("the inspection job", lambda: dv.api.list("Job", dv.name, OWNED), timeout=60)[0]
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=10)
    name = job["metadata"]["name"]
    stored = dv.api.get("Job", dv.name, name)
    assert stored is not None
    assert "ttlSecondsAfterFinished" not in stored["spec"]  # Kubernetes 1.20 dropped it: nothing will remove it
    # `check --no-pod` changes nothing, and reports the killed run's job as a leftover
    report = dv.dvdoctor("check", "--no-pod", "-o", "json").json
    leftover = next(r for r in report["results"] if r["id"] == "leftover-bar-pods")
    assert leftover["status"] == "warn" and any(name in p["message"] for p in leftover["problems"]), json.dumps(leftover)
    assert dv.api.get("Job", dv.name, name) is not None
    # the next run that starts a job of its own removes it first, pods too
    dv.dvdoctor("check", "-o", "json", timeout=170)
    dv.api.wait(f"job {name} and its pod to be removed", lambda: dv.api.get("Job", dv.name, name) is None
                and not [p for p in dv.api.list("Pod", dv.name) if p["metadata"]["labels"].get("job-name") == name], timeout=30)


def test_a_pending_bar_pod_is_shown_with_its_reason_and_waited_for_until_the_bound(dv):
    from dvdoctor.cluster.kube import connect
    from dvdoctor.flows.jobs import watch_job

    template = dv.api.get("Job", dv.name, "dv-init-volume")["spec"]["template"]
    dv.api.create({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "dv-backup-job"},
                   "spec": {"backoffLimit": 0, "template": {"spec": template["spec"]}}}, dv.name)
    cluster = connect(str(dv.kubeconfig), None, dv.name)
    seen: list[tuple[str, float]] = []
    outcome = watch_job(cluster, "dv-backup-job", 8, lambda phase, pod, elapsed, last: seen.append((phase, elapsed)), 1.0)
    reasons = [(p, t) for p, t in seen if "not scheduled: no nodes available" in p]
    assert reasons, seen  # said while waiting, not only at the end
    assert outcome.outcome == "Timeout" and outcome.seconds >= 8, outcome  # DV's own job: the bound stays
