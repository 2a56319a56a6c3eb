"""A small HTTP client for the real tier's own setup and assertions, written apart from dvdoctor.

The tests judge dvdoctor by what the API server holds afterwards, so they must not read it back
through dvdoctor's own port (that would be a mock of the thing under test by another name).
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

#: Plural resource paths of the kinds the manifests and tests use.
PATHS = {
    "Namespace": ("/api/v1", "namespaces", False),
    "ServiceAccount": ("/api/v1", "serviceaccounts", True),
    "Secret": ("/api/v1", "secrets", True),
    "Pod": ("/api/v1", "pods", True),
    "Event": ("/api/v1", "events", True),
    "PersistentVolume": ("/api/v1", "persistentvolumes", False),
    "PersistentVolumeClaim": ("/api/v1", "persistentvolumeclaims", True),
    "ResourceQuota": ("/api/v1", "resourcequotas", True),
    "StorageClass": ("/apis/storage.k8s.io/v1", "storageclasses", False),
    "StatefulSet": ("/apis/apps/v1", "statefulsets", True),
    "Deployment": ("/apis/apps/v1", "deployments", True),
    "Job": ("/apis/batch/v1", "jobs", True),
    "CronJob": ("/apis/batch/v1beta1", "cronjobs", True),
    "Lease": ("/apis/coordination.k8s.io/v1", "leases", True),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles", True),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    "ClusterRole": ("/apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
    "ClusterRoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
}


class ApiError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


class Api:
    def __init__(self, server: str, token: str, ca_file: str) -> None:
        self.server = server
        self.token = token
        self.ssl = ssl.create_default_context(cafile=ca_file)

    def request(self, method: str, path: str, body: dict | None = None, content_type: str = "application/json") -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self.ssl, timeout=30) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, exc.read().decode("utf-8", "replace")) from None
        return json.loads(raw) if raw else {}

    def path(self, kind: str, ns: str | None, name: str | None = None) -> str:
        prefix, plural, namespaced = PATHS[kind]
        out = prefix + (f"/namespaces/{ns}" if namespaced else "") + f"/{plural}"
        return f"{out}/{name}" if name else out

    def get(self, kind: str, ns: str | None, name: str) -> dict | None:
        try:
            return self.request("GET", self.path(kind, ns, name))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, kind: str, ns: str | None, selector: str | None = None) -> list[dict]:
        query = f"?labelSelector={urllib.request.quote(selector)}" if selector else ""
        return self.request("GET", self.path(kind, ns) + query).get("items") or []

    def create(self, obj: dict, ns: str | None) -> dict:
        return self.request("POST", self.path(obj["kind"], ns), obj)

    def patch(self, kind: str, ns: str | None, name: str, patch: dict) -> dict:
        return self.request("PATCH", self.path(kind, ns, name), patch, "application/merge-patch+json")

    def delete(self, kind: str, ns: str | None, name: str, propagation: str = "Background") -> bool:
        try:
            self.request("DELETE", self.path(kind, ns, name), {"propagationPolicy": propagation})
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def wait(self, what: str, probe, timeout: float = 30.0, interval: float = 0.3):
        """Poll `probe()` until it returns something truthy; fail the test with `what` when it never does."""
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(interval)


def load_manifests(path: Path, values: dict[str, str]) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("${" + key + "}", value)
    # libyaml's loader where PyYAML has it (each test loads its namespace's manifests: the pure-Python
    # one spent about a CPU-second of the run on them)
    return [doc for doc in yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) if doc]
