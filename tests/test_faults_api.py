"""The API misbehaving, through the real client against tests/fakeapi.py: 429/5xx, dropped
connections, a dropped watch, 401/403, a 409 on dvdoctor's own scale patch, and the lock's Lease.
Every one either recovers within a bound or ends as one line (CLI exit 2), never a traceback.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dvdoctor.repair.audit import AuditLog
from dvdoctor.cli import run
from dvdoctor.cluster import kube
from dvdoctor.cluster.kube import MAX_TRIES, KubeCluster, connect
from dvdoctor.core.errors import Forbidden, Unreachable
from dvdoctor.facts.model import Facts
from dvdoctor.cluster.lock import COMMAND_ANNOTATION, LEASE_NAME, Lock, LockHeld, micro_time
from dvdoctor.core.names import REPLICAS_ANNOTATION
from dvdoctor.repair.plan import ActionFailed, Runner, Scale, SCALE_TRIES

from fakeapi import FakeApi

NS = "cpd30"
LEASES = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases"


def runner(cluster: KubeCluster, tmp_path: Path) -> Runner:
    facts = Facts({"namespace": NS, "collected_at": "2024-01-01T00:00:00Z", "source": {"kind": "cluster"},
                   "objects": {}})
    return Runner(cluster, facts, AuditLog(tmp_path / "audit.jsonl"))


# -- retries -------------------------------------------------------------------------------------------


def test_dropped_connection_on_a_read_is_retried(api: FakeApi, cluster: KubeCluster) -> None:
    api.put("pods", {"metadata": {"name": "dv-engine-0"}})
    api.fail("GET", "/pods$", 0, times=MAX_TRIES - 1)
    assert [p["metadata"]["name"] for p in cluster.list("pods")] == ["dv-engine-0"]
    assert len(api.requests_to("GET", "/pods$")) == MAX_TRIES


def test_connection_dropped_every_time_ends_as_one_line_after_the_bound(api: FakeApi, cluster: KubeCluster) -> None:
    api.fail("GET", "/jobs$", 0, times=100)
    started = time.monotonic()
    with pytest.raises(Unreachable) as err:
        cluster.list("jobs")
    assert time.monotonic() - started < 5
    assert len(api.requests_to("GET", "/jobs$")) == MAX_TRIES
    assert str(err.value).endswith("to list jobs in namespace cpd30: the connection dropped")
    assert "\n" not in str(err.value)


def test_dropped_create_is_repeated_within_the_bound(api: FakeApi, cluster: KubeCluster) -> None:
    api.fail("POST", "/jobs$", 0, times=MAX_TRIES + 2)
    with pytest.raises(Unreachable, match="the connection dropped"):
        cluster.create("jobs", {"metadata": {"name": "dvdoctor-inspect-1a2b3c"}})
    assert len(api.requests_to("POST", "/jobs$")) == MAX_TRIES


def test_503_then_success_on_a_patch(api: FakeApi, cluster: KubeCluster) -> None:
    api.put("deployments", {"metadata": {"name": "dv-api"}, "spec": {"replicas": 1}})
    api.fail("PATCH", "/deployments/dv-api$", 503, "the server is currently unable to handle the request", times=2)
    assert cluster.patch("deployments", "dv-api", {"spec": {"replicas": 0}})["spec"]["replicas"] == 0
    assert len(api.requests_to("PATCH", "/deployments/dv-api$")) == 3


def test_a_dropped_watch_is_resumed(api: FakeApi, cluster: KubeCluster) -> None:
    api.put("jobs", {"metadata": {"name": "dv-backup-job"}, "status": {"active": 1}})
    api.drop_next_watch = True

    def finish() -> None:
        time.sleep(0.5)
        api.put("jobs", {"metadata": {"name": "dv-backup-job"},
                         "status": {"conditions": [{"type": "Complete", "status": "True"}]}}, event="MODIFIED")

    threading.Thread(target=finish, daemon=True).start()
    job = cluster.wait("jobs", "dv-backup-job", lambda j: bool(j and j["status"].get("conditions")), timeout=10)
    assert job["status"]["conditions"][0]["type"] == "Complete"
    watches = [r for r in api.requests_to("GET", "/jobs$") if r.query.get("watch")]
    assert len(watches) >= 2  # the dropped one, then the resumed one


# -- 401 / 403 -------------------------------------------------------------------------------------------


def test_forbidden_lease_names_the_missing_permission(api: FakeApi, cluster: KubeCluster) -> None:
    user = "system:serviceaccount:cpd30:dvdoctor"
    api.fail("POST", "/leases$", 403, f'leases.coordination.k8s.io is forbidden: User "{user}" cannot create resource '
                                      f'"leases" in API group "coordination.k8s.io" in the namespace "{NS}"')
    with pytest.raises(Forbidden) as err:
        Lock(cluster, "dvdoctor backup").acquire()
    assert str(err.value) == f"forbidden: cannot create leases/{LEASE_NAME} in namespace {NS} (as {user})"


# -- 409 on dvdoctor's own patch ---------------------------------------------------------------------------


def test_scale_conflict_rereads_and_retries(api: FakeApi, cluster: KubeCluster, tmp_path: Path) -> None:
    api.put("deployments", {"metadata": {"name": "dv-api"}, "spec": {"replicas": 1}})
    api.fail("PATCH", "/deployments/dv-api$", 409, "the object has been modified", times=1)
    changes = Scale("dv-api", 0).apply(runner(cluster, tmp_path))
    assert [(c.before, c.after) for c in changes] == [("1", "0")]
    stored = api.stored("deployments", "dv-api")
    assert stored["spec"]["replicas"] == 0
    assert stored["metadata"]["annotations"][REPLICAS_ANNOTATION] == "1"
    assert len(api.requests_to("GET", "/deployments/dv-api$")) == 2  # read, conflict, read again


def test_scale_patch_carries_the_version_it_read(api: FakeApi, cluster: KubeCluster, tmp_path: Path) -> None:
    """Someone scales dv-api to 3 between dvdoctor's read and its patch: the recorded count is 3, not 1."""
    api.put("deployments", {"metadata": {"name": "dv-api"}, "spec": {"replicas": 1}})
    real_get = cluster.get
    raced = []

    def get_then_race(kind: str, name: str) -> dict | None:
        obj = real_get(kind, name)
        if not raced:
            raced.append(True)
            api.put("deployments", {"metadata": {"name": "dv-api"}, "spec": {"replicas": 3}}, event="MODIFIED")
        return obj

    cluster.get = get_then_race  # type: ignore[method-assign]
    Scale("dv-api", 0).apply(runner(cluster, tmp_path))
    assert api.stored("deployments", "dv-api")["metadata"]["annotations"][REPLICAS_ANNOTATION] == "3"


