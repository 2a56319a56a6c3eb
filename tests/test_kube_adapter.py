"""KubeCluster through the official client's real request path, against a local fake API server.

Exec is tested end to end too: the fake server implements the websocket handshake and framing
(channel 1 stdout, 2 stderr, 3 status), so the client's websocket transport runs unmodified.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest

from dvdoctor.cluster.kube import MAX_TRIES, KubeCluster, connect
from dvdoctor.cluster.port import Cluster, ExecResult
from dvdoctor.core.errors import (
    ClusterError,
    Conflict,
    DvdoctorError,
    Forbidden,
    Invalid,
    NotFound,
    Unavailable,
    Unreachable,
    UsageError,
)

from fakeapi import FakeApi, closed_port, now_stamp as _now, ws_accept

NS = "cpd30"
SA_USER = "system:serviceaccount:cpd30:dvdoctor"


#: The shared `api` serves a second namespace and the kubeconfig names a second context, for the
#: tests that pick a namespace or a context other than the current one.
pytestmark = pytest.mark.fake_api(namespaces=(NS, "other"), contexts=("dv-admin", "other-admin"))


def assert_one_clean_line(exc: DvdoctorError, token: str) -> None:
    text = str(exc)
    assert text and "\n" not in text
    assert token not in text
    assert "Traceback" not in text


# -- connect ---------------------------------------------------------------------------------------


def test_connect_takes_namespace_and_context_from_kubeconfig(api: FakeApi, kubeconfig: Path) -> None:
    c = connect(str(kubeconfig), None, None)
    assert isinstance(c, Cluster)
    assert c.namespace == NS
    assert c.describe() == f"context dv-admin at {api.url}"
    assert api.token not in c.describe()
    # the namespace check is one GET of the Namespace, with the token in the header only
    (req,) = api.requests
    assert (req.method, req.path) == ("GET", f"/api/v1/namespaces/{NS}")
    assert req.headers["authorization"] == f"Bearer {api.token}"
    assert c.request_count == 1


def test_connect_reads_kubeconfig_env_and_explicit_namespace(api: FakeApi, kubeconfig: Path, monkeypatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    c = connect(None, "other-admin", "other")
    assert (c.namespace, c.describe()) == ("other", f"context other-admin at {api.url}")


def test_connect_defaults_to_namespace_default_without_one_in_context(api: FakeApi, tmp_path: Path) -> None:
    api.namespaces.add("default")
    c = connect(str(api.kubeconfig(tmp_path / "cfg", namespace=None)), None, None)
    assert c.namespace == "default"


def test_connect_without_kubeconfig_says_where_it_looked(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(UsageError) as err:
        connect(None, None, None)
    msg = str(err.value)
    assert str(tmp_path / ".kube" / "config") in msg and "--kubeconfig" in msg and "--lab" in msg
    assert "\n" not in msg


def test_connect_with_missing_explicit_kubeconfig(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no kubeconfig found .*nope.yaml"):
        connect(str(tmp_path / "nope.yaml"), None, None)


def test_connect_unknown_context_lists_known_ones(api: FakeApi, kubeconfig: Path) -> None:
    with pytest.raises(UsageError) as err:
        connect(str(kubeconfig), "prod", None)
    assert str(err.value).startswith("unknown context 'prod'")
    assert "dv-admin, other-admin" in str(err.value)
    assert_one_clean_line(err.value, api.token)
    assert api.requests == []


@pytest.mark.parametrize("bad", ["CPD30", "cpd_30", "-cpd", "cpd-", "a" * 64, ""])
def test_connect_rejects_names_that_are_not_dns_labels(kubeconfig: Path, bad: str) -> None:
    with pytest.raises(UsageError, match="not a valid Kubernetes name"):
        connect(str(kubeconfig), None, bad)


def test_connect_missing_namespace_is_not_found(api: FakeApi, kubeconfig: Path) -> None:
    with pytest.raises(NotFound) as err:
        connect(str(kubeconfig), None, "cpd31")
    assert str(err.value) == f"namespace cpd31 does not exist (context dv-admin at {api.url})"


def test_connect_goes_on_when_namespace_get_is_forbidden(api: FakeApi, kubeconfig: Path) -> None:
    api.fail("GET", f"^/api/v1/namespaces/{NS}$", 403,
             f'namespaces "{NS}" is forbidden: User "{SA_USER}" cannot get resource "namespaces" in API group "" in the namespace "{NS}"')
    assert connect(str(kubeconfig), None, None).namespace == NS


def test_connect_rejected_credentials_suggest_oc_login(api: FakeApi, kubeconfig: Path) -> None:
    api.token = "sha256~another-token"  # the server now expects a token the kubeconfig lacks
    with pytest.raises(Forbidden) as err:
        connect(str(kubeconfig), None, None)
    assert "rejected the credentials" in str(err.value) and "oc login" in str(err.value)
    assert_one_clean_line(err.value, "sha256~fake-token")


def test_connect_unreachable_server_names_it_fast(api: FakeApi, tmp_path: Path) -> None:
    server = f"http://127.0.0.1:{closed_port()}"
    cfg = api.kubeconfig(tmp_path / "config", server=server)
    started = time.monotonic()
    with pytest.raises(Unreachable) as err:
        connect(str(cfg), None, None)
    assert time.monotonic() - started < 5
    assert str(err.value).startswith(f"cannot reach the API server {server} (context dv-admin)")
    assert "refused" in str(err.value).lower()
    assert_one_clean_line(err.value, api.token)


# -- list / get / create / patch / delete ------------------------------------------------------------


def test_list_is_one_request_with_the_selector_and_items_carry_kind(api: FakeApi, cluster: KubeCluster) -> None:
    api.put("pods", {"metadata": {"name": "dv-engine-0", "labels": {"app": "dv", "tier": "engine"}}})
    api.put("pods", {"metadata": {"name": "dv-api-1", "labels": {"app": "dv"}}})
    api.put("pods", {"metadata": {"name": "elsewhere"}}, namespace="other")
    before = cluster.request_count
    pods = cluster.list("pods", label_selector="app=dv,tier=engine")
    assert [p["metadata"]["name"] for p in pods] == ["dv-engine-0"]
    assert (pods[0]["kind"], pods[0]["apiVersion"]) == ("Pod", "v1")
    assert cluster.request_count == before + 1
    req = api.requests[-1]
    assert (req.method, req.path) == ("GET", f"/api/v1/namespaces/{NS}/pods")
    assert req.query == {"labelSelector": ["app=dv,tier=engine"]}


@pytest.mark.parametrize(
    "kind, path",
    [
        ("jobs", f"/apis/batch/v1/namespaces/{NS}/jobs"),
        ("deployments", f"/apis/apps/v1/namespaces/{NS}/deployments"),
        ("statefulsets", f"/apis/apps/v1/namespaces/{NS}/statefulsets"),
        ("persistentvolumeclaims", f"/api/v1/namespaces/{NS}/persistentvolumeclaims"),
        ("serviceaccounts", f"/api/v1/namespaces/{NS}/serviceaccounts"),
        ("events", f"/api/v1/namespaces/{NS}/events"),
        ("leases", f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases"),
        ("persistentvolumes", "/api/v1/persistentvolumes"),
        ("storageclasses", "/apis/storage.k8s.io/v1/storageclasses"),
    ],
)
def test_each_kind_is_listed_on_its_api_path(api: FakeApi, cluster: KubeCluster, kind: str, path: str) -> None:
    api.put(kind, {"metadata": {"name": "x"}})
    assert [o["metadata"]["name"] for o in cluster.list(kind)] == ["x"]
    assert api.requests[-1].path == path
    assert api.requests[-1].query == {}


def test_get_returns_the_object_or_none(api: FakeApi, cluster: KubeCluster) -> None:
    api.put("persistentvolumeclaims", {"metadata": {"name": "dv-bar-pvc"}, "spec": {"storageClassName": "ibmc-file-gold-gid"}})
    pvc = cluster.get("persistentvolumeclaims", "dv-bar-pvc")
    assert pvc["spec"]["storageClassName"] == "ibmc-file-gold-gid"
    assert cluster.get("persistentvolumeclaims", "dv-bar-pvc-2") is None
    assert api.requests[-1].path == f"/api/v1/namespaces/{NS}/persistentvolumeclaims/dv-bar-pvc-2"


def test_create_posts_the_body_verbatim_and_conflicts_on_409(api: FakeApi, cluster: KubeCluster) -> None:
    body = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "dvdoctor-inspect-abc123", "labels": {"app.kubernetes.io/managed-by": "dvdoctor"}},
        # a field newer than the client's models must still reach the server untouched
        "spec": {"backoffLimit": 0, "someFutureField": {"x": 1}, "template": {"spec": {"containers": []}}},
    }
    created = cluster.create("jobs", body)
    assert created["metadata"]["uid"]
    req = api.requests[-1]
    assert (req.method, req.path) == ("POST", f"/apis/batch/v1/namespaces/{NS}/jobs")
    assert req.headers["content-type"] == "application/json"
    assert req.json() == body
    with pytest.raises(Conflict) as err:
        cluster.create("jobs", body)
    assert str(err.value) == f"conflict: jobs/dvdoctor-inspect-abc123 already exists in namespace {NS}"


def test_create_rejected_as_invalid(api: FakeApi, cluster: KubeCluster) -> None:
    with pytest.raises(Invalid, match=r"^invalid: cannot create jobs in namespace cpd30: Job is invalid: metadata.name"):
        cluster.create("jobs", {"apiVersion": "batch/v1", "kind": "Job", "metadata": {}})


def test_patch_is_a_json_merge_patch(api: FakeApi, cluster: KubeCluster) -> None:
    api.put("deployments", {"metadata": {"name": "dv-caching", "annotations": {"keep": "1"}}, "spec": {"replicas": 1}})
    patch = {"metadata": {"annotations": {"dvdoctor.io/original-replicas": "1"}}, "spec": {"replicas": 0}}
    out = cluster.patch("deployments", "dv-caching", patch)
    assert out["spec"]["replicas"] == 0
    assert out["metadata"]["annotations"] == {"keep": "1", "dvdoctor.io/original-replicas": "1"}
    req = api.requests[-1]
    assert (req.method, req.path) == ("PATCH", f"/apis/apps/v1/namespaces/{NS}/deployments/dv-caching")
    assert req.headers["content-type"] == "application/merge-patch+json"
    assert req.json() == patch


def test_delete_always_propagates_in_background(api: FakeApi, cluster: KubeCluster) -> None:
    api.put("jobs", {"metadata": {"name": "dv-backup-job"}})
    api.put("pods", {"metadata": {"name": "dv-backup-job-x7k2p", "labels": {"job-name": "dv-backup-job"}}})
    assert cluster.delete("jobs", "dv-backup-job") is True
    req = api.requests[-1]
    assert (req.method, req.path) == ("DELETE", f"/apis/batch/v1/namespaces/{NS}/jobs/dv-backup-job")
    assert req.query == {"propagationPolicy": ["Background"]}
    assert api.stored("pods", "dv-backup-job-x7k2p") is None  # the job's pod went with it
    assert cluster.delete("jobs", "dv-backup-job") is False
    assert cluster.delete("pods", "gone") is False
    assert api.requests[-1].query == {"propagationPolicy": ["Background"]}


def test_unknown_kind_is_a_usage_error(cluster: KubeCluster) -> None:
    with pytest.raises(UsageError, match="unknown kind 'routes'"):
        cluster.list("routes")


# -- logs, exec, rules ---------------------------------------------------------------------------------


def test_logs_pass_container_and_tail_lines(api: FakeApi, cluster: KubeCluster) -> None:
    api.put("pods", {"metadata": {"name": "dv-backup-job-x7k2p"}})
    api.logs["dv-backup-job-x7k2p"] = "start\nOperation failed: [Errno 13] Permission denied: '/mnt/PV/bar/2021-01-14-19-20-07'\n"
    text = cluster.logs("dv-backup-job-x7k2p", container="dv-backup", tail_lines=1)
    assert text == "Operation failed: [Errno 13] Permission denied: '/mnt/PV/bar/2021-01-14-19-20-07'\n"
    req = api.requests[-1]
    assert req.path == f"/api/v1/namespaces/{NS}/pods/dv-backup-job-x7k2p/log"
    assert req.query == {"container": ["dv-backup"], "tailLines": ["1"]}


def test_logs_of_a_pod_waiting_to_start_are_empty(api: FakeApi, cluster: KubeCluster) -> None:
    api.put("pods", {"metadata": {"name": "p"}})
    api.fail("GET", "/pods/p/log$", 400, 'container "c" in pod "p" is waiting to start: ContainerCreating')
    assert cluster.logs("p") == ""


def test_exec_separates_streams_and_reads_the_exit_code(api: FakeApi, cluster: KubeCluster) -> None:
    api.put("pods", {"metadata": {"name": "dv-engine-0"}})
    seen: list[tuple[str, str | None, list[str]]] = []
    big = "x" * 20000 + "\n"  # more than one websocket frame

    def handler(pod: str, container: str | None, argv: list[str]) -> tuple[int, str, str]:
        seen.append((pod, container, argv))
        return (0, big, "") if argv[-1] == "ok" else (7, "partial\n", "rm: cannot remove '/mnt/marker_files/.bar'\n")

    api.exec_handler = handler
    argv = ["bash", "-c", 'printf "%s\\n" "$1"; exit 7', "probe", "arg with spaces & symbols=;"]
    before = cluster.request_count
    result = cluster.exec("dv-engine-0", argv, container="dv-engine")
    assert result == ExecResult(7, "partial\n", "rm: cannot remove '/mnt/marker_files/.bar'\n")
    assert seen == [("dv-engine-0", "dv-engine", argv)]
    assert cluster.request_count == before + 1
    req = api.requests[-1]
    assert req.path == f"/api/v1/namespaces/{NS}/pods/dv-engine-0/exec"
    assert req.query["stdout"] == ["true"] and req.query["stderr"] == ["true"]
    assert req.query["stdin"] == ["false"] and req.query["container"] == ["dv-engine"]
    assert req.query["command"] == argv
    assert cluster.exec("dv-engine-0", ["true", "ok"]) == ExecResult(0, big, "")


def test_exec_does_not_import_the_typed_core_api(api: FakeApi, kubeconfig: Path) -> None:
    """Exec builds the typed method's request itself: `kubernetes.client.api.core_v1_api` alone costs a
    quarter of a CPU-second to import, once in every `check` on a cluster. A fresh process shows it."""
    import subprocess
    import sys

    api.put("pods", {"metadata": {"name": "dv-engine-0"}})
    api.exec_handler = lambda pod, container, argv: (0, "ok\n", "")
    child = ("import sys\n"
             "from dvdoctor.cluster.kube import connect\n"
             "result = connect(sys.argv[1], None, None).exec('dv-engine-0', ['true'], container='dv-engine')\n"
             "print(result.rc, result.stdout.strip(), 'kubernetes.client.api.core_v1_api' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", child, str(kubeconfig)], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["0", "ok", "False"], done.stdout + done.stderr


def _listening() -> socket.socket:
    """A server socket of the test's own on 127.0.0.1, listening: what it answers is up to the test."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    return server


