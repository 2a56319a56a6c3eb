"""The Cluster port on a real Kubernetes / OpenShift API server, through the official client.

This is the only module that imports `kubernetes`, and only inside functions, so commands that
never talk to a cluster (`--help`, `check --from`, the lab) don't pay the client's import time.

Requests are built with the client's own `ApiClient.param_serialize` and sent by its REST layer
(auth, TLS, proxy, urllib3), on the same paths the typed `CoreV1Api`/`BatchV1Api`/... methods use.
The typed methods are not used for objects because they validate dict bodies into the client's
pydantic models: a field the client's model version does not know is rejected client-side
(`extra_forbidden`) and timestamps are rewritten, so DV's own job templates could not be sent
verbatim. Responses are read raw and parsed with json.loads: plain dicts in API shape, no model
round trip. Exec is sent the same way, through the client's websocket transport
(`kubernetes.stream.ws_client`): the request `CoreV1Api.connect_get_namespaced_pod_exec` would
build, byte for byte, without importing that module, which alone takes a quarter of a CPU-second
(every `check` on a cluster execs once in dv-engine-0).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from ..core.errors import (
    ClusterError,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    NotServed,
    Unavailable,
    Unreachable,
    UsageError,
)
from ..core import redact
from ..core.names import valid_name
from .port import ExecResult
from .retry import RetryPolicy

#: Seconds to wait for a TCP/TLS connection: an unreachable API server should fail fast.
CONNECT_TIMEOUT = 5.0
#: Seconds to wait for an answer to an ordinary request.
READ_TIMEOUT = 30.0
#: Seconds a pod log may take to arrive (logs can be large).
LOG_READ_TIMEOUT = 60.0
#: Longest single watch the server is asked for; a longer wait resumes with a new watch.
WATCH_CHUNK_SECONDS = 60
#: How every KubeCluster retries 429/5xx answers and dropped connections (tests swap in a fast one).
DEFAULT_RETRY = RetryPolicy()
#: Attempts for a request answered 429 or 5xx, or whose connection dropped.
MAX_TRIES = DEFAULT_RETRY.tries
#: Seconds a create or patch that was retried after an unclear failure may predate this run's clock
#: and still be judged this run's own (clock skew between this machine and the API server).
CLOCK_SKEW = 120.0
#: Seconds an exec may run before it is abandoned (dvdoctor's in-pod probes take a second or two).
EXEC_TIMEOUT = 120.0

#: A kubeconfig with many clusters and embedded certificates is well under this.
KUBECONFIG_MAX_BYTES = 16 * 1024 * 1024
IN_CLUSTER_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


@dataclass(frozen=True)
class _Kind:
    group: str
    version: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"


#: Plural resource name -> where it is served (the kinds of port.KINDS and port.MANAGED_KINDS).
_KINDS: dict[str, _Kind] = {
    "pods": _Kind("", "v1", "Pod", True),
    "events": _Kind("", "v1", "Event", True),
    "persistentvolumeclaims": _Kind("", "v1", "PersistentVolumeClaim", True),
    "serviceaccounts": _Kind("", "v1", "ServiceAccount", True),
    "persistentvolumes": _Kind("", "v1", "PersistentVolume", False),
    "jobs": _Kind("batch", "v1", "Job", True),
    "deployments": _Kind("apps", "v1", "Deployment", True),
    "statefulsets": _Kind("apps", "v1", "StatefulSet", True),
    "storageclasses": _Kind("storage.k8s.io", "v1", "StorageClass", False),
    "leases": _Kind("coordination.k8s.io", "v1", "Lease", True),
    "cronjobs": _Kind("batch", "v1", "CronJob", True),
    "roles": _Kind("rbac.authorization.k8s.io", "v1", "Role", True),
    "rolebindings": _Kind("rbac.authorization.k8s.io", "v1", "RoleBinding", True),
    "clusterroles": _Kind("rbac.authorization.k8s.io", "v1", "ClusterRole", False),
    "clusterrolebindings": _Kind("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", False),
}


#: Kinds whose version depends on the server: plural -> versions to look for, newest first.
#: CronJob is `batch/v1` only from Kubernetes 1.21 (OpenShift 4.5/4.6 serve `batch/v1beta1`);
#: Lease is `coordination.k8s.io/v1` from 1.14, `v1beta1` from 1.12 (OpenShift 3.11 has neither).
ALTERNATIVE_VERSIONS: dict[str, tuple[str, ...]] = {"cronjobs": ("v1", "v1beta1"), "leases": ("v1", "v1beta1")}


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_kubeconfig(path: str) -> None:
    """Refuse, in one line, a kubeconfig that is not one: not YAML, not a mapping, huge or absurdly deep.

    The kubernetes client would otherwise fail inside its own parser with a traceback."""
    import yaml

    from ..core.bounded import MAX_DEPTH, check_depth, read_text, yaml_load

    try:
        doc = yaml_load(read_text(path, KUBECONFIG_MAX_BYTES))
        check_depth(doc, MAX_DEPTH, max_nodes=1_000_000)
    except OSError as exc:
        raise UsageError(f"cannot read kubeconfig {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"kubeconfig {path} is not YAML: {_one_line(str(getattr(exc, 'problem', None) or exc))}") from None
    except RecursionError:
        raise UsageError(f"kubeconfig {path} is nested deeper than {MAX_DEPTH} levels; it is not a kubeconfig") from None
    except ValueError as exc:  # not UTF-8, too big, too deep
        raise UsageError(f"kubeconfig {path} cannot be used: {exc}") from None
    if doc is not None and not isinstance(doc, dict):
        raise UsageError(f"kubeconfig {path} is not a kubeconfig: a mapping with clusters, users and contexts is expected")
    problem = _kubeconfig_shape(doc or {})
    if problem:
        raise UsageError(f"kubeconfig {path} is not a kubeconfig: {problem}")


#: kubeconfig list -> (the mapping each entry holds, its fields that must be text when given)
_KUBECONFIG_LISTS = {
    "clusters": ("cluster", ("server", "certificate-authority", "certificate-authority-data", "proxy-url",
                             "tls-server-name")),
    "contexts": ("context", ("cluster", "user", "namespace")),
    "users": ("user", ("token", "tokenFile", "username", "password", "client-certificate",
                       "client-certificate-data", "client-key", "client-key-data", "as")),
}
#: fields that must be a mapping when given (the client calls .get on them)
_KUBECONFIG_MAPPINGS = {"user": ("exec", "auth-provider")}


def _kubeconfig_shape(doc: dict) -> str | None:
    """The first field whose type the kubernetes client would trip over (a traceback), said as a field path.

    The client trusts a kubeconfig's shape (`clusters: 5`, `context: 5`, `server: 5`); it is checked here first."""
    current = doc.get("current-context")
    if current is not None and not isinstance(current, str):
        return f"current-context is {_yaml_kind(current)}, a context name is expected"
    for list_name, (entry_name, text_fields) in _KUBECONFIG_LISTS.items():
        entries = doc.get(list_name)
        if entries is None:
            continue
        if not isinstance(entries, list):
            return f"{list_name} is {_yaml_kind(entries)}, a list is expected"
        for i, entry in enumerate(entries):
            where = f"{list_name}[{i}]"
            if not isinstance(entry, dict):
                return f"{where} is {_yaml_kind(entry)}, a mapping with name and {entry_name} is expected"
            if not isinstance(entry.get("name"), str):
                return f"{where}.name is {_yaml_kind(entry.get('name'))}, a name is expected"
            body = entry.get(entry_name)
            if body is None:
                continue
            if not isinstance(body, dict):
                return f"{where}.{entry_name} is {_yaml_kind(body)}, a mapping is expected"
            for field in text_fields:
                if field in body and body[field] is not None and not isinstance(body[field], str):
                    return f"{where}.{entry_name}.{field} is {_yaml_kind(body[field])}, text is expected"
            for field in _KUBECONFIG_MAPPINGS.get(entry_name, ()):
                if field in body and body[field] is not None and not isinstance(body[field], dict):
                    return f"{where}.{entry_name}.{field} is {_yaml_kind(body[field])}, a mapping is expected"
    return None