def test_scale_gives_up_after_a_bound_of_conflicts(api: FakeApi, cluster: KubeCluster, tmp_path: Path) -> None:
    api.put("deployments", {"metadata": {"name": "dv-api"}, "spec": {"replicas": 1}})
    api.fail("PATCH", "/deployments/dv-api$", 409, "the object has been modified", times=100)
    with pytest.raises(ActionFailed, match=f"{SCALE_TRIES} conflicts in a row"):
        Scale("dv-api", 0).apply(runner(cluster, tmp_path))
    assert len(api.requests_to("PATCH", "/deployments/dv-api$")) == SCALE_TRIES


# -- the lock's Lease on a real API path ------------------------------------------------------------------


def test_lock_creates_renews_and_releases_its_lease(api: FakeApi, cluster: KubeCluster) -> None:
    lock = Lock(cluster, "dvdoctor backup --yes").acquire()
    try:
        create = api.requests_to("POST", f"{LEASES}$")[-1].json()
        assert create["apiVersion"] == "coordination.k8s.io/v1" and create["kind"] == "Lease"
        assert create["spec"]["holderIdentity"] == lock.me
        assert create["spec"]["leaseDurationSeconds"] == lock.seconds
        assert create["metadata"]["annotations"][COMMAND_ANNOTATION] == "dvdoctor backup --yes"
        first = api.stored("leases", LEASE_NAME)["spec"]["renewTime"]
        time.sleep(0.01)
        assert lock.renew()
        assert api.stored("leases", LEASE_NAME)["spec"]["renewTime"] > first
    finally:
        lock.release()
    assert api.stored("leases", LEASE_NAME) is None
    assert api.requests_to("DELETE", f"{LEASES}/{LEASE_NAME}$")