def _cluster_on(server: socket.socket) -> KubeCluster:
    """dvdoctor's adapter on such a server (no namespace check), giving up on an exec after 0.3 s of silence."""
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.getsockname()[1]}"
    cluster = KubeCluster(configuration, NS, "raw")
    cluster.exec_silence_timeout = 0.3
    return cluster


def test_an_exec_handshake_never_answered_is_a_cluster_error_in_bounded_time() -> None:
    """Break-it, session 20: a server that took the connection and never answered the websocket upgrade
    held exec for ever (the client's socket has no timeout). A listening socket nobody accepts on is one."""
    silent = _listening()
    try:
        cluster = _cluster_on(silent)
        started = time.monotonic()
        with pytest.raises(ClusterError, match=r"^exec in pod dv-engine-0: the API server did not answer the "
                                               r"websocket handshake within 0\.3 s \(the command may have started\)$"):
            cluster.exec("dv-engine-0", ["true"])
        assert time.monotonic() - started < 5
    finally:
        silent.close()


def test_an_exec_handshake_answered_too_late_is_closed_at_once(api: FakeApi, cluster: KubeCluster) -> None:
    api.put("pods", {"metadata": {"name": "dv-engine-0"}})
    api.exec_upgrade_delay = 0.8
    cluster.exec_silence_timeout = 0.2
    with pytest.raises(ClusterError, match="did not answer the websocket handshake within 0.2 s"):
        cluster.exec("dv-engine-0", ["true"])
    deadline = time.monotonic() + 10
    while not api.exec_closes and time.monotonic() < deadline:
        time.sleep(0.05)
    assert api.exec_closes == [True]  # the late websocket was closed by dvdoctor, not left open