def _yaml_kind(value: object) -> str:
    """What a YAML value is, for the one line (never the value itself: it may be a token)."""
    if value is None:
        return "missing"
    return {bool: "true/false", int: "a number", float: "a number", str: "text", list: "a list",
            dict: "a mapping"}.get(type(value), type(value).__name__)


def _kubeconfig_paths(kubeconfig: str | None) -> tuple[list[str], list[str], bool]:
    """(candidate paths, existing paths, explicit?) the way kubectl looks for its config."""
    if kubeconfig:
        candidates, explicit = kubeconfig.split(os.pathsep), True
    elif os.environ.get("KUBECONFIG"):
        candidates, explicit = os.environ["KUBECONFIG"].split(os.pathsep), False
    else:
        candidates, explicit = ["~/.kube/config"], False
    candidates = [os.path.expanduser(p) for p in candidates if p]
    return candidates, [p for p in candidates if os.path.isfile(p)], explicit


def connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> "KubeCluster":
    """A KubeCluster for the given kubeconfig/context/namespace, resolved the way `oc` does.

    The namespace is checked to exist with one GET, which also proves the server is reachable and
    the credentials work, so a typo fails here with one line instead of as an empty DV namespace.
    """
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.config.config_exception import ConfigException

    if namespace is not None:
        valid_name(namespace, "namespace")
    candidates, existing, explicit = _kubeconfig_paths(kubeconfig)
    configuration = k8s_client.Configuration()
    if not existing:
        if explicit or not os.environ.get("KUBERNETES_SERVICE_HOST"):
            raise UsageError(
                f"no kubeconfig found (looked in {', '.join(candidates)}): log in with `oc login`, "
                "point --kubeconfig at a kubeconfig file, or use --lab for the simulated namespace"
            )
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except ConfigException as exc:
            raise UsageError(f"in-cluster configuration failed: {_one_line(str(exc))}") from None
        context_name = "in-cluster service account"
        if namespace is None:
            try:
                namespace = Path(IN_CLUSTER_NAMESPACE_FILE).read_text(encoding="utf-8").strip() or "default"
            except OSError:
                namespace = "default"
    else:
        for path in existing:
            _check_kubeconfig(path)
        joined = os.pathsep.join(existing)
        try:
            contexts, current = k8s_config.list_kube_config_contexts(config_file=joined)
        except (ConfigException, OSError, ValueError) as exc:
            raise UsageError(f"cannot read kubeconfig {joined}: {_one_line(str(exc))}") from None
        by_name = {c["name"]: c for c in contexts or []}
        known = ", ".join(sorted(by_name)) or "none"
        if context is None:
            if not current:
                raise UsageError(f"kubeconfig {joined} sets no current context: pass --context (known: {known})")
            context_name = current["name"]
        elif context not in by_name:
            raise UsageError(f"unknown context {context!r} in {joined} (known: {known})")
        else:
            context_name = context
        if namespace is None:
            namespace = (by_name.get(context_name, {}).get("context") or {}).get("namespace") or "default"
        try:
            k8s_config.load_kube_config(
                config_file=joined, context=context_name, client_configuration=configuration, persist_config=False
            )
        except (ConfigException, OSError, ValueError) as exc:
            raise UsageError(f"cannot use context {context_name!r} of {joined}: {_one_line(str(exc))}") from None
    cluster = KubeCluster(configuration, valid_name(namespace, "namespace"), context_name)
    cluster.check_namespace()
    return cluster