def test_second_run_refuses_with_holder_command_and_time(api: FakeApi, cluster: KubeCluster) -> None:
    now = datetime.now(timezone.utc)
    api.put("leases", {"metadata": {"name": LEASE_NAME, "annotations": {COMMAND_ANNOTATION: "dvdoctor restore"}},
                       "spec": {"holderIdentity": "ops@bastion:4242", "leaseDurationSeconds": 60,
                                "acquireTime": micro_time(now), "renewTime": micro_time(now)}})
    with pytest.raises(LockHeld) as err:
        Lock(cluster, "dvdoctor backup").acquire()
    text = str(err.value)
    assert "ops@bastion:4242 running `dvdoctor restore` since " + now.strftime("%Y-%m-%dT%H:%M:%S") in text
    assert "--break-lock" in text and "\n" not in text
    assert api.stored("leases", LEASE_NAME)["spec"]["holderIdentity"] == "ops@bastion:4242"


def test_expired_lease_is_taken_over_only_at_the_version_judged(api: FakeApi, cluster: KubeCluster) -> None:
    old = datetime.now(timezone.utc) - timedelta(minutes=10)
    api.put("leases", {"metadata": {"name": LEASE_NAME},
                       "spec": {"holderIdentity": "ops@bastion:4242", "leaseDurationSeconds": 60,
                                "acquireTime": micro_time(old), "renewTime": micro_time(old)}})
    warnings: list[str] = []
    lock = Lock(cluster, "dvdoctor prune", warn=warnings.append).acquire()
    try:
        assert api.stored("leases", LEASE_NAME)["spec"]["holderIdentity"] == lock.me
        patch = api.requests_to("PATCH", f"{LEASES}/{LEASE_NAME}$")[-1].json()
        assert patch["metadata"]["resourceVersion"]
        assert warnings and "its holder is gone" in warnings[0]
    finally:
        lock.release()


def test_break_lock_takes_a_live_lock_and_says_what_it_risks(api: FakeApi, cluster: KubeCluster) -> None:
    now = datetime.now(timezone.utc)
    api.put("leases", {"metadata": {"name": LEASE_NAME},
                       "spec": {"holderIdentity": "ops@bastion:4242", "leaseDurationSeconds": 60,
                                "acquireTime": micro_time(now), "renewTime": micro_time(now)}})
    warnings: list[str] = []
    lock = Lock(cluster, "dvdoctor backup", warn=warnings.append).acquire(break_lock=True)
    lock.release()
    assert "--break-lock" in warnings[0] and "both runs" in warnings[0]


def test_two_takeovers_at_once_one_wins(api: FakeApi, cluster: KubeCluster) -> None:
    """The loser's patch names a version that is gone: 409, and it refuses instead of sharing the lock."""
    old = datetime.now(timezone.utc) - timedelta(minutes=10)
    api.put("leases", {"metadata": {"name": LEASE_NAME},
                       "spec": {"holderIdentity": "ops@bastion:4242", "leaseDurationSeconds": 60,
                                "renewTime": micro_time(old)}})
    stale = api.stored("leases", LEASE_NAME)
    winner = Lock(cluster, "dvdoctor backup")
    winner.me = "a@host:1"
    winner.acquire()
    loser = Lock(cluster, "dvdoctor restore")
    with pytest.raises(LockHeld, match="took the lock"):
        loser._take_over(stale, datetime.now(timezone.utc))
    assert api.stored("leases", LEASE_NAME)["spec"]["holderIdentity"] == "a@host:1"
    winner.release()


def test_renewal_notices_a_broken_lock(api: FakeApi, cluster: KubeCluster) -> None:
    lock = Lock(cluster, "dvdoctor backup").acquire()
    api.put("leases", {"metadata": {"name": LEASE_NAME}, "spec": {"holderIdentity": "ops@bastion:1"}}, event="MODIFIED")
    assert lock.renew() is False and lock.lost == "ops@bastion:1"
    lock.release()
    assert api.stored("leases", LEASE_NAME)["spec"]["holderIdentity"] == "ops@bastion:1"  # not ours to delete


# -- nothing but one line reaches the user ----------------------------------------------------------------


@pytest.mark.parametrize("status", [0, 500, 401, 403])
def test_cli_ends_with_one_line_and_exit_3(api: FakeApi, kubeconfig: Path, capsys, status: int, monkeypatch) -> None:
    """An API that refuses (401, 403) or does not answer (dropped, 500) leaves the verdict incomplete: exit 3."""
    monkeypatch.setattr(kube, "DEFAULT_RETRY", kube.DEFAULT_RETRY.fast())
    api.fail("GET", "/pods$", status, 'pods is forbidden: User "u" cannot list resource "pods"', times=100)
    code = run(["--kubeconfig", str(kubeconfig), "check"])
    err = capsys.readouterr().err
    assert code == 3
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("dvdoctor: error: ")
    assert "Traceback" not in err and api.token not in err
