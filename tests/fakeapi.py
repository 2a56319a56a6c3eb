"""A small Kubernetes API server on 127.0.0.1, so the adapter is tested through the real client.

It speaks just enough of the API for dvdoctor: list/get/create/merge-patch/delete of the kinds in
dvdoctor.cluster.port (KINDS and MANAGED_KINDS), label and field selectors, chunked watch streams with resourceVersions,
pod logs, SelfSubjectRulesReview, namespace GETs, exec over a websocket (the v4 channel
protocol: 1 stdout, 2 stderr, 3 status), and scripted error answers. Every request is recorded
(method, path, query, headers, body) so tests assert on what the client actually sent.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlsplit

from dvdoctor.cluster.k8s import merge_patch

#: plural -> (API prefix, Kind, namespaced)
KINDS = {
    "pods": ("/api/v1", "Pod", True),
    "events": ("/api/v1", "Event", True),
    "persistentvolumeclaims": ("/api/v1", "PersistentVolumeClaim", True),
    "serviceaccounts": ("/api/v1", "ServiceAccount", True),
    "persistentvolumes": ("/api/v1", "PersistentVolume", False),
    "jobs": ("/apis/batch/v1", "Job", True),
    "deployments": ("/apis/apps/v1", "Deployment", True),
    "statefulsets": ("/apis/apps/v1", "StatefulSet", True),
    "storageclasses": ("/apis/storage.k8s.io/v1", "StorageClass", False),
    "leases": ("/apis/coordination.k8s.io/v1", "Lease", True),
    "cronjobs": ("/apis/batch/v1", "CronJob", True),
    "roles": ("/apis/rbac.authorization.k8s.io/v1", "Role", True),
    "rolebindings": ("/apis/rbac.authorization.k8s.io/v1", "RoleBinding", True),
    "clusterroles": ("/apis/rbac.authorization.k8s.io/v1", "ClusterRole", False),
    "clusterrolebindings": ("/apis/rbac.authorization.k8s.io/v1", "ClusterRoleBinding", False),
}
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Failure:
    """A scripted error answer for requests matching method and a path regex, `times` times.

    Status 0 drops the connection without an answer, as a load balancer or a restarting server does.
    With `land`, the request is carried out first and only its answer is lost (a 500 from a proxy
    after the server wrote to etcd, a connection cut on the way back).
    """

    method: str
    path: str
    status: int
    message: str
    times: int
    headers: dict[str, str] = field(default_factory=dict)
    land: bool = False


@dataclass
class Flaky:
    """Random faults at a fixed rate, decided by a hash of (seed, method, path, n-th such request):
    the same seed fails the same requests whatever threads or timing add, so tests are repeatable."""

    rate: float
    seed: int
    statuses: tuple[int, ...] = (429, 500, 503)
    #: Share of failed writes (POST/PATCH/DELETE answered 5xx or cut) that were carried out first.
    landed: float = 0.5
    #: Share of watches cut right after their headers.
    cut_watches: float = 0.15
    seen: dict[tuple[str, str], int] = field(default_factory=dict)
    injected: int = 0
    #: Watches cut after their headers.
    cuts: int = 0
    #: (method, path, status, carried out first) of each injected failure, watches cut aside.
    log: list[tuple[str, str, int, bool]] = field(default_factory=list)

    def draw(self, *key: object) -> float:
        digest = hashlib.sha256(repr((self.seed, *key)).encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def pick(self, method: str, path: str, watch: bool) -> Failure | None:
        path = re.sub(r"(dvdoctor-[a-z]+)-[0-9a-f]{6}", r"\1", path)  # names dvdoctor draws at random
        key = ("WATCH" if watch else method, path)  # watches counted apart from lists of the same path
        n = self.seen.get(key, 0)
        self.seen[key] = n + 1
        if watch:
            if self.draw("cut", path, n) >= self.cut_watches:
                return None
            self.cuts += 1
            return Failure(method, path, -1, "cut", 1)
        if self.draw(method, path, n) >= self.rate:
            return None
        status = self.statuses[int(self.draw("status", method, path, n) * len(self.statuses))]
        land = method != "GET" and status != 429 and self.draw("land", method, path, n) < self.landed
        headers = {"Retry-After": "1"} if status == 429 else {}
        self.injected += 1
        self.log.append((method, path, status, land))
        return Failure(method, path, status, f"injected HTTP {status}", 1, headers, land)


def now_stamp() -> str:
    """The API's creationTimestamp format, now."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def status_body(code: int, message: str, reason: str = "") -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def _matches_labels(obj: dict, selector: str | None) -> bool:
    if not selector:
        return True
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if labels.get(key.strip()) != value.strip():
            return False
    return True