class KubeCluster:
    """The Cluster port over HTTP; every request it sends is counted in `request_count`."""

    def __init__(self, configuration: Any, namespace: str, context: str) -> None:
        from kubernetes import client as k8s_client

        # No urllib3-level retries: retries of 429/5xx are ours (bounded, with backoff), and a
        # refused or timed-out connection should fail at once, not after urllib3's 3 silent tries.
        configuration.retries = False
        self._api = k8s_client.ApiClient(configuration)
        self._server = redact.public_url(configuration.host)
        self._context = context
        self.namespace = namespace
        self.request_count = 0
        #: How 429/5xx answers and dropped connections are retried; tests shorten it.
        self.retry = DEFAULT_RETRY
        #: Seconds an exec's websocket may stay silent in its handshake or part-way through a frame
        #: (tests shorten it); see _handshake. Silence between frames is the command's own (EXEC_TIMEOUT).
        self.exec_silence_timeout = READ_TIMEOUT
        #: group/version -> the resources it serves (None: not served), each asked once per run.
        self._discovered: dict[str, frozenset[str] | None] = {}

    @property
    def retry_backoff(self) -> float:
        """The first backoff of the retry policy (kept as a knob: tests set it small)."""
        return self.retry.base

    @retry_backoff.setter
    def retry_backoff(self, seconds: float) -> None:
        self.retry = self.retry.with_base(seconds)

    # -- the port ---------------------------------------------------------------------------------

    def describe(self) -> str:
        return f"context {self._context} at {self._server}"

    def list(self, kind: str, label_selector: str | None = None) -> list[dict]:
        info = self._info(kind)
        query = [("labelSelector", label_selector)] if label_selector else []
        doc = self._json("GET", self._path(kind), query, what=("list", kind, None))
        items = doc.get("items") or []
        for item in items:  # list items carry no kind; add it so objects look like a GET's
            item.setdefault("apiVersion", info.api_version)
            item.setdefault("kind", info.kind)
        return items

    def get(self, kind: str, name: str) -> dict | None:
        try:
            return self._json("GET", self._path(kind, name), what=("get", kind, name))
        except NotFound:
            return None

    def create(self, kind: str, body: dict, dry_run: bool = False) -> dict:
        """POST; retried after a 5xx or a dropped connection, since a create that may have landed is
        read back on the 409 that follows: an object carrying everything we sent, made just now, is ours.

        dry_run: sent with dryRun=All (validated and admitted in full, stored nowhere). The body's
        apiVersion becomes the one this server serves the kind under (CronJob, Lease: same fields).
        """
        name = (body.get("metadata") or {}).get("name")
        info = self._info(kind)
        if body.get("apiVersion") and body["apiVersion"] != info.api_version:
            body = {**body, "apiVersion": info.api_version}
        since = time.time()

        def landed(_exc: ClusterError) -> dict | None:
            stored = self.get(kind, name) if name else None
            return stored if stored is not None and _is_our_create(body, stored, since) else None

        return self._json("POST", self._path(kind), _dry(dry_run), body=body,
                          what=("dry-run create" if dry_run else "create", kind, name),
                          recover=None if dry_run else landed)

    def patch(self, kind: str, name: str, patch: dict, dry_run: bool = False) -> dict:
        """A merge patch is the same however often it is applied; one that names the resourceVersion it
        was made at gets a 409 when tried again after it landed, so the object is read back to see."""
        effect = {k: ({mk: mv for mk, mv in v.items() if mk != "resourceVersion"} if k == "metadata" and isinstance(v, dict)
                      else v) for k, v in patch.items()}  # the change itself, without its precondition

        def landed(_exc: ClusterError) -> dict | None:
            stored = self.get(kind, name)
            return stored if stored is not None and _patch_applied(effect, stored) else None

        return self._json(
            "PATCH", self._path(kind, name), _dry(dry_run), body=patch, content_type="application/merge-patch+json",
            what=("dry-run patch" if dry_run else "patch", kind, name), recover=None if dry_run else landed,
        )

    def server_version(self) -> tuple[int, int] | None:
        """(major, minor) of the API server (GET /version, asked once per run); None when it does not say.

        OpenShift 3.11 answers minor "11+": the number is what counts.
        """
        if not hasattr(self, "_version"):
            try:
                doc = self._json("GET", "/version", what=("get", "version", None))
                major, minor = (re.match(r"\d+", str(doc.get(k) or "")) for k in ("major", "minor"))
                self._version = (int(major.group()), int(minor.group())) if major and minor else None
            except (NotFound, Forbidden):
                self._version = None
        return self._version

    def served(self, kind: str) -> str | None:
        """The apiVersion this server serves `kind` under, or None when it serves none dvdoctor knows.

        Asked once per run (a discovery GET of each group/version looked at), then cached.
        """
        try:
            return self._info(kind).api_version
        except NotServed:
            return None

    def delete(self, kind: str, name: str) -> bool:
        # Background propagation: without it a Job deleted through the API orphans its pods.
        # A 404 after a try that may have landed means that try deleted it.
        try:
            self._json("DELETE", self._path(kind, name), [("propagationPolicy", "Background")],
                       what=("delete", kind, name), recover=lambda exc: {} if isinstance(exc, NotFound) else None)
        except NotFound:
            return False
        return True

    def logs(self, pod: str, container: str | None = None, tail_lines: int | None = None,
             limit_bytes: int | None = None) -> str:
        query: list[tuple[str, Any]] = []
        if container:
            query.append(("container", container))
        if tail_lines is not None:
            query.append(("tailLines", tail_lines))
        if limit_bytes is not None:
            query.append(("limitBytes", limit_bytes))
        try:
            resp = self._send("GET", self._path("pods", pod) + "/log", query, what=("get", "pods/log", pod),
                              read_timeout=LOG_READ_TIMEOUT)
        except Invalid as exc:
            # 400 "container ... is waiting to start": a pod that has not started has no log yet.
            if "waiting to start" in str(exc) or "ContainerCreating" in str(exc):
                return ""
            raise
        return (resp.data or b"").decode("utf-8", "replace")

    def exec(self, pod: str, argv: list[str], container: str | None = None) -> ExecResult:
        from kubernetes.client.exceptions import ApiException
        from kubernetes.stream.ws_client import websocket_call
        from websocket import WebSocketException

        what = ("create", "pods/exec", pod)
        # Text only, as the typed method's validation allowed: anything else would be sent as its repr.
        if not (isinstance(pod, str) and (container is None or isinstance(container, str))
                and isinstance(argv, (list, tuple)) and all(isinstance(a, str) for a in argv)):
            raise TypeError("exec takes a pod name, a container name or None, and a list of str")
        # The query as the typed method orders it: each argument its own `command=`, then the flags.
        query: list[tuple[str, Any]] = [("command", list(argv))]
        if container:
            query.append(("container", container))
        query += [("stderr", True), ("stdin", False), ("stdout", True), ("tty", False)]
        attempts = self.retry.start()
        while True:
            attempts.next()
            self.request_count += 1
            try:
                # built anew for each try: the token may be refreshed in between (an exec plugin's)
                _, url, headers, _, _ = self._api.param_serialize(
                    method="GET", resource_path="/api/v1/namespaces/{namespace}/pods/{name}/exec",
                    path_params={"namespace": self.namespace, "name": pod}, query_params=query,
                    collection_formats={"command": "multi"}, header_params={"Accept": "*/*"},
                    auth_settings=["BearerToken"],
                )
                ws = _handshake(
                    lambda: websocket_call(self._api.configuration, "GET", url, headers=headers, _preload_content=False),
                    self.exec_silence_timeout, pod)
                break
            except ApiException as exc:
                error = self._ws_error(exc, what)
                # A refused handshake (429/5xx) means the command never started: trying again is harmless.
                if isinstance(error, Unavailable) and attempts.wait():
                    continue
                raise error from None
        try:
            # The client reads a frame only once its first byte is there, but then reads it whole on a socket
            # without a timeout: a server that stops part-way through a frame held exec for ever (break-it,
            # session 20). Silence between frames is still waited out up to EXEC_TIMEOUT.
            ws.sock.settimeout(self.exec_silence_timeout)
            ws.run_forever(timeout=EXEC_TIMEOUT)
            if ws.is_open():
                raise ClusterError(f"exec in pod {pod} ran longer than {EXEC_TIMEOUT:.0f} s and was abandoned")
            stdout, stderr = ws.read_stdout(timeout=0), ws.read_stderr(timeout=0)
            status_text = ws.read_channel(3, timeout=0)
        except (OSError, ValueError, WebSocketException) as exc:  # the socket's, the framing's, websocket-client's own
            raise ClusterError(f"exec in pod {pod} failed: {_one_line(str(exc) or type(exc).__name__)}") from None
        finally:
            ws.close()
        return ExecResult(_exec_rc(status_text, pod), stdout, stderr)

    def allowed_rules(self) -> list[dict]:
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectRulesReview",
            "spec": {"namespace": self.namespace},
        }
        doc = self._json("POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", body=body,
                         what=("create", "selfsubjectrulesreviews", None))
        return list((doc.get("status") or {}).get("resourceRules") or [])

    def wait(
        self,
        kind: str,
        name: str,
        until: Callable[[dict | None], bool],
        timeout: float,
        on_change: Callable[[dict | None], None] | None = None,
    ) -> dict | None:
        """Watch one object (resuming when the watch ends early) until `until` holds or time is up."""
        deadline = time.monotonic() + timeout
        obj, version = self._get_with_version(kind, name)
        if on_change is not None:
            on_change(obj)
        while not until(obj):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                for event_type, event_obj, new_version in self._watch(kind, name, version, left):
                    version = new_version or version
                    if event_type == "BOOKMARK":
                        continue
                    obj = None if event_type == "DELETED" else event_obj
                    if on_change is not None:
                        on_change(obj)
                    if until(obj):
                        return obj
            except _Gone:
                obj, version = self._get_with_version(kind, name)
                if on_change is not None:
                    on_change(obj)
            except (Unreachable, Unavailable):
                # A cut or refused watch (each start already retried) is resumed until the deadline.
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        return obj

    # -- used by connect() --------------------------------------------------------------------------

    def check_namespace(self) -> None:
        """Fail with one line if the namespace does not exist; a forbidden GET is not a failure."""
        try:
            self._json("GET", f"/api/v1/namespaces/{self.namespace}", what=("get", "namespaces", self.namespace))
        except NotFound:
            raise NotFound(f"namespace {self.namespace} does not exist ({self.describe()})") from None
        except Forbidden as exc:
            if "credentials" in str(exc):
                raise
            # Many users may read their project but not the Namespace object: go on.

    # -- requests ----------------------------------------------------------------------------------

    def _info(self, kind: str) -> _Kind:
        """Where `kind` is served here: the fixed entry, or the first served of its alternatives."""
        info = _kind(kind)
        versions = ALTERNATIVE_VERSIONS.get(kind)
        if not versions:
            return info
        for version in versions:
            candidate = _Kind(info.group, version, info.kind, info.namespaced)
            if kind in self._resources(candidate.api_version, candidate.prefix):
                return candidate
        raise NotServed(
            f"the API server {self._server} serves no {info.kind} API that dvdoctor knows "
            f"({', '.join(f'{info.group}/{v}' for v in versions)}): it is older than dvdoctor supports for this"
        )

    def _resources(self, group_version: str, prefix: str) -> frozenset[str]:
        if group_version not in self._discovered:
            try:
                doc = self._json("GET", prefix, what=("discover", group_version, None))
                self._discovered[group_version] = frozenset(
                    str(r.get("name")) for r in doc.get("resources") or [] if "/" not in str(r.get("name")))
            except NotFound:
                self._discovered[group_version] = None
        return self._discovered[group_version] or frozenset()

    def _path(self, kind: str, name: str | None = None) -> str:
        info = self._info(kind)
        path = info.prefix + (f"/namespaces/{self.namespace}" if info.namespaced else "") + f"/{kind}"
        return f"{path}/{name}" if name else path

    def _json(
        self,
        method: str,
        path: str,
        query: list[tuple[str, Any]] | None = None,
        *,
        body: dict | None = None,
        content_type: str | None = None,
        what: tuple[str, str, str | None],
        recover: Callable[[ClusterError], dict | None] | None = None,
    ) -> dict:
        """One request with a JSON answer.

        `recover` is asked, when a try that may have been applied (5xx, dropped) was followed by a
        409 or 404, whether that earlier try did the work: it returns the object then, else None.
        """
        sent = _Tries()
        try:
            resp = self._send(method, path, query, body=body, content_type=content_type, what=what, tries=sent)
        except (Conflict, NotFound) as exc:
            if recover is not None and sent.unclear:
                try:
                    done = recover(exc)
                except ClusterError:
                    done = None  # the read-back failed too: the answer we have stands
                if done is not None:
                    return done
            raise
        raw = resp.data
        try:
            doc = json.loads(raw) if raw else {}
        except ValueError:
            raise ClusterError(f"{self._attempt(what)}: the server's answer is not JSON") from None
        return doc if isinstance(doc, dict) else {}

    def _send(
        self,
        method: str,
        path: str,
        query: list[tuple[str, Any]] | None = None,
        *,
        body: dict | None = None,
        content_type: str | None = None,
        what: tuple[str, str, str | None],
        read_timeout: float = READ_TIMEOUT,
        stream: bool = False,
        tries: "_Tries | None" = None,
    ) -> Any:
        """Send one request, retried per self.retry, and return the response (its body read unless `stream`).

        Retried: 429 (the server did not take the request up), and 5xx or a connection dropped
        before the whole answer arrived; after those last two the request may have been applied,
        which `tries.unclear` records for the caller's read-back. A refused connection is not
        retried: no server is listening, and waiting will not change that within a command.
        """
        from kubernetes.client.exceptions import ApiException

        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        tries = tries if tries is not None else _Tries()
        attempts = self.retry.start()
        while True:
            attempt = attempts.next()
            request = self._api.param_serialize(
                method=method, resource_path=path, query_params=list(query or []), header_params=dict(headers),
                body=body, auth_settings=["BearerToken"],
            )
            self.request_count += 1
            try:
                resp = self._api.call_api(*request, _request_timeout=(CONNECT_TIMEOUT, read_timeout))
                if not stream or not 200 <= resp.status <= 299:
                    resp.read()
            except ApiException as exc:  # raised by the REST layer for TLS errors
                raise self._transport_error(exc.reason or str(exc), what) from None
            except Exception as exc:  # urllib3's errors: refused, timed out, dropped
                if not _is_urllib3_error(exc):
                    raise
                if _is_dropped(exc):
                    tries.unclear = True
                    if attempts.wait():
                        continue
                raise self._transport_error(exc, what) from None
            status = resp.status
            if 200 <= status <= 299:
                return resp
            if status == 429 or status >= 500:
                tries.unclear = tries.unclear or status != 429
                if attempts.wait(resp.getheader("Retry-After")):
                    continue
            raise self._http_error(status, resp.data, what, tries=attempt)

    def _get_with_version(self, kind: str, name: str) -> tuple[dict | None, str | None]:
        """The object (or None) and a resourceVersion to watch from, in one list request."""
        doc = self._json("GET", self._path(kind), [("fieldSelector", f"metadata.name={name}")],
                         what=("list", kind, None))
        items = doc.get("items") or []
        obj = items[0] if items else None
        if obj is not None:
            info = self._info(kind)
            obj.setdefault("apiVersion", info.api_version)
            obj.setdefault("kind", info.kind)
        return obj, (doc.get("metadata") or {}).get("resourceVersion")

    def _watch(self, kind: str, name: str, version: str | None, left: float) -> Iterator[tuple[str, dict, str | None]]:
        """Events of one watch request: (type, object, its resourceVersion); ends when the server ends it."""
        seconds = max(1, min(WATCH_CHUNK_SECONDS, int(left + 0.999)))
        query: list[tuple[str, Any]] = [
            ("watch", "true"),
            ("fieldSelector", f"metadata.name={name}"),
            ("timeoutSeconds", seconds),
            ("allowWatchBookmarks", "true"),
        ]
        if version:
            query.append(("resourceVersion", version))
        what = ("watch", kind, None)
        # The server ends the watch after whole seconds; the client stops waiting at the caller's deadline.
        resp = self._send("GET", self._path(kind), query, what=what, read_timeout=min(seconds + READ_TIMEOUT, left + 0.1),
                          stream=True).response
        try:
            for line in _lines(resp):
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    if obj.get("code") == 410:
                        raise _Gone()
                    raise self._http_error(int(obj.get("code") or 500), json.dumps(obj).encode(), what, tries=1)
                yield event.get("type", ""), obj, (obj.get("metadata") or {}).get("resourceVersion")
        except Exception as exc:
            if _is_urllib3_error(exc):
                raise self._transport_error(exc, what) from None
            raise
        finally:
            resp.release_conn()

    # -- errors ------------------------------------------------------------------------------------

    def _attempt(self, what: tuple[str, str, str | None]) -> str:
        verb, resource, name = what
        target = f"{resource}/{name}" if name and resource != "namespaces" else (name if name else resource)
        if resource == "namespaces":
            return f"{verb} namespace {name}"
        info = _KINDS.get(resource.split("/")[0])
        where = f" in namespace {self.namespace}" if info is None or info.namespaced else ""
        return f"{verb} {target}{where}"

    def _http_error(self, status: int, raw: bytes | None, what: tuple[str, str, str | None], tries: int) -> ClusterError:
        message = ""
        try:
            doc = json.loads(raw or b"")
            if isinstance(doc, dict):
                message = str(doc.get("message") or "")
        except ValueError:
            message = (raw or b"").decode("utf-8", "replace")
        message = _one_line(message)
        attempt = self._attempt(what)
        verb, resource, name = what
        if status == 401:
            return Forbidden(
                f"unauthorized: the API server {self._server} rejected the credentials of context "
                f"{self._context} while trying to {attempt}; log in again (`oc login`)"
            )
        if status == 403:
            user = re.search(r'User "([^"]+)"', message)
            if user:
                return Forbidden(f"forbidden: cannot {attempt} (as {user.group(1)})")
            return Forbidden(f"forbidden: cannot {attempt}: {message or 'no reason given'}")
        if status == 404:
            return NotFound(f"not found: {attempt}" + (f": {message}" if message else ""))
        if status == 409:
            if verb == "create":
                return Conflict(f"conflict: {resource}/{name} already exists in namespace {self.namespace}")
            return Conflict(f"conflict: cannot {attempt}: {message}")
        if status in (400, 422):
            return Invalid(f"invalid: cannot {attempt}: {message or f'HTTP {status}'}")
        if status == 429 or status >= 500:
            return Unavailable(
                f"the API server {self._server} failed to {attempt} (HTTP {status} after {tries} "
                f"{'try' if tries == 1 else 'tries'})" + (f": {message}" if message else "")
            )
        return ClusterError(f"cannot {attempt}: HTTP {status}" + (f": {message}" if message else ""))

    def _transport_error(self, exc: Any, what: tuple[str, str, str | None]) -> Unreachable:
        return Unreachable(
            f"cannot reach the API server {self._server} (context {self._context}) to {self._attempt(what)}: "
            f"{_transport_reason(exc)}"
        )

    def _ws_error(self, exc: Any, what: tuple[str, str, str | None]) -> ClusterError:
        """Exec failures come back from the websocket layer as status-0 ApiExceptions; read the HTTP status."""
        reason = str(getattr(exc, "reason", "") or exc)
        handshake = re.search(r"Handshake status (\d{3})", reason)
        if handshake:
            # websocket-client's message: "Handshake status N REASON -+-+- HEADERS -+-+- BODY"
            raw = reason.rsplit("-+-+-", 1)[-1].strip().encode() if "-+-+-" in reason else b""
            return self._http_error(int(handshake.group(1)), raw, what, tries=1)
        if re.search(r"refused|timed out|Name or service not known|unreachable", reason, re.I):
            return Unreachable(
                f"cannot reach the API server {self._server} (context {self._context}) to {self._attempt(what)}: "
                f"{_one_line(reason, 120)}"
            )
        return ClusterError(f"cannot {self._attempt(what)}: {_one_line(reason)}")


