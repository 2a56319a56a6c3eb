"""dvdoctor's namespace lock (a Lease) and its watches on a real server: a second run refuses, a
dead or expired holder is taken over, the Lease is renewed, and waits follow watch events."""

from __future__ import annotations

import getpass
import socket
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from dvdoctor.cluster.kube import connect
from dvdoctor.cluster.lock import LEASE_NAME, Lock, micro_time

SIDE = ("dv-caching", "dv-api", "dv-unified-console")


@pytest.fixture
def cluster(dv):
    return connect(str(dv.kubeconfig), None, dv.name)


def scale_down(dv) -> None:
    for name in SIDE:
        dv.api.patch("Deployment", dv.name, name, {"metadata": {"annotations": {"dvdoctor.io/original-replicas": "1"}},
                                                   "spec": {"replicas": 0}})


def replicas(dv) -> list[int]:
    return [dv.api.get("Deployment", dv.name, n)["spec"]["replicas"] for n in SIDE]


def lease(dv, holder: str, renewed: datetime, seconds: int = 60) -> None:
    dv.api.create({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                   "metadata": {"name": LEASE_NAME, "annotations": {"dvdoctor.io/command": "dvdoctor backup"}},
                   "spec": {"holderIdentity": holder, "leaseDurationSeconds": seconds,
                            "acquireTime": micro_time(renewed), "renewTime": micro_time(renewed)}}, dv.name)


def fix(dv, *extra: str, process: bool = False):
    return dv.dvdoctor("fix", "--issue", "side-deployments-left-down", "--yes", *extra, timeout=300, process=process)


def test_a_second_run_refuses_while_the_lock_is_held_and_runs_after(dv, cluster):
    scale_down(dv)
    held = Lock(cluster, "dvdoctor backup (test)").acquire()
    try:
        stored = dv.api.get("Lease", dv.name, LEASE_NAME)
        assert stored["apiVersion"] == "coordination.k8s.io/v1" and stored["spec"]["holderIdentity"] == held.me
        refused = fix(dv, process=True)  # another process than the holder (this one)
        assert refused.rc != 0 and "is locked by" in refused.output and held.me in refused.output, refused.output
        assert replicas(dv) == [0, 0, 0]
    finally:
        held.release()
    assert dv.api.get("Lease", dv.name, LEASE_NAME) is None
    done = fix(dv)
    assert done.rc == 0, done.output
    assert replicas(dv) == [1, 1, 1]
    assert dv.api.get("Lease", dv.name, LEASE_NAME) is None  # released at the end


def test_a_holder_whose_process_is_gone_on_this_host_is_taken_over(dv):
    scale_down(dv)
    gone = subprocess.Popen(["true"])
    gone.wait()
    lease(dv, f"{getpass.getuser()}@{socket.gethostname()}:{gone.pid}", datetime.now(timezone.utc))
    report = dv.dvdoctor("check", "--no-pod", "--only", "stale-dvdoctor-lock", "-o", "json")
    assert report.json["results"][0]["status"] in ("warn", "fail"), report.output
    result = fix(dv)
    assert result.rc == 0 and "taking over the lock" in result.output, result.output
    assert replicas(dv) == [1, 1, 1]


def test_an_expired_holder_elsewhere_is_taken_over_a_live_one_only_with_break_lock(dv):
    scale_down(dv)
    lease(dv, "alice@elsewhere:4242", datetime.now(timezone.utc) - timedelta(minutes=5))
    result = fix(dv)
    assert result.rc == 0 and "taking over the lock" in result.output, result.output
    scale_down(dv)
    lease(dv, "bob@elsewhere:4343", datetime.now(timezone.utc))
    refused = fix(dv)
    assert refused.rc != 0 and "bob@elsewhere:4343" in refused.output, refused.output
    broken = fix(dv, "--break-lock")
    assert broken.rc == 0 and "--break-lock" in broken.output, broken.output
    assert replicas(dv) == [1, 1, 1]


def test_the_holder_renews_its_lease(dv, cluster):
    held = Lock(cluster, "dvdoctor restore (test)", seconds=4).acquire()
    try:
        first = dv.api.get("Lease", dv.name, LEASE_NAME)["spec"]["renewTime"]
        dv.api.wait("the lease to be renewed", lambda: dv.api.get("Lease", dv.name, LEASE_NAME)["spec"]["renewTime"] != first,
                    timeout=10)
    finally:
        held.release()


def test_a_wait_follows_watch_events(dv, cluster):
    def later():
        time.sleep(1.0)
        dv.api.patch("Deployment", dv.name, "dv-api", {"spec": {"replicas": 3}})

    threading.Thread(target=later, daemon=True).start()
    before = cluster.request_count
    started = time.monotonic()
    seen = cluster.wait("deployments", "dv-api", lambda d: d is not None and d["spec"]["replicas"] == 3, timeout=20)
    assert seen["spec"]["replicas"] == 3, f"after {time.monotonic() - started:.1f} s"
    assert cluster.request_count - before <= 3  # one list and one watch, not a poll


def test_two_takeovers_of_the_same_dead_lock_one_wins_by_the_resource_version(dv, cluster):
    from dvdoctor.cluster.lock import LockHeld

    lease(dv, "alice@elsewhere:4242", datetime.now(timezone.utc) - timedelta(minutes=5))
    judged = dv.api.get("Lease", dv.name, LEASE_NAME)  # both runs judged this version dead
    now = datetime.now(timezone.utc)
    Lock(cluster, "dvdoctor backup (first)")._take_over(judged, now)
    with pytest.raises(LockHeld, match="at the same moment"):
        Lock(cluster, "dvdoctor restore (second)")._take_over(judged, now)  # the server answers 409
    stored = dv.api.get("Lease", dv.name, LEASE_NAME)
    assert stored["metadata"]["annotations"]["dvdoctor.io/command"] == "dvdoctor backup (first)"