def _matches_fields(obj: dict, selector: str | None) -> bool:
    if not selector:
        return True
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if key == "metadata.name" and obj["metadata"]["name"] != value:
            return False
    return True


class FakeApi:
    """State, recording and behaviour of the fake server; start() serves it on a free port."""

    def __init__(self, namespaces: tuple[str, ...] = ("cpd30",), token: str = "sha256~fake-token") -> None:
        self.namespaces = set(namespaces)
        self.token = token
        self.objects: dict[tuple[str, str | None], dict[str, dict]] = {}
        self.requests: list[Recorded] = []
        self.failures: list[Failure] = []
        self.logs: dict[str, str] = {}
        self.rules: list[dict] = []
        #: (pod, container, argv) -> (rc, stdout, stderr); None answers a failure to start.
        self.exec_handler: Callable[[str, str | None, list[str]], tuple[int, str, str] | None] = (
            lambda pod, container, argv: (0, "", "")
        )
        #: Seconds an exec's websocket upgrade waits before it is answered (a slow kubelet).
        self.exec_upgrade_delay = 0.0
        #: For each exec that ran: whether the client sent its close frame after the server's.
        self.exec_closes: list[bool] = []
        #: Called after a create, with (plural, namespace, stored object): lets a test run a Job.
        self.on_create: Callable[[str, str | None, dict], None] | None = None
        self.version = 100
        self.events: list[tuple[int, str, str, str | None, dict]] = []
        self.lock = threading.Condition()
        self.server: ThreadingHTTPServer | None = None
        self.stopping = False
        self.connections: list[socket.socket] = []
        #: Answer the next watch with ERROR 410 Gone, as after an etcd compaction.
        self.gone_next_watch = False
        #: Drop the next watch's connection after its headers, as an idle timeout on a proxy does.
        self.drop_next_watch = False
        #: Random faults on every request when set (see flaky()).
        self.chaos: Flaky | None = None
        #: Play the PersistentVolume controller's static binding (a claim naming its volumeName).
        self.bind_volumes = False
        #: Seconds before the binder binds a new claim (0: at once).
        self.bind_after = 0.0
        #: Play the volume resizer: a bound claim's larger request shows in its capacity at once.
        self.resize_volumes = True
        #: Pods deleted gracefully, as the kubelet ends them: name -> seconds the pod stays after the
        #: DELETE, marked with a deletionTimestamp (Terminating), before it is gone.
        self.grace: dict[str, float] = {}
        self.thread: threading.Thread | None = None

    # -- state ----------------------------------------------------------------------------------

    def bump(self) -> str:
        self.version += 1
        return str(self.version)

    def put(self, plural: str, obj: dict, namespace: str | None = "cpd30", event: str = "ADDED") -> dict:
        """Store an object (as the API would) and tell watchers."""
        obj = copy.deepcopy(obj)
        prefix, kind, namespaced = KINDS[plural]
        ns = namespace if namespaced else None
        meta = obj.setdefault("metadata", {})
        if ns:
            meta["namespace"] = ns
        meta.setdefault("uid", hashlib.sha1(f"{plural}/{ns}/{meta['name']}".encode()).hexdigest()[:16])
        meta.setdefault("creationTimestamp", "2021-01-22T19:27:31Z")
        obj["apiVersion"] = prefix.split("/", 2)[-1] if prefix.startswith("/apis/") else "v1"
        obj["kind"] = kind
        with self.lock:
            meta["resourceVersion"] = self.bump()
            self.objects.setdefault((plural, ns), {})[meta["name"]] = obj
            self.events.append((self.version, event, plural, ns, copy.deepcopy(obj)))
            self.lock.notify_all()
        return obj

    def load(self, data: dict, namespace: str = "cpd30") -> None:
        """Put every object of a facts-shaped dict (its `objects` by plural), namespaced kinds in `namespace`."""
        for plural, items in data["objects"].items():
            for obj in items:
                self.put(plural, obj, namespace)

    def remove(self, plural: str, name: str, namespace: str | None = "cpd30") -> dict | None:
        ns = namespace if KINDS[plural][2] else None
        with self.lock:
            obj = self.objects.get((plural, ns), {}).pop(name, None)
            if obj is not None:
                obj["metadata"]["resourceVersion"] = self.bump()
                self.events.append((self.version, "DELETED", plural, ns, copy.deepcopy(obj)))
                self.lock.notify_all()
        return obj

    def bind_claim(self, pvc: dict, ns: str | None) -> dict:
        """The binder's part for a claim that names its volume: only an Available volume not promised
        to another claim, of the same class, big enough, is bound; else the claim stays Pending."""
        name = pvc["metadata"]["name"]
        pv = self.stored("persistentvolumes", (pvc.get("spec") or {}).get("volumeName") or "", None)
        if pv is None:
            return pvc
        ref = pv["spec"].get("claimRef") or {}
        free = (pv.get("status") or {}).get("phase") == "Available" and (
            not ref or (ref.get("name") == name and ref.get("namespace") == ns and not ref.get("uid")))
        same_class = (pvc["spec"].get("storageClassName") or "") == (pv["spec"].get("storageClassName") or "")
        if not free or not same_class:
            return self.put("persistentvolumeclaims", {**pvc, "status": {"phase": "Pending"}}, ns, event="MODIFIED")
        pv = copy.deepcopy(pv)
        pv["spec"]["claimRef"] = {"kind": "PersistentVolumeClaim", "namespace": ns, "name": name,
                                  "uid": pvc["metadata"]["uid"]}
        pv["status"] = {"phase": "Bound"}
        self.put("persistentvolumes", pv, None, event="MODIFIED")
        bound = {**pvc, "status": {"phase": "Bound", "capacity": dict(pv["spec"]["capacity"])}}
        return self.put("persistentvolumeclaims", bound, ns, event="MODIFIED")

    def stored(self, plural: str, name: str, namespace: str | None = "cpd30") -> dict | None:
        return self.objects.get((plural, namespace if KINDS[plural][2] else None), {}).get(name)

    def fail(self, method: str, path: str, status: int, message: str = "", times: int = 1,
             headers: dict[str, str] | None = None, land: bool = False) -> None:
        """Answer the next `times` matching requests with `status` (0: drop the connection); with
        `land`, carry each out first and lose only the answer."""
        self.failures.append(Failure(method, path, status, message or f"HTTP {status}", times, headers or {}, land))

    def flaky(self, rate: float, seed: int, **options: object) -> Flaky:
        """Fail about `rate` of all requests with 429/500/503 and cut watches, repeatably for a seed."""
        self.chaos = Flaky(rate, seed, **options)  # type: ignore[arg-type]
        return self.chaos

    def requests_to(self, method: str, path_regex: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and re.search(path_regex, r.path)]

    # -- serving --------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "FakeApi":
        api = self

        class Handler(_Handler):
            fake = api

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            with self.lock:
                self.stopping = True
                self.lock.notify_all()
            self.server.shutdown()
            self.server.server_close()
            for conn in self.connections:  # keep-alive connections too: the server is gone
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def kubeconfig(self, path: Path, namespace: str | None = "cpd30", contexts: tuple[str, ...] = ("dv-admin",),
                   server: str | None = None) -> Path:
        """Write a kubeconfig whose contexts all point at this server with the fake token."""
        ctx_entries = []
        for name in contexts:
            ctx = {"cluster": "fake", "user": "fake-user"}
            if namespace:
                ctx["namespace"] = namespace
            ctx_entries.append({"name": name, "context": ctx})
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": server or self.url}}],
            "users": [{"name": "fake-user", "user": {"token": self.token}}],
            "contexts": ctx_entries,
            "current-context": contexts[0],
        }
        path.write_text(json.dumps(config), encoding="utf-8")
        return path