class _Tries:
    """What the tries of one request left unclear: whether a failed try was applied by the server."""

    def __init__(self) -> None:
        self.unclear = False


def _contains(sent: Any, stored: Any) -> bool:
    """Every value we sent that the server kept is in the stored object as sent: the server adds
    defaults, and drops fields it does not serve (a Job's ttlSecondsAfterFinished before 1.21)."""
    if isinstance(sent, dict):
        return isinstance(stored, dict) and all(k not in stored or _contains(v, stored[k]) for k, v in sent.items())
    if isinstance(sent, list):
        return isinstance(stored, list) and len(sent) == len(stored) and all(map(_contains, sent, stored))
    return sent == stored


def _is_our_create(body: dict, stored: dict, since: float) -> bool:
    """The object found after a retried create is the one our earlier try made.

    It carries every label, annotation and field we sent, and the server made it no earlier than
    this create began (less CLOCK_SKEW): an older look-alike (a finished job of an earlier run) is
    someone else's, and the 409 stands.
    """
    meta, kept = body.get("metadata") or {}, stored.get("metadata") or {}
    for key in ("labels", "annotations"):  # never dropped by a server: all must be there
        ours, theirs = meta.get(key) or {}, kept.get(key) or {}
        if any(theirs.get(k) != v for k, v in ours.items()):
            return False
    if not all(_contains(v, stored.get(k)) for k, v in body.items() if k not in ("metadata", "status", "apiVersion", "kind")):
        return False
    created = _epoch(kept.get("creationTimestamp"))
    return created is not None and created >= since - CLOCK_SKEW