@pytest.mark.long_wait  # the close that follows waits 3 s for the stalled server's close frame
def test_an_exec_whose_server_stops_part_way_through_a_frame_is_a_cluster_error() -> None:
    """Break-it, session 20: after the upgrade, 2 bytes of a frame's header and then nothing held exec for
    ever (the client reads a started frame whole, on a socket without a timeout)."""
    server = _listening()
    stop = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                       if line.lower().startswith(b"sec-websocket-key"))
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Accept: " + ws_accept(key.decode()).encode()
                         + b"\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n"
                         b"\x82\x7e")  # a binary frame whose 16-bit length never comes
            stop.wait(30)

    threading.Thread(target=serve, daemon=True).start()
    try:
        cluster = _cluster_on(server)
        started = time.monotonic()
        with pytest.raises(ClusterError, match=r"^exec in pod dv-engine-0 failed: .*timed out"):
            cluster.exec("dv-engine-0", ["true"])
        assert time.monotonic() - started < 10
    finally:
        stop.set()
        server.close()


def test_exec_takes_text_only(cluster: KubeCluster) -> None:
    """What the typed method's validation refused is refused before anything is sent (bytes would be sent as
    their repr, a number as its digits)."""
    before = cluster.request_count
    for pod, argv, container in (("p", ["a", 1], None), ("p", [b"a"], None), ("p", "ab", None), ("p", ["a"], 5),
                                 (1, ["a"], None), ("p", None, None)):
        with pytest.raises(TypeError, match="exec takes a pod name"):
            cluster.exec(pod, argv, container=container)  # type: ignore[arg-type]
    assert cluster.request_count == before