#: Sockets bound and never listened on, kept for the life of this process (see closed_port).
_HELD: list[socket.socket] = []


def ws_accept(key: str) -> str:
    """The Sec-WebSocket-Accept a server answers a client's Sec-WebSocket-Key with (RFC 6455 section 4.2.2)."""
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on: bound here and never listened on, and kept bound, so a
    connection is refused and no other test (another xdist worker's fake server) can take the port."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _HELD.append(s)
    return s.getsockname()[1]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeApi

    def setup(self) -> None:
        super().setup()
        with self.fake.lock:
            self.fake.connections.append(self.connection)

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    # -- plumbing -------------------------------------------------------------------------------

    def _record(self) -> Recorded:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        rec = Recorded(self.command, parts.path, parse_qs(parts.query), {k.lower(): v for k, v in self.headers.items()}, body)
        with self.fake.lock:
            self.fake.requests.append(rec)
        return rec

    def _send_json(self, code: int, doc: dict, headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)

    def _error(self, code: int, message: str, reason: str = "", headers: dict[str, str] | None = None) -> None:
        self._send_json(code, status_body(code, message, reason), headers)

    def _failure(self, rec: Recorded) -> Failure | None:
        with self.fake.lock:
            for f in self.fake.failures:
                if f.times > 0 and f.method == rec.method and re.search(f.path, rec.path):
                    f.times -= 1
                    return f
            if self.fake.chaos is not None:
                watch = rec.method == "GET" and rec.query.get("watch", [""])[-1] == "true"
                return self.fake.chaos.pick(rec.method, rec.path, watch)
        return None

    def _answer_failure(self, failure: Failure) -> None:
        if failure.status == 0:
            self._hang_up()
        else:
            self._error(failure.status, failure.message, headers=failure.headers)

    def _hang_up(self) -> None:
        """Close the connection at once: the client sees it dropped, with no status."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # -- routing --------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        rec = self._record()
        failure = self._failure(rec)
        if failure is not None and failure.status == -1:  # a watch cut after its headers
            with self.fake.lock:
                self.fake.drop_next_watch = True
        elif failure is not None and failure.land:
            real, self.wfile = self.wfile, io.BytesIO()  # carry it out, then lose the answer
            try:
                self._route(rec)
            finally:
                self.wfile = real
            return self._answer_failure(failure)
        elif failure is not None:
            return self._answer_failure(failure)
        self._route(rec)

    def _route(self, rec: Recorded) -> None:
        if rec.headers.get("authorization") != f"Bearer {self.fake.token}":
            return self._error(401, "Unauthorized", "Unauthorized")
        path = rec.path
        if path == "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews" and rec.method == "POST":
            review = rec.json()
            review["status"] = {"resourceRules": self.fake.rules, "nonResourceRules": [], "incomplete": False}
            return self._send_json(201, review)
        if rec.method == "GET" and path == "/version":  # OpenShift 4.6's Kubernetes
            return self._send_json(200, {"major": "1", "minor": "19", "gitVersion": "v1.19.0+fake"})
        if rec.method == "GET" and (path == "/api/v1" or re.fullmatch(r"/apis/[^/]+/[^/]+", path)):
            # discovery: the resources each group/version serves, as the table below has them
            served = [{"name": plural, "kind": kind, "namespaced": namespaced}
                      for plural, (prefix, kind, namespaced) in KINDS.items() if prefix == path]
            if not served:
                return self._error(404, "the server could not find the requested resource", "NotFound")
            return self._send_json(200, {"kind": "APIResourceList", "groupVersion": path.split("/", 2)[-1],
                                         "resources": served})
        m = re.fullmatch(r"/api/v1/namespaces/([^/]+)", path)
        if m and rec.method == "GET":
            if m.group(1) in self.fake.namespaces:
                return self._send_json(200, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": m.group(1)}})
            return self._error(404, f'namespaces "{m.group(1)}" not found', "NotFound")
        m = re.fullmatch(r"(/api/v1|/apis/[^/]+/[^/]+)(?:/namespaces/([^/]+))?/([a-z]+)(?:/([^/]+))?(?:/(log|exec))?", path)
        if not m or m.group(3) not in KINDS or KINDS[m.group(3)][0] != m.group(1):
            return self._error(404, "the server could not find the requested resource", "NotFound")
        prefix, ns, plural, name, sub = m.groups()
        if KINDS[plural][2] != (ns is not None):
            return self._error(404, "the server could not find the requested resource", "NotFound")
        if sub == "log":
            return self._log(ns, name, rec)
        if sub == "exec":
            return self._exec(ns, name, rec)
        q = {k: v[-1] for k, v in rec.query.items()}
        if rec.method == "GET" and name is None and q.get("watch") == "true":
            return self._watch(plural, ns, q)
        if rec.method == "GET" and name is None:
            return self._list(plural, ns, q)
        if rec.method == "GET":
            obj = self.fake.stored(plural, name, ns)
            return self._send_json(200, obj) if obj else self._error(404, f'{plural} "{name}" not found', "NotFound")
        if rec.method == "POST" and name is None:
            return self._create(plural, ns, rec)
        if rec.method == "PATCH" and name:
            return self._patch(plural, ns, name, rec)
        if rec.method == "DELETE" and name:
            return self._delete(plural, ns, name, q)
        return self._error(405, "method not allowed", "MethodNotAllowed")

    # -- verbs ----------------------------------------------------------------------------------

    def _list(self, plural: str, ns: str | None, q: dict[str, str]) -> None:
        with self.fake.lock:
            items = [copy.deepcopy(o) for o in self.fake.objects.get((plural, ns), {}).values()
                     if _matches_labels(o, q.get("labelSelector")) and _matches_fields(o, q.get("fieldSelector"))]
            version = str(self.fake.version)
        for item in items:  # a real list leaves kind and apiVersion off its items
            item.pop("kind", None)
            item.pop("apiVersion", None)
        kind = KINDS[plural][1]
        self._send_json(200, {"apiVersion": "v1", "kind": f"{kind}List",
                              "metadata": {"resourceVersion": version}, "items": items})

    def _create(self, plural: str, ns: str | None, rec: Recorded) -> None:
        if not rec.headers.get("content-type", "").startswith("application/json"):
            return self._error(415, "unsupported media type", "UnsupportedMediaType")
        body = rec.json()
        name = (body.get("metadata") or {}).get("name")
        if not name:
            return self._error(422, f"{KINDS[plural][1]} is invalid: metadata.name: Required value", "Invalid")
        if self.fake.stored(plural, name, ns) is not None:
            return self._error(409, f'{plural} "{name}" already exists', "AlreadyExists")
        if rec.query.get("dryRun") == ["All"]:
            return self._send_json(201, body)
        body["metadata"]["creationTimestamp"] = now_stamp()  # the server's, whatever the client sent
        obj = self.fake.put(plural, body, ns)
        if plural == "persistentvolumeclaims" and self.fake.bind_volumes:
            if self.fake.bind_after:  # the binder's work arrives a moment later, as on a real cluster
                name = obj["metadata"]["name"]
                threading.Timer(self.fake.bind_after, lambda: self.fake.bind_claim(self.fake.stored(plural, name, ns), ns)).start()
            else:
                obj = self.fake.bind_claim(obj, ns)
        self._send_json(201, obj)
        if self.fake.on_create is not None:
            self.fake.on_create(plural, ns, copy.deepcopy(obj))

    def _patch(self, plural: str, ns: str | None, name: str, rec: Recorded) -> None:
        if rec.headers.get("content-type") != "application/merge-patch+json":
            return self._error(415, f"unsupported patch type {rec.headers.get('content-type')}", "UnsupportedMediaType")
        obj = self.fake.stored(plural, name, ns)
        if obj is None:
            return self._error(404, f'{plural} "{name}" not found', "NotFound")
        patch = rec.json()
        wanted = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted is not None and wanted != obj["metadata"]["resourceVersion"]:  # optimistic concurrency
            return self._error(409, f'Operation cannot be fulfilled on {plural} "{name}": the object has been modified; '
                                    "please apply your changes to the latest version and try again", "Conflict")
        merged = merge_patch(obj, patch)
        if rec.query.get("dryRun") == ["All"]:
            return self._send_json(200, merged)
        if plural == "persistentvolumeclaims" and self.fake.resize_volumes and (merged.get("status") or {}).get("phase") == "Bound":
            request = (((merged.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
            if request and request != (((obj.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage"):
                merged["status"]["capacity"] = {"storage": request}  # the resizer's part, at once
        if plural == "persistentvolumes" and self.fake.bind_volumes:
            ref = merged["spec"].get("claimRef")
            if (merged.get("status") or {}).get("phase") == "Released" and not (ref or {}).get("uid"):
                merged["status"] = {"phase": "Available"}
        self._send_json(200, self.fake.put(plural, merged, ns, event="MODIFIED"))

    def _delete(self, plural: str, ns: str | None, name: str, q: dict[str, str]) -> None:
        grace = self.fake.grace.get(name) if plural == "pods" else None
        if grace is not None and (pod := self.fake.stored(plural, name, ns)) is not None:
            pod["metadata"]["deletionTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            timer = threading.Timer(grace, self.fake.remove, (plural, name, ns))
            timer.daemon = True
            timer.start()
            return self._send_json(200, self.fake.put(plural, pod, ns, event="MODIFIED"))
        obj = self.fake.remove(plural, name, ns)
        if obj is None:
            return self._error(404, f'{plural} "{name}" not found', "NotFound")
        if plural == "jobs" and q.get("propagationPolicy") in ("Background", "Foreground"):
            # The garbage collector's part; without a policy the API orphans the Job's pods.
            for pod in list(self.fake.objects.get(("pods", ns), {}).values()):
                if (pod["metadata"].get("labels") or {}).get("job-name") == name:
                    self.fake.remove("pods", pod["metadata"]["name"], ns)
        self._send_json(200, obj)

    def _log(self, ns: str | None, name: str, rec: Recorded) -> None:
        if self.fake.stored("pods", name, ns) is None:
            return self._error(404, f'pods "{name}" not found', "NotFound")
        text = self.fake.logs.get(name, "")
        tail = rec.query.get("tailLines")
        if tail:
            text = "".join(text.splitlines(keepends=True)[-int(tail[-1]):])
        raw = text.encode()
        limit = rec.query.get("limitBytes")
        if limit:
            raw = raw[:int(limit[-1])]
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _watch(self, plural: str, ns: str | None, q: dict[str, str]) -> None:
        """Stream events after resourceVersion, chunked, until timeoutSeconds pass."""
        since = int(q.get("resourceVersion") or self.fake.version)
        deadline = time.monotonic() + float(q.get("timeoutSeconds") or 30)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        try:
            with self.fake.lock:
                gone, self.fake.gone_next_watch = self.fake.gone_next_watch, False
                drop, self.fake.drop_next_watch = self.fake.drop_next_watch, False
            if drop:
                return self._hang_up()
            if gone:
                line = json.dumps({"type": "ERROR", "object": status_body(410, "too old resource version", "Expired")}).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                deadline = 0.0
            while True:
                with self.fake.lock:
                    fresh = [e for e in self.fake.events if e[0] > since and e[2] == plural and e[3] == ns]
                    if not fresh:
                        left = deadline - time.monotonic()
                        if left <= 0 or self.fake.stopping:
                            break
                        self.fake.lock.wait(min(left, 0.5))
                        continue
                for version, event_type, _p, _n, obj in fresh:
                    since = version
                    if _matches_fields(obj, q.get("fieldSelector")) and _matches_labels(obj, q.get("labelSelector")):
                        line = json.dumps({"type": event_type, "object": obj}).encode() + b"\n"
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                        self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _exec(self, ns: str | None, name: str, rec: Recorded) -> None:
        """A websocket exec: handshake, then stdout/stderr/status frames, then close."""
        if rec.headers.get("upgrade", "").lower() != "websocket":
            return self._error(400, "exec needs a websocket upgrade", "BadRequest")
        if self.fake.stored("pods", name, ns) is None:
            return self._error(404, f'pods "{name}" not found', "NotFound")
        argv = rec.query.get("command", [])
        container = (rec.query.get("container") or [None])[-1]
        key = rec.headers["sec-websocket-key"]
        accept = ws_accept(key)
        time.sleep(self.fake.exec_upgrade_delay)
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.send_header("Sec-WebSocket-Protocol", "v4.channel.k8s.io")
        self.end_headers()
        self.wfile.flush()
        answer = self.fake.exec_handler(name, container, argv)
        if answer is None:
            status = {"metadata": {}, "status": "Failure", "reason": "InternalError",
                      "message": 'Internal error occurred: error executing command in container: exec: "nope": executable file not found in $PATH'}
        else:
            rc, out, err = answer
            for channel, text in ((1, out), (2, err)):
                raw = text.encode()
                for i in range(0, len(raw), 8192):  # several frames, as a real server sends
                    self._ws_frame(bytes([channel]) + raw[i:i + 8192])
            status = {"metadata": {}, "status": "Success"} if rc == 0 else {
                "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
                "message": f"command terminated with non-zero exit code: exit status {rc}",
                "details": {"causes": [{"reason": "ExitCode", "message": str(rc)}]},
            }
        self._ws_frame(b"\x03" + json.dumps(status).encode())
        self._ws_frame(struct.pack("!H", 1000), opcode=0x8)
        self.close_connection = True
        self.connection.settimeout(2)
        try:  # wait for the client's close frame before hanging up
            closed = len(self.rfile.read(2)) == 2
        except OSError:
            closed = False
        self.fake.exec_closes.append(closed)

    def _ws_frame(self, payload: bytes, opcode: int = 0x2) -> None:
        """One unmasked server frame (RFC 6455 section 5.2)."""
        head = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([n])
        elif n < 65536:
            head += bytes([126]) + struct.pack("!H", n)
        else:
            head += bytes([127]) + struct.pack("!Q", n)
        self.wfile.write(head + payload)
        self.wfile.flush()