def _patch_applied(patch: Any, stored: Any) -> bool:
    """Applying this merge patch to `stored` would change nothing."""
    if not isinstance(patch, dict):
        return patch == stored
    if not isinstance(stored, dict):
        return False
    for key, value in patch.items():
        if value is None:
            if key in stored:
                return False
        elif isinstance(value, dict):
            if not _patch_applied(value, stored.get(key, {})):
                return False
        elif stored.get(key) != value:
            return False
    return True


def _epoch(stamp: Any) -> float | None:
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _dry(dry_run: bool) -> list[tuple[str, Any]]:
    """Server-side dry run (GA in Kubernetes 1.18): validated and admitted in full, stored nowhere."""
    return [("dryRun", "All")] if dry_run else []


class _Gone(Exception):
    """The watch's resourceVersion is too old (410): start again from a fresh read."""


def _kind(kind: str) -> _Kind:
    try:
        return _KINDS[kind]
    except KeyError:
        raise UsageError(f"unknown kind {kind!r} (known: {', '.join(_KINDS)})") from None


def _lines(resp: Any) -> Iterator[bytes]:
    """Newline-delimited chunks of a streamed response, as they arrive."""
    pending = b""
    for chunk in resp.stream(4096, decode_content=True):
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if line.strip():
                yield line
    if pending.strip():
        yield pending


