"""LabCluster: the Cluster port over a lab folder, answering as an API server would.

Several processes may open the same folder (a backup running in one dvdoctor, `check` in another):
all state is on disk, every change holds the lab's lock, and reads reconcile first (see
controllers.py), so each sees the namespace as it is now.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Callable

from ..cluster import k8s
from ..cluster.port import ExecResult, poll
from ..core.errors import ClusterError, Conflict, Forbidden, NotFound, NotServed, UsageError
from . import api, runtime
from .controllers import Controllers
from .store import Store, now_iso

#: Kinds whose reads first catch up with processes and controllers.
LIVE_KINDS = ("pods", "jobs")


class LabCluster:
    """A simulated DV namespace on local disk (see dvdoctor.lab.create for what it holds)."""

    def __init__(self, path: Path | str, *, admin: bool = False) -> None:
        self.store = Store(Path(path))
        if not self.store.meta_path.is_file():
            raise UsageError(f"{self.store.root} is not a dvdoctor lab (create one with: dvdoctor lab create {path})")
        self.namespace: str = self.store.meta()["namespace"]
        self.controllers = Controllers(self.store)
        #: Calls made through the port, as a real adapter counts API requests.
        self.request_count = 0
        #: The lab's own setup and faults act as a cluster admin; dvdoctor gets the rules in lab.json.
        self.admin = admin

    def describe(self) -> str:
        return f"lab {self.store.root}"

    def _allow(self, verb: str, kind: str, subresource: str | None = None) -> None:
        self.request_count += 1
        api.kind_info(kind)
        if kind == "leases" and self.served("leases") is None:
            raise NotServed(f"the lab models Kubernetes {'.'.join(map(str, self.server_version()))}, "
                            "which serves no Lease API dvdoctor knows")
        if not self.admin:
            api.authorize(self.store.meta()["rules"], self.namespace, verb, kind, subresource)

    # ---- reads ------------------------------------------------------------------------------
    def list(self, kind: str, label_selector: str | None = None) -> list[dict]:
        self._allow("list", kind)
        if kind in LIVE_KINDS:
            self.controllers.reconcile()
        return [o for o in self.store.read_all(kind)
                if api.selector_matches(o["metadata"].get("labels") or {}, label_selector)]

    def get(self, kind: str, name: str) -> dict | None:
        self._allow("get", kind)
        if kind in LIVE_KINDS:
            self.controllers.reconcile()
        return self.store.read(kind, name)

    # ---- writes -----------------------------------------------------------------------------
    def create(self, kind: str, body: dict, dry_run: bool = False) -> dict:
        self._allow("create", kind)
        name = api.check_name(kind, body)
        _, version, kind_name = api.kind_info(kind)
        obj = copy.deepcopy(body)
        obj["apiVersion"], obj["kind"] = version, kind_name
        md = obj.setdefault("metadata", {})
        for key in ("uid", "resourceVersion", "creationTimestamp"):
            md.pop(key, None)
        if kind not in api.CLUSTER_SCOPED:
            md["namespace"] = self.namespace
        obj.pop("status", None)
        with self.store.locked():
            if self.store.read(kind, name) is not None:
                raise Conflict(f'{kind} "{name}" already exists')
            if kind in ("jobs", "pods"):
                self._require_service_account(kind, obj)
            if dry_run:  # validated as a create is, stored nowhere
                return obj
            if kind == "jobs":
                return self._create_job(obj)
            if kind == "pods":
                obj["status"] = {"phase": "Pending"}
                self.store.write("pods", obj)
                return self.store.write("pods", self.controllers.start_pod(obj))
            if kind == "persistentvolumeclaims":
                self.store.write(kind, obj)  # the claim's uid names its volume
                return self.store.write(kind, self.controllers.bind_claim(obj))
            if kind in ("deployments", "statefulsets"):
                md["generation"] = 1
            obj = self.store.write(kind, obj)
            if kind == "deployments":
                self.controllers.scale_deployment(obj)
                obj = self.store.write(kind, obj)
            return obj

    def _require_service_account(self, kind: str, obj: dict) -> None:
        """Admission refuses a pod whose service account does not exist (403)."""
        spec = k8s.job_pod_spec(obj) if kind == "jobs" else obj.get("spec") or {}
        sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        if self.store.read("serviceaccounts", sa) is None:
            raise Forbidden(f'{kind} "{obj["metadata"]["name"]}" is forbidden: error looking up service account '
                            f"{self.namespace}/{sa}: serviceaccount \"{sa}\" not found")

    def _create_job(self, job: dict) -> dict:
        template = job.setdefault("spec", {}).setdefault("template", {})
        labels = template.setdefault("metadata", {}).setdefault("labels", {})
        job["spec"].setdefault("backoffLimit", 6)
        job["spec"].setdefault("completions", 1)
        job["spec"].setdefault("parallelism", 1)
        job["status"] = {"startTime": now_iso()}
        job = self.store.write("jobs", job)  # the uid exists from here
        uid = job["metadata"]["uid"]
        labels.update({"controller-uid": uid, "job-name": k8s.name(job)})
        job["spec"]["selector"] = {"matchLabels": {"controller-uid": uid}}
        self.controllers.new_job_pod(job)
        job["status"]["active"] = 1
        return self.store.write("jobs", job)

    def patch(self, kind: str, name: str, patch: dict, dry_run: bool = False) -> dict:
        self._allow("patch", kind)
        with self.store.locked():
            obj = self.store.read(kind, name)
            if obj is None:
                raise NotFound(f'{kind} "{name}" not found')
            api.check_precondition(kind, obj, patch)
            merged = k8s.merge_patch(obj, patch)
            merged["metadata"]["name"] = name
            if kind == "jobs":
                api.check_job_patch(obj, merged)
            resize = False
            if kind == "persistentvolumeclaims":
                cls_name = (obj.get("spec") or {}).get("storageClassName")
                cls = self.store.read("storageclasses", cls_name) if cls_name else None
                resize = api.check_claim_patch(obj, merged, cls)
            if dry_run:
                return merged
            if resize:
                self.controllers.resize_claim(merged)
            if kind == "persistentvolumes":
                self.controllers.sync_volume(merged)
            if kind in ("deployments", "statefulsets") and merged.get("spec") != obj.get("spec"):
                merged["metadata"]["generation"] = int(obj["metadata"].get("generation", 1)) + 1
            if kind == "deployments":
                self.controllers.scale_deployment(merged)
            return self.store.write(kind, merged)

    def delete(self, kind: str, name: str) -> bool:
        self._allow("delete", kind)
        with self.store.locked():
            obj = self.store.read(kind, name)
            if obj is None:
                return False
            if kind == "jobs":
                self.controllers.delete_job(obj)
            elif kind == "pods":
                self.controllers.delete_pod(obj)
                self.controllers.recreate_workload_pod(obj)
            elif kind == "deployments":
                obj["spec"]["replicas"] = 0
                self.controllers.scale_deployment(obj)
                self.store.remove(kind, name)
            elif kind == "persistentvolumeclaims":
                self.controllers.release_claim(obj)
                self.store.remove(kind, name)
            else:
                self.store.remove(kind, name)
            return True

    # ---- pods -------------------------------------------------------------------------------
    def logs(self, pod: str, container: str | None = None, tail_lines: int | None = None,
             limit_bytes: int | None = None) -> str:
        self._allow("get", "pods", "log")
        self.controllers.reconcile()
        if self.store.read("pods", pod) is None:
            raise NotFound(f'pods "{pod}" not found')
        try:
            with open(self.store.pod_dir(pod) / "log", "rb") as f:
                if limit_bytes is not None:  # bounded, as the API bounds it; the end is what a reader needs
                    f.seek(max(0, os.fstat(f.fileno()).st_size - limit_bytes))
                text = f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""
        if tail_lines is not None:
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-tail_lines:]) if tail_lines > 0 else ""
        return text

    def exec(self, pod: str, argv: list[str], container: str | None = None) -> ExecResult:
        self._allow("create", "pods", "exec")
        self.controllers.reconcile()
        obj = self.store.read("pods", pod)
        if obj is None:
            raise NotFound(f'pods "{pod}" not found')
        phase = k8s.pod_phase(obj)
        if phase != "Running":
            raise ClusterError(f"cannot exec into a container in a completed pod; current phase is {phase}"
                               if phase in ("Succeeded", "Failed") else
                               f'unable to upgrade connection: pod "{pod}" is {phase}, not running')
        spec = obj["spec"]
        containers = spec.get("containers") or []
        chosen = next((c for c in containers if c["name"] == container), None) if container else containers[0]
        if chosen is None:
            raise ClusterError(f'unable to upgrade connection: container not found ("{container}")')
        meta = self.store.meta()
        info = meta["images"].get(chosen.get("image", ""), {})
        who = runtime.identity(spec, chosen, int(meta["bar_uid"]), bool(info.get("sudo")))
        rootfs = self.store.pod_dir(pod) / "rootfs"
        if not rootfs.is_dir():
            runtime.ensure_pod_dir(self.store.pod_dir(pod))
            runtime.build_rootfs(rootfs, spec, chosen, self.store.volume_dir, self.controllers.owner_uid())
        return runtime.run_sync(who.wrap(list(argv)), runtime.environment(chosen, rootfs, pod, info), rootfs)

    # ---- access and waiting -----------------------------------------------------------------
    def server_version(self) -> tuple[int, int] | None:
        """The Kubernetes release the lab models: OpenShift 4.6's 1.19 unless a fault said otherwise."""
        major, minor = str(self.store.meta().get("kubernetes", "1.19")).split(".")[:2]
        return int(major), int(minor)

    def served(self, kind: str) -> str | None:
        """The lab serves every kind at the version dvdoctor writes; no Lease before Kubernetes 1.12."""
        if kind == "leases" and self.server_version() < (1, 12):
            return None
        return api.kind_info(kind)[1]

    def allowed_rules(self) -> list[dict]:
        self.request_count += 1
        return copy.deepcopy(self.store.meta()["rules"])

    def wait(
        self,
        kind: str,
        name: str,
        until: Callable[[dict | None], bool],
        timeout: float,
        on_change: Callable[[dict | None], None] | None = None,
    ) -> dict | None:
        """Poll the folder: cheap, and another process's changes show at the next look; a pod's
        process that ends is a look at once (see runtime.wait_for_an_exit). The right asked for is a
        watch's, as a server's watch asks it: a role without it is refused here as it would be there."""
        self._allow("watch", kind)
        pods = self.store.root / "pods"
        return poll(self, kind, name, until, timeout, on_change, interval=0.1, max_interval=0.5,
                    pause=lambda seconds: runtime.wait_for_an_exit(pods, seconds))
