"""DV's own job is the owner, through the real Kubernetes client against tests/fakeapi.py: a dead
holder's lock is not taken over (nor broken) while a DV BAR job runs, and stopping a job waits
until the garbage collector has removed its pods before anything else happens.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dvdoctor.repair.audit import AuditLog
from dvdoctor.cluster.kube import KubeCluster
from dvdoctor.facts.model import Facts
from dvdoctor.cluster.lock import LEASE_NAME, Lock, micro_time
from dvdoctor.core.names import DEFAULT
from dvdoctor.repair.owner import BarJobActive, refuse_while_active_live
from dvdoctor.repair.plan import ActionFailed, Plan, Runner, StopJob, execute

from fakeapi import FakeApi

NS = "cpd30"
JOB = "dv-backup-job"


def running_job(api: FakeApi, minutes: int = 5, annotations: dict | None = None) -> None:
    started = datetime.now(timezone.utc) - timedelta(minutes=minutes)
    api.put("jobs", {"metadata": {"name": JOB, "annotations": annotations or {}},
                     "status": {"active": 1, "startTime": started.strftime("%Y-%m-%dT%H:%M:%SZ")}})
    api.put("pods", {"metadata": {"name": f"{JOB}-x7k2p", "labels": {"job-name": JOB}}, "status": {"phase": "Running"}})


def dead_lease(api: FakeApi, renewed_minutes_ago: int) -> dict:
    old = datetime.now(timezone.utc) - timedelta(minutes=renewed_minutes_ago)
    return api.put("leases", {"metadata": {"name": LEASE_NAME},
                              "spec": {"holderIdentity": "ops@bastion:4242", "leaseDurationSeconds": 60,
                                       "acquireTime": micro_time(old), "renewTime": micro_time(old)}})


def guard(cluster: KubeCluster, command: str):
    return lambda: refuse_while_active_live(cluster, DEFAULT.names, command)


def test_a_dead_holder_s_lock_is_not_taken_over_while_its_job_runs(api: FakeApi, cluster: KubeCluster) -> None:
    dead_lease(api, renewed_minutes_ago=10)
    running_job(api, annotations={"dvdoctor.io/started-by": "dvdoctor backup", "dvdoctor.io/run": "ops@bastion:4242"})
    with pytest.raises(BarJobActive) as err:
        Lock(cluster, "dvdoctor restore").acquire(guard=guard(cluster, "dvdoctor restore"))
    assert str(err.value).startswith("job dv-backup-job has been running for 5 min (started by `dvdoctor backup` of "
                                     "ops@bastion:4242; nobody is watching it): DV's own job owns namespace cpd30")
    assert api.stored("leases", LEASE_NAME)["spec"]["holderIdentity"] == "ops@bastion:4242"
    assert not api.requests_to("PATCH", "/leases/")  # not even tried

    api.remove("jobs", JOB)  # once the job has ended, the dead lock is taken over as before
    api.remove("pods", f"{JOB}-x7k2p")  # (its pod too: a pod at work without its Job owns the namespace as the job did)
    lock = Lock(cluster, "dvdoctor restore").acquire(guard=guard(cluster, "dvdoctor restore"))
    try:
        assert api.stored("leases", LEASE_NAME)["spec"]["holderIdentity"] == lock.me
    finally:
        lock.release()


def test_break_lock_does_not_break_it_under_a_running_job_either(api: FakeApi, cluster: KubeCluster) -> None:
    dead_lease(api, renewed_minutes_ago=0)  # a live holder
    running_job(api, minutes=90)  # dvcli.sh's, past its hour
    with pytest.raises(BarJobActive, match="started by dvcli.sh, a schedule or by hand; nobody is watching it"):
        Lock(cluster, "dvdoctor backup").acquire(break_lock=True, guard=guard(cluster, "dvdoctor backup"))
    assert api.stored("leases", LEASE_NAME)["spec"]["holderIdentity"] == "ops@bastion:4242"


def test_stop_job_waits_until_the_job_s_pods_are_gone(api: FakeApi, cluster: KubeCluster, tmp_path: Path) -> None:
    """The API deletes the Job at once; its pod terminates for a while (grace period): the stop waits for it."""
    running_job(api)
    pod = api.stored("pods", f"{JOB}-x7k2p")

    def terminating() -> None:  # the pod is still there after the delete, then goes
        while api.stored("jobs", JOB) is not None:
            time.sleep(0.01)
        api.put("pods", pod, event="MODIFIED")
        time.sleep(0.6)
        api.remove("pods", f"{JOB}-x7k2p")

    thread = threading.Thread(target=terminating)
    thread.start()
    facts = Facts({"namespace": NS, "collected_at": "2024-01-01T00:00:00Z", "source": {"kind": "cluster"}, "objects": {}})
    run = Runner(cluster, facts, AuditLog(tmp_path / "audit.jsonl"))
    started = time.monotonic()
    changes = execute(Plan("backup", [StopJob(JOB, "stop it", interval=0.05)]), run)
    thread.join()
    assert time.monotonic() - started >= 0.5
    assert [(c.what, c.after) for c in changes] == [(f"jobs/{JOB}", "deleted, its pods ended")]
    delete = api.requests_to("DELETE", f"/jobs/{JOB}$")[0]
    assert delete.query["propagationPolicy"] == ["Background"]


def test_stop_job_records_what_the_job_was_a_completed_one_too(api: FakeApi, cluster: KubeCluster,
                                                                tmp_path: Path) -> None:
    """The audit said "running" for any Job the stop deleted, a failed or completed one included."""
    api.put("jobs", {"metadata": {"name": JOB}, "status": {"failed": 6, "conditions": [
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}})
    facts = Facts({"namespace": NS, "collected_at": "2024-01-01T00:00:00Z", "source": {"kind": "cluster"}, "objects": {}})
    changes = execute(Plan("backup", [StopJob(JOB, "stop it", interval=0.05)]),
                      Runner(cluster, facts, AuditLog(tmp_path / "audit.jsonl")))
    assert [(c.what, c.before) for c in changes] == [(f"jobs/{JOB}", "failed")]
    running_job(api)
    api.remove("pods", f"{JOB}-x7k2p")
    changes = execute(Plan("backup", [StopJob(JOB, "stop it", interval=0.05)]),
                      Runner(cluster, facts, AuditLog(tmp_path / "audit.jsonl")))
    assert [(c.what, c.before) for c in changes] == [(f"jobs/{JOB}", "running")]


def test_stop_job_of_a_pod_without_its_job_deletes_that_pod_only_and_waits_for_it(
        api: FakeApi, cluster: KubeCluster, tmp_path: Path) -> None:
    """A backup pod at work after its Job object was deleted: the stop deletes the pod (no Job to
    delete), waits until it is gone, and leaves another pod of the name (a finished run's) alone."""
    api.put("pods", {"metadata": {"name": f"{JOB}-t4r00", "labels": {"job-name": JOB}}, "status": {"phase": "Running"}})
    api.put("pods", {"metadata": {"name": f"{JOB}-old01", "labels": {"job-name": JOB}}, "status": {"phase": "Succeeded"}})
    api.grace[f"{JOB}-t4r00"] = 0.4  # Terminating a while after the delete, then gone
    facts = Facts({"namespace": NS, "collected_at": "2024-01-01T00:00:00Z", "source": {"kind": "cluster"}, "objects": {}})
    started = time.monotonic()
    changes = execute(Plan("bar-job-unattended", [StopJob(JOB, "stop it", interval=0.05, pod=f"{JOB}-t4r00")]),
                      Runner(cluster, facts, AuditLog(tmp_path / "audit.jsonl")))
    assert time.monotonic() - started >= 0.4
    assert [(c.what, c.before, c.after) for c in changes] == [(f"pods/{JOB}-t4r00", "Running", "deleted, ended")]
    assert not api.requests_to("DELETE", "/jobs/")
    assert api.stored("pods", f"{JOB}-old01") is not None


def test_stop_job_gives_up_at_its_timeout_and_says_which_pods_remain(api: FakeApi, cluster: KubeCluster,
                                                                    tmp_path: Path) -> None:
    running_job(api)
    pod = api.stored("pods", f"{JOB}-x7k2p")
    pod["metadata"]["labels"] = {"job-name": JOB}
    facts = Facts({"namespace": NS, "collected_at": "2024-01-01T00:00:00Z", "source": {"kind": "cluster"}, "objects": {}})
    run = Runner(cluster, facts, AuditLog(tmp_path / "audit.jsonl"))

    class Stuck(StopJob):
        def apply(self, run):  # a finalizer keeps the pod: put it back right after the delete
            run.cluster.delete("jobs", self.name)
            api.put("pods", pod)
            return super().apply(run)

    with pytest.raises(ActionFailed, match=f"pods {JOB}-x7k2p are still there after 0 s"):
        execute(Plan("backup", [Stuck(JOB, "stop it", timeout=0.3, interval=0.05)]), run)


def test_stop_job_stops_only_the_run_it_was_planned_for(api: FakeApi, cluster: KubeCluster, tmp_path: Path) -> None:
    """Break-it review: a fix plans, then takes the lock, and a minute may pass between (a consent, an
    inspection pod). DV reuses its jobs' names, so the stop of an unattended backup must not hit the
    next run of dv-backup-job that someone started with dvcli.sh meanwhile."""
    running_job(api)
    planned = api.stored("jobs", JOB)["metadata"]["uid"]
    api.remove("jobs", JOB)
    running_job(api, minutes=0)  # the next run of the name, with its own uid
    api.stored("jobs", JOB)["metadata"]["uid"] = "uid-of-the-next-run"
    facts = Facts({"namespace": NS, "collected_at": "2024-01-01T00:00:00Z", "source": {"kind": "cluster"}, "objects": {}})
    with pytest.raises(ActionFailed, match="is another run than the one this plan was made for"):
        execute(Plan("bar-job-unattended", [StopJob(JOB, "stop it", interval=0.05, uid=planned)]),
                Runner(cluster, facts, AuditLog(tmp_path / "audit.jsonl")))
    assert api.stored("jobs", JOB) is not None and not api.requests_to("DELETE", "/jobs/")
    now = api.stored("jobs", JOB)["metadata"]["uid"]
    api.remove("pods", f"{JOB}-x7k2p")
    changes = execute(Plan("bar-job-unattended", [StopJob(JOB, "stop it", interval=0.05, uid=now)]),
                      Runner(cluster, facts, AuditLog(tmp_path / "audit.jsonl")))
    assert [(c.what, c.before) for c in changes] == [(f"jobs/{JOB}", "running")]