def _exec_rc(status_text: str, pod: str) -> int:
    """The command's exit code from the exec status channel (a v1 Status object)."""
    try:
        status = json.loads(status_text) if status_text else None
    except ValueError:
        status = None
    if not isinstance(status, dict):
        raise ClusterError(f"exec in pod {pod} ended without an exit status (the connection dropped?)")
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message", ""))
            except ValueError:
                break
    raise ClusterError(f"exec in pod {pod} failed to run: {_one_line(status.get('message') or status_text)}")


def _is_urllib3_error(exc: BaseException) -> bool:
    import urllib3.exceptions

    return isinstance(exc, urllib3.exceptions.HTTPError)


def _is_dropped(exc: BaseException) -> bool:
    """The server (or a proxy) closed the connection without an answer."""
    import urllib3.exceptions

    return isinstance(exc, urllib3.exceptions.ProtocolError)


def _transport_reason(exc: Any) -> str:
    import urllib3.exceptions

    if isinstance(exc, str):
        return _one_line(exc, 160)
    # NewConnectionError subclasses ConnectTimeoutError in urllib3, so it is tested first.
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        inner = re.search(r"\[Errno -?\d+\] ([^')]+)", str(exc))
        return _one_line(inner.group(1) if inner else "connection failed", 120)
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        return f"no connection within {CONNECT_TIMEOUT:.0f} s"
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return "no answer in time"
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        return "the connection dropped"
    return _one_line(f"{type(exc).__name__}: {exc}", 160)