def test_exec_that_cannot_start_is_a_cluster_error(api: FakeApi, cluster: KubeCluster) -> None:
    api.put("pods", {"metadata": {"name": "dv-engine-0"}})
    api.exec_handler = lambda pod, container, argv: None
    with pytest.raises(ClusterError, match="exec in pod dv-engine-0 failed to run: .*executable file not found"):
        cluster.exec("dv-engine-0", ["nope"])


def test_exec_forbidden_and_missing_pod(api: FakeApi, cluster: KubeCluster) -> None:
    with pytest.raises(NotFound, match=r"^not found: create pods/exec/dv-engine-0 in namespace cpd30"):
        cluster.exec("dv-engine-0", ["true"])
    api.put("pods", {"metadata": {"name": "dv-engine-0"}})
    api.fail("GET", "/exec$", 403, f'pods "dv-engine-0" is forbidden: User "{SA_USER}" cannot create resource "pods/exec" in API group "" in the namespace "{NS}"')
    with pytest.raises(Forbidden) as err:
        cluster.exec("dv-engine-0", ["true"])
    assert str(err.value) == f"forbidden: cannot create pods/exec/dv-engine-0 in namespace {NS} (as {SA_USER})"


def test_allowed_rules_come_from_a_self_subject_rules_review(api: FakeApi, cluster: KubeCluster) -> None:
    api.rules = [{"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods", "pods/log"]}]
    assert cluster.allowed_rules() == api.rules
    req = api.requests[-1]
    assert (req.method, req.path) == ("POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews")
    assert req.json() == {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": NS}}


# -- wait ------------------------------------------------------------------------------------------------


def _complete(api: FakeApi, name: str, delay: float) -> threading.Thread:
    def later() -> None:
        time.sleep(delay)
        api.put("jobs", {"metadata": {"name": name}, "status": {"active": 1}}, event="MODIFIED")
        api.put("jobs", {"metadata": {"name": name},
                         "status": {"conditions": [{"type": "Complete", "status": "True"}]}}, event="MODIFIED")

    t = threading.Thread(target=later, daemon=True)
    t.start()
    return t


def _done(job: dict | None) -> bool:
    return bool(job and (job.get("status") or {}).get("conditions"))


def test_wait_watches_from_the_first_reads_version(api: FakeApi, cluster: KubeCluster) -> None:
    api.put("jobs", {"metadata": {"name": "dvdoctor-inspect-1"}})
    api.put("jobs", {"metadata": {"name": "unrelated"}})
    changes: list[dict | None] = []
    _complete(api, "dvdoctor-inspect-1", 0.3)
    job = cluster.wait("jobs", "dvdoctor-inspect-1", _done, timeout=10, on_change=changes.append)
    assert _done(job) and job["metadata"]["name"] == "dvdoctor-inspect-1"
    assert len(changes) == 3  # first read, active, complete
    first, watch = api.requests_to("GET", "/jobs$")[-2:]
    assert first.query == {"fieldSelector": ["metadata.name=dvdoctor-inspect-1"]}
    assert watch.query["watch"] == ["true"]
    assert watch.query["fieldSelector"] == ["metadata.name=dvdoctor-inspect-1"]
    assert int(watch.query["timeoutSeconds"][0]) <= 10
    assert watch.query["resourceVersion"] == [str(int(api.stored("jobs", "unrelated")["metadata"]["resourceVersion"]))]


def test_wait_resumes_when_the_watch_ends_early(api: FakeApi, cluster: KubeCluster, monkeypatch) -> None:
    import dvdoctor.cluster.kube as kube

    monkeypatch.setattr(kube, "WATCH_CHUNK_SECONDS", 1)  # the server ends each watch after 1 s
    api.put("jobs", {"metadata": {"name": "j"}})
    _complete(api, "j", 2.5)
    assert _done(cluster.wait("jobs", "j", _done, timeout=10))
    watches = [r for r in api.requests_to("GET", "/jobs$") if r.query.get("watch")]
    assert len(watches) >= 2
    assert all(w.query["resourceVersion"] for w in watches)


def test_wait_returns_none_when_deleted_and_last_object_on_timeout(api: FakeApi, cluster: KubeCluster) -> None:
    api.put("jobs", {"metadata": {"name": "j"}})
    threading.Timer(0.2, api.remove, args=("jobs", "j")).start()
    assert cluster.wait("jobs", "j", lambda j: j is None, timeout=10) is None
    api.put("jobs", {"metadata": {"name": "k"}, "status": {"active": 1}})
    started = time.monotonic()
    job = cluster.wait("jobs", "k", _done, timeout=1.2)
    assert job["status"] == {"active": 1}
    assert 1.0 <= time.monotonic() - started < 5


def test_wait_restarts_from_a_fresh_read_when_version_is_gone(api: FakeApi, cluster: KubeCluster) -> None:
    api.put("jobs", {"metadata": {"name": "j"}})
    api.gone_next_watch = True
    _complete(api, "j", 0.3)
    assert _done(cluster.wait("jobs", "j", _done, timeout=10))
    gets = api.requests_to("GET", "/jobs$")
    reads = [r for r in gets if not r.query.get("watch")]
    watches = [r for r in gets if r.query.get("watch")]
    assert len(reads) == 2 and len(watches) >= 1  # first read, 410, fresh read (then a watch if needed)


def test_wait_on_an_object_already_done_makes_one_request(api: FakeApi, cluster: KubeCluster) -> None:
    api.put("jobs", {"metadata": {"name": "j"}, "status": {"conditions": [{"type": "Complete", "status": "True"}]}})
    before = cluster.request_count
    assert _done(cluster.wait("jobs", "j", _done, timeout=5))
    assert cluster.request_count == before + 1


# -- errors ----------------------------------------------------------------------------------------------


def test_forbidden_names_verb_resource_namespace_and_user(api: FakeApi, cluster: KubeCluster) -> None:
    api.fail("GET", "/persistentvolumes$", 403,
             f'persistentvolumes is forbidden: User "{SA_USER}" cannot list resource "persistentvolumes" in API group "" at the cluster scope')
    with pytest.raises(Forbidden) as err:
        cluster.list("persistentvolumes")
    assert str(err.value) == f"forbidden: cannot list persistentvolumes (as {SA_USER})"
    api.fail("GET", "/pods$", 403,
             f'pods is forbidden: User "{SA_USER}" cannot list resource "pods" in API group "" in the namespace "{NS}"')
    with pytest.raises(Forbidden) as err:
        cluster.list("pods")
    assert str(err.value) == f"forbidden: cannot list pods in namespace {NS} (as {SA_USER})"
    api.fail("DELETE", "/jobs/", 403,
             f'jobs.batch "dv-test-job" is forbidden: User "{SA_USER}" cannot delete resource "jobs" in API group "batch" in the namespace "{NS}"')
    with pytest.raises(Forbidden) as err:
        cluster.delete("jobs", "dv-test-job")
    assert str(err.value) == f"forbidden: cannot delete jobs/dv-test-job in namespace {NS} (as {SA_USER})"


def test_admission_refusal_keeps_the_servers_reason(api: FakeApi, cluster: KubeCluster) -> None:
    api.fail("POST", "/jobs$", 403, 'pods "x" is forbidden: error looking up service account cpd30/dv-bar-sa: serviceaccount "dv-bar-sa" not found')
    with pytest.raises(Forbidden, match=r'^forbidden: cannot create jobs/x in namespace cpd30: .*serviceaccount "dv-bar-sa" not found$'):
        cluster.create("jobs", {"metadata": {"name": "x"}})


def test_429_is_retried_and_then_succeeds(api: FakeApi, cluster: KubeCluster) -> None:
    api.put("pods", {"metadata": {"name": "dv-engine-0"}})
    api.fail("GET", "/pods$", 429, "Too many requests, please try again later.", times=2, headers={"Retry-After": "0"})
    before = cluster.request_count
    assert [p["metadata"]["name"] for p in cluster.list("pods")] == ["dv-engine-0"]
    assert cluster.request_count == before + 3
    assert len(api.requests_to("GET", "/pods$")) == 3


def test_500_is_retried_a_bounded_number_of_times(api: FakeApi, cluster: KubeCluster) -> None:
    api.fail("GET", "/statefulsets$", 500, "etcdserver: request timed out", times=10)
    with pytest.raises(Unavailable) as err:
        cluster.list("statefulsets")
    assert str(err.value) == (f"the API server {api.url} failed to list statefulsets in namespace {NS} "
                              f"(HTTP 500 after {MAX_TRIES} tries): etcdserver: request timed out")
    assert len(api.requests_to("GET", "/statefulsets$")) == MAX_TRIES


def test_create_after_a_500_that_did_not_land_is_sent_again(api: FakeApi, cluster: KubeCluster) -> None:
    api.fail("POST", "/jobs$", 500, "internal error", times=2)
    created = cluster.create("jobs", {"metadata": {"name": "dvdoctor-inspect-1a2b3c"}, "spec": {"backoffLimit": 0}})
    assert created["metadata"]["name"] == "dvdoctor-inspect-1a2b3c"
    assert len(api.requests_to("POST", "/jobs$")) == 3


@pytest.mark.parametrize("status", [500, 0])
def test_create_whose_answer_was_lost_is_read_back_as_ours(api: FakeApi, cluster: KubeCluster, status: int) -> None:
    """The first POST landed but its answer was a 500 (or the connection dropped): the retry's 409 is
    followed by a GET that finds the object we sent, made just now, so create succeeds once."""
    api.fail("POST", "/jobs$", status, "etcd leader changed", land=True)
    body = {"metadata": {"name": "dvdoctor-inspect-1a2b3c", "labels": {"app.kubernetes.io/managed-by": "dvdoctor"}},
            "spec": {"backoffLimit": 0}}
    created = cluster.create("jobs", body)
    assert created["metadata"]["uid"] == api.stored("jobs", "dvdoctor-inspect-1a2b3c")["metadata"]["uid"]
    assert len(api.requests_to("POST", "/jobs$")) == 2
    assert api.requests_to("GET", "/jobs/dvdoctor-inspect-1a2b3c$")


def test_a_lookalike_left_by_an_earlier_run_is_still_a_conflict(api: FakeApi, cluster: KubeCluster) -> None:
    """After an unclear first try, an object with the same name but other content, or made long ago, is not ours."""
    api.put("jobs", {"metadata": {"name": "dv-backup-job"}, "spec": {"backoffLimit": 0}})  # made in 2021
    api.fail("POST", "/jobs$", 503, times=1)
    with pytest.raises(Conflict):
        cluster.create("jobs", {"metadata": {"name": "dv-backup-job"}, "spec": {"backoffLimit": 0}})
    api.fail("POST", "/leases$", 500, land=True)
    cluster.create("leases", {"metadata": {"name": "l"}, "spec": {"holderIdentity": "me"}})  # ours, landed
    api.remove("leases", "l")
    api.put("leases", {"metadata": {"name": "l", "creationTimestamp": _now()}, "spec": {"holderIdentity": "other"}})
    api.fail("POST", "/leases$", 500)
    with pytest.raises(Conflict):
        cluster.create("leases", {"metadata": {"name": "l"}, "spec": {"holderIdentity": "me"}})


def test_a_read_back_allows_for_fields_an_older_server_drops(api: FakeApi, cluster: KubeCluster) -> None:
    """Kubernetes 1.18-1.20 drop a Job's ttlSecondsAfterFinished (alpha): the landed Job is still ours."""
    def drop_ttl(plural: str, ns: str | None, obj: dict) -> None:
        obj["spec"].pop("ttlSecondsAfterFinished", None)
        api.put(plural, obj, ns, event="MODIFIED")

    api.on_create = drop_ttl
    api.fail("POST", "/jobs$", 500, land=True)
    body = {"metadata": {"name": "dvdoctor-inspect-1a2b3c", "labels": {"app.kubernetes.io/managed-by": "dvdoctor"}},
            "spec": {"backoffLimit": 0, "ttlSecondsAfterFinished": 600}}
    assert cluster.create("jobs", body)["metadata"]["name"] == "dvdoctor-inspect-1a2b3c"
    api.remove("jobs", "dvdoctor-inspect-1a2b3c")
    api.fail("POST", "/jobs$", 500, land=True)  # a label the server kept otherwise: not ours
    api.on_create = lambda plural, ns, obj: api.put(plural, {**obj, "metadata": {**obj["metadata"], "labels": {}}}, ns)
    with pytest.raises(Conflict):
        cluster.create("jobs", body)


def test_a_read_back_that_fails_leaves_the_conflict_standing(api: FakeApi, cluster: KubeCluster) -> None:
    api.fail("POST", "/jobs$", 500, land=True)
    api.fail("GET", "/jobs/dvdoctor-fix-1a2b3c$", 403, 'jobs "dvdoctor-fix-1a2b3c" is forbidden')
    with pytest.raises(Conflict):
        cluster.create("jobs", {"metadata": {"name": "dvdoctor-fix-1a2b3c"}})


def test_patch_at_a_version_whose_answer_was_lost_is_read_back(api: FakeApi, cluster: KubeCluster) -> None:
    api.put("deployments", {"metadata": {"name": "dv-api"}, "spec": {"replicas": 1}})
    version = api.stored("deployments", "dv-api")["metadata"]["resourceVersion"]
    api.fail("PATCH", "/deployments/dv-api$", 500, land=True)
    out = cluster.patch("deployments", "dv-api", {"metadata": {"resourceVersion": version}, "spec": {"replicas": 0}})
    assert out["spec"]["replicas"] == 0
    assert len(api.requests_to("PATCH", "/deployments/dv-api$")) == 2  # the second got 409: the first had landed
    # a 409 with no unclear try before it stays a conflict
    with pytest.raises(Conflict):
        cluster.patch("deployments", "dv-api", {"metadata": {"resourceVersion": version}, "spec": {"replicas": 0}})


def test_delete_whose_answer_was_lost_reports_the_deletion(api: FakeApi, cluster: KubeCluster) -> None:
    api.put("jobs", {"metadata": {"name": "dvdoctor-fix-1a2b3c"}})
    api.fail("DELETE", "/jobs/dvdoctor-fix-1a2b3c$", 503, land=True)
    assert cluster.delete("jobs", "dvdoctor-fix-1a2b3c") is True
    assert api.stored("jobs", "dvdoctor-fix-1a2b3c") is None


def test_exec_refused_with_503_is_tried_again(api: FakeApi, cluster: KubeCluster) -> None:
    api.put("pods", {"metadata": {"name": "dv-engine-0"}})
    api.exec_handler = lambda pod, container, argv: (0, "ok\n", "")
    api.fail("GET", "/pods/dv-engine-0/exec$", 503, "the server is currently unable to handle the request")
    assert cluster.exec("dv-engine-0", ["true"]).stdout == "ok\n"
    assert len(api.requests_to("GET", "/pods/dv-engine-0/exec$")) == 2


def test_server_going_away_is_unreachable(api: FakeApi, cluster: KubeCluster) -> None:
    api.stop()
    with pytest.raises(Unreachable) as err:
        cluster.list("pods")
    assert str(err.value).startswith(f"cannot reach the API server {api.url} (context dv-admin) to list pods in namespace {NS}")
    assert_one_clean_line(err.value, api.token)


def test_token_never_shows_in_messages(api: FakeApi, cluster: KubeCluster) -> None:
    api.fail("GET", "/pods$", 401, "Unauthorized")
    with pytest.raises(Forbidden) as err:
        cluster.list("pods")
    assert_one_clean_line(err.value, api.token)
    assert api.token not in cluster.describe()
