"""The one port between dvdoctor and a DV namespace: a real cluster or the lab.

Objects go in and out as plain dicts shaped like the Kubernetes API's JSON (camelCase keys), so
facts, checks, fixes and flows never see client-library classes, and the lab can answer with the
same shapes from files on disk. Kinds are named by their plural resource name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Protocol, runtime_checkable

#: Namespaced kinds dvdoctor reads or writes, by plural resource name.
NAMESPACED_KINDS = (
    "pods",
    "jobs",
    "deployments",
    "statefulsets",
    "persistentvolumeclaims",
    "serviceaccounts",
    "events",
    "leases",
)
#: Cluster-scoped kinds.
CLUSTER_KINDS = ("persistentvolumes", "storageclasses")
KINDS = NAMESPACED_KINDS + CLUSTER_KINDS
#: Kinds only `schedule --apply` writes (its CronJob and the RBAC objects its job runs with):
#: get/create/patch/delete accept them, but `collect` never lists them, so the facts and the
#: rights `check` needs stay as they are. The last two are cluster-scoped.
MANAGED_KINDS = ("cronjobs", "roles", "rolebindings", "clusterroles", "clusterrolebindings")


@dataclass(frozen=True)
class ExecResult:
    """What a command run in a pod gave back; a non-zero rc is an answer, not an error."""

    rc: int
    stdout: str
    stderr: str = ""


@runtime_checkable
class Cluster(Protocol):
    """Everything dvdoctor does to a namespace goes through these methods."""

    namespace: str

    def describe(self) -> str:
        """One line naming where this port points (context and server, or lab folder)."""

    def list(self, kind: str, label_selector: str | None = None) -> list[dict]:
        """All objects of a kind in the namespace (or cluster-wide for cluster-scoped kinds)."""

    def get(self, kind: str, name: str) -> dict | None:
        """One object, or None when it does not exist."""

    def create(self, kind: str, body: dict, dry_run: bool = False) -> dict:
        """Create an object; raises Conflict if it exists, Forbidden/Invalid as the API does.

        dry_run: validate and admit it as a create would, store nothing (all-or-nothing applies).
        """

    def patch(self, kind: str, name: str, patch: dict, dry_run: bool = False) -> dict:
        """A JSON merge patch (RFC 7386) of one object; dry_run as for create."""

    def server_version(self) -> tuple[int, int] | None:
        """(major, minor) of the Kubernetes API server, or None when it does not say."""

    def served(self, kind: str) -> str | None:
        """The apiVersion the server serves `kind` under (asked once per run), or None when none dvdoctor knows."""

    def delete(self, kind: str, name: str) -> bool:
        """Delete with background propagation (a Job takes its pods along); False if absent."""

    def logs(self, pod: str, container: str | None = None, tail_lines: int | None = None,
             limit_bytes: int | None = None) -> str:
        """A pod's log; empty when the pod has not started. `limit_bytes` bounds what is read, for logs
        kept in facts and bundles, since one line of a log may be any length (the API's limitBytes
        keeps the first bytes of the tail; the lab, which reads a file, keeps its last)."""

    def exec(self, pod: str, argv: list[str], container: str | None = None) -> ExecResult:
        """Run argv in a running pod's container and return its exit code and output."""

    def allowed_rules(self) -> list[dict]:
        """The caller's RBAC rules in the namespace (SelfSubjectRulesReview resourceRules)."""

    def wait(
        self,
        kind: str,
        name: str,
        until: Callable[[dict | None], bool],
        timeout: float,
        on_change: Callable[[dict | None], None] | None = None,
    ) -> dict | None:
        """Block until `until(obj)` holds or `timeout` seconds pass; return the last object seen."""


def poll(
    cluster: Cluster,
    kind: str,
    name: str,
    until: Callable[[dict | None], bool],
    timeout: float,
    on_change: Callable[[dict | None], None] | None = None,
    interval: float = 0.2,
    max_interval: float = 2.0,
    pause: Callable[[float], None] = time.sleep,
) -> dict | None:
    """Waiting by polling `get`, for ports without watches; the interval backs off to a ceiling.

    `pause(seconds)` waits between looks; a port that knows when something changed (the lab: a pod's
    process ended) may return from it early, so a look follows the change at once.
    """
    deadline = time.monotonic() + timeout
    obj = cluster.get(kind, name)
    while True:
        if on_change is not None:
            on_change(obj)
        if until(obj) or time.monotonic() >= deadline:
            return obj
        pause(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(interval * 1.5, max_interval)
        obj = cluster.get(kind, name)