def _handshake(connect: Callable[[], Any], timeout: float, pod: str) -> Any:
    """The exec's websocket, connected within `timeout` seconds, else a ClusterError.

    The client opens it on a socket with no timeout (websocket-client's default timeout applies only to
    its own create_connection), so an API server that takes the connection and never answers the
    upgrade, or an address that drops the connection's first packet, held dvdoctor for ever (break-it,
    session 20). The handshake runs in a thread of its own; one that completes after dvdoctor gave up
    has its connection closed at once, and the error says the command may have started (the server
    starts it once the upgrade is through)."""
    lock = threading.Lock()
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            ws = connect()
        except BaseException as exc:  # handed to the caller's thread, which raises it
            with lock:
                box["error"] = exc
            return
        with lock:
            if box.get("abandoned"):
                ws.close()
            else:
                box["ws"] = ws

    thread = threading.Thread(target=run, name="dvdoctor-exec-handshake", daemon=True)
    thread.start()
    try:
        thread.join(timeout)
    except BaseException:  # Ctrl-C while waiting: a websocket that opens later is closed, not left open
        with lock:
            box["abandoned"] = True
            if "ws" in box:
                box["ws"].close()
        raise
    with lock:
        if "ws" not in box and "error" not in box:
            box["abandoned"] = True
            raise ClusterError(f"exec in pod {pod}: the API server did not answer the websocket handshake within "
                               f"{timeout:g} s (the command may have started)")
    if "error" in box:
        raise box["error"]
    return box["ws"]
