"""The lab's stand-ins for the kubelet, scheduler and controllers, run lazily on each read.

There is no daemon: every get or list of pods and jobs first reconciles (under the lab's lock)
what a cluster would have done meanwhile. A started pod's process state becomes its phase; a Job
retries failed pods up to backoffLimit, then fails with BackoffLimitExceeded; activeDeadlineSeconds
kills its pod (DeadlineExceeded); ttlSecondsAfterFinished removes it with its pods. Pods that
can't be scheduled (missing claim) or pulled (unknown image) stay Pending with the waiting reasons
a real cluster gives, and start as soon as what they wait for appears.
"""

from __future__ import annotations

import copy
import hashlib
import os
import secrets
import shutil
from datetime import datetime, timezone
from typing import Iterator

from ..cluster import k8s
from ..core.units import parse_quantity, parse_time
from . import runtime, status
from .store import Store, mkdirs, now_iso

#: The alphabet Kubernetes uses for generated name suffixes (no vowels, no look-alikes).
SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
#: Seconds a pod shows ErrImagePull before the kubelet reports ImagePullBackOff.
PULL_BACKOFF_AFTER = 5


def suffix(n: int = 5) -> str:
    return "".join(secrets.choice(SUFFIX_ALPHABET) for _ in range(n))


def template_hash(name: str) -> str:
    """A ReplicaSet's pod-template-hash, stable per deployment so pod names look like the real ones."""
    digest = hashlib.sha256(name.encode()).digest()
    return "".join(SUFFIX_ALPHABET[b % len(SUFFIX_ALPHABET)] for b in digest[:10])


def _age(stamp: str | None) -> float:
    when = parse_time(stamp)
    return (datetime.now(timezone.utc) - when).total_seconds() if when else 0.0


class Controllers:
    """Everything that changes objects without an API call: pods starting and ending, jobs, replicas."""

    def __init__(self, store: Store) -> None:
        self.store = store
        #: file -> the version of it last seen settled (see reconcile)
        self._settled: dict[str, tuple[int, int, int]] = {}

    # ---- helpers ------------------------------------------------------------------------
    @property
    def meta(self) -> dict:
        return self.store.meta()

    def owner_uid(self) -> int | None:
        """Volumes belong to the BAR uid when the lab can chown (as an fsGroup or NFS volume would)."""
        return int(self.meta["bar_uid"]) if os.geteuid() == 0 else None

    def event(self, kind: str, name: str, reason: str, message: str, type_: str = "Warning") -> None:
        ns = self.meta["namespace"]
        stamp = now_iso()
        self.store.write("events", {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{name}.{secrets.token_hex(8)}", "namespace": ns},
            "involvedObject": {"kind": kind, "name": name, "namespace": ns},
            "reason": reason, "message": message, "type": type_, "count": 1,
            "firstTimestamp": stamp, "lastTimestamp": stamp, "source": {"component": "lab"},
        })

    # ---- claims ---------------------------------------------------------------------------
    def bind_claim(self, pvc: dict) -> dict:
        """Bind a new claim: to the volume it names or that is pre-bound to it (static binding), else to
        a volume provisioned by its storage class when that class exists (else it stays Pending)."""
        spec = pvc.setdefault("spec", {})
        static = self._static_volume(pvc)
        if static is not None or spec.get("volumeName"):
            return self._bind_static(pvc, static)
        classes = self.store.read_all("storageclasses")
        cls_name = spec.get("storageClassName")
        if cls_name is None:
            default = next((c for c in classes if (c["metadata"].get("annotations") or {}).get(
                "storageclass.kubernetes.io/is-default-class") == "true"), None)
            cls_name = k8s.name(default) if default else None
            if cls_name:
                spec["storageClassName"] = cls_name
        cls = self.store.read("storageclasses", cls_name) if cls_name else None
        if cls is None:
            pvc["status"] = {"phase": "Pending"}
            self.event("PersistentVolumeClaim", k8s.name(pvc), "ProvisioningFailed",
                       f'storageclass.storage.k8s.io "{cls_name}" not found' if cls_name else
                       "no persistent volumes available for this claim and no storage class is set")
            return pvc
        size = spec.get("resources", {}).get("requests", {}).get("storage", "1Gi")
        pv_name = f"pvc-{pvc['metadata']['uid']}"
        modes = spec.get("accessModes") or ["ReadWriteOnce"]
        self.store.write("persistentvolumes", {
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": pv_name, "annotations": {"pv.kubernetes.io/provisioned-by": cls.get("provisioner", "lab")}},
            "spec": {"capacity": {"storage": size}, "accessModes": modes,
                     "persistentVolumeReclaimPolicy": cls.get("reclaimPolicy", "Delete"), "storageClassName": cls_name,
                     "claimRef": {"kind": "PersistentVolumeClaim", "namespace": self.meta["namespace"],
                                  "name": k8s.name(pvc), "uid": pvc["metadata"]["uid"]},
                     "nfs": {"server": "fsf-lab.example", "path": f"/lab/{pv_name}"}},
            "status": {"phase": "Bound"},
        })
        spec["volumeName"] = pv_name
        pvc["status"] = {"phase": "Bound", "accessModes": modes, "capacity": {"storage": size}}
        folder = mkdirs(self.store.volume_dir(k8s.name(pvc)))
        if (owner := self.owner_uid()) is not None:
            os.chown(folder, owner, 0)
        return pvc

    def _static_volume(self, pvc: dict) -> dict | None:
        """The volume a claim asks for by name, or an Available one pre-bound to its namespace/name."""
        wanted = (pvc.get("spec") or {}).get("volumeName")
        if wanted:
            return self.store.read("persistentvolumes", wanted)
        for pv in self.store.read_all("persistentvolumes"):
            ref = pv["spec"].get("claimRef") or {}
            if (pv.get("status") or {}).get("phase") == "Available" and not ref.get("uid") and \
                    ref.get("name") == k8s.name(pvc) and ref.get("namespace") == self.meta["namespace"]:
                return pv
        return None

    def _bind_static(self, pvc: dict, pv: dict | None) -> dict:
        """The binder's rules for an existing volume: Available, not promised to another claim, same
        storage class, big enough, the claim's access modes; then its kept data is the claim's."""
        name, spec = k8s.name(pvc), pvc["spec"]
        why = None
        if pv is None:
            why = f'volume "{spec.get("volumeName")}" not found'
        else:
            ref = pv["spec"].get("claimRef") or {}
            pv_class = pv["spec"].get("storageClassName") or ""
            request = parse_quantity(spec.get("resources", {}).get("requests", {}).get("storage", "0"))
            if ref and (ref.get("name") != name or ref.get("namespace") != self.meta["namespace"]
                        or (ref.get("uid") and ref.get("uid") != pvc["metadata"]["uid"])):
                why = f'volume "{k8s.name(pv)}" already bound to a different claim.'
            elif (pv.get("status") or {}).get("phase") not in ("Available", None):
                why = f'volume "{k8s.name(pv)}" is {pv["status"]["phase"]}, not Available'
            elif (spec.get("storageClassName") or "") != pv_class:
                why = f'Cannot bind to requested volume "{k8s.name(pv)}": storageClassName does not match'
            elif parse_quantity(pv["spec"]["capacity"]["storage"]) < request:
                why = f'Cannot bind to requested volume "{k8s.name(pv)}": requested PV is too small'
            elif not set(spec.get("accessModes") or []) <= set(pv["spec"].get("accessModes") or []):
                why = f'Cannot bind to requested volume "{k8s.name(pv)}": incompatible accessMode'
        if why:
            pvc["status"] = {"phase": "Pending"}
            self.event("PersistentVolumeClaim", name, "FailedBinding", why)
            return pvc
        assert pv is not None
        pv["spec"]["claimRef"] = {"kind": "PersistentVolumeClaim", "namespace": self.meta["namespace"], "name": name,
                                  "uid": pvc["metadata"]["uid"], "apiVersion": "v1"}
        pv["status"] = {"phase": "Bound"}
        self.store.write("persistentvolumes", pv)
        kept, folder = self.store.released_dir(k8s.name(pv)), self.store.volume_dir(name)
        if kept.exists() and not folder.exists():
            mkdirs(folder.parent)
            kept.rename(folder)
        elif not folder.exists():
            mkdirs(folder)
        spec["volumeName"] = k8s.name(pv)
        pvc["status"] = {"phase": "Bound", "accessModes": list(pv["spec"].get("accessModes") or []),
                         "capacity": {"storage": pv["spec"]["capacity"]["storage"]}}
        return pvc

    def sync_volume(self, pv: dict) -> None:
        """The volume controller: a Released volume whose claimRef lost its uid (or was removed) is Available."""
        ref = pv["spec"].get("claimRef")
        if (pv.get("status") or {}).get("phase") == "Released" and (not ref or not ref.get("uid")):
            pv["status"] = {"phase": "Available"}

    def resize_claim(self, pvc: dict) -> None:
        """An expanded claim's new size shows in status.capacity and on its volume at once."""
        size = pvc["spec"]["resources"]["requests"]["storage"]
        pvc.setdefault("status", {}).setdefault("capacity", {})["storage"] = size
        pv = self.store.read("persistentvolumes", pvc["spec"].get("volumeName", ""))
        if pv is not None:
            pv["spec"]["capacity"]["storage"] = size
            self.store.write("persistentvolumes", pv)

    def release_claim(self, pvc: dict) -> None:
        """A deleted claim: its volume is Released and kept (Retain) or deleted with its data (Delete)."""
        folder = self.store.volume_dir(k8s.name(pvc))
        pv = self.store.read("persistentvolumes", (pvc.get("spec") or {}).get("volumeName", ""))
        if pv is not None and pv["spec"].get("persistentVolumeReclaimPolicy") == "Retain":
            pv["status"] = {"phase": "Released"}
            self.store.write("persistentvolumes", pv)
            if folder.exists():
                mkdirs(self.store.released_dir(k8s.name(pv)).parent)
                folder.rename(self.store.released_dir(k8s.name(pv)))
            return
        if pv is not None:
            self.store.remove("persistentvolumes", k8s.name(pv))
        shutil.rmtree(folder, ignore_errors=True)

    # ---- pods -----------------------------------------------------------------------------
    def start_pod(self, pod: dict) -> dict:
        """Schedule, pull and start a pod created through the API; what blocks it shows in its status."""
        name, spec = k8s.name(pod), pod["spec"]
        old_reason = (pod.get("status") or {}).get("phase"), k8s.waiting_reasons(pod), k8s.pod_unschedulable(pod)
        for vol in spec.get("volumes") or []:
            claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
            if not claim:
                continue
            pvc = self.store.read("persistentvolumeclaims", claim)
            why = (f'0/3 nodes are available: 3 persistentvolumeclaim "{claim}" not found.' if pvc is None else
                   None if (pvc.get("status") or {}).get("phase") == "Bound" else
                   "0/3 nodes are available: 3 pod has unbound immediate PersistentVolumeClaims.")
            if why:
                if old_reason[2] != why:
                    self.event("Pod", name, "FailedScheduling", why)
                pod["status"] = status.unschedulable(why)
                return pod
        container = spec["containers"][0]
        image = container.get("image", "")
        info = self.meta["images"].get(image)
        if info is None:
            age = _age((pod.get("status") or {}).get("startTime")) if old_reason[1] else 0
            reason = "ImagePullBackOff" if age >= PULL_BACKOFF_AFTER else "ErrImagePull"
            message = (f'Back-off pulling image "{image}"' if reason == "ImagePullBackOff" else
                       f"rpc error: code = Unknown desc = reading manifest of {image}: manifest unknown")
            if not old_reason[1]:
                self.event("Pod", name, "Failed", f'Failed to pull image "{image}": {message}')
            started = (pod.get("status") or {}).get("startTime")
            pod["status"] = status.image_pull(spec, reason, message)
            if started and old_reason[1]:
                pod["status"]["startTime"] = started
            return pod
        who = runtime.identity(spec, container, int(self.meta["bar_uid"]), bool(info.get("sudo")))
        non_root = ((container.get("securityContext") or {}).get("runAsNonRoot")
                    or (spec.get("securityContext") or {}).get("runAsNonRoot"))
        argv = [*(container.get("command") or info.get("entrypoint") or []), *(container.get("args") or [])]
        config_error = ("container has runAsNonRoot and image will run as root" if non_root and who.uid == 0 else
                        None if argv else "no command specified")
        if config_error:
            pod["status"] = status.image_pull(spec, "CreateContainerConfigError", config_error)
            return pod
        pod_dir = runtime.ensure_pod_dir(self.store.pod_dir(name))
        rootfs = pod_dir / "rootfs"
        runtime.build_rootfs(rootfs, spec, container, self.store.volume_dir, self.owner_uid())
        env = runtime.environment(container, rootfs, name, info)
        env["DV_LAB_QUOTAS"] = self._quotas(spec, container)
        if hold := self.meta["settings"].get("bar_hold"):  # a long backup in flight, to interrupt in tests
            env.setdefault("DV_LAB_HOLD", str(hold))
        runtime.launch(pod_dir, who.wrap(argv), env, rootfs)
        pod["status"] = status.running(spec)
        return pod

    def _quotas(self, spec: dict, container: dict) -> str:
        """`mountPath=bytes ...` for mounted claims with a capacity: the stand-in image fails writes past it
        with "No space left on device" (the lab's folders share the host's disk, so the limit is emulated)."""
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in spec.get("volumes") or []
                  if v.get("persistentVolumeClaim")}
        out = []
        for mount in container.get("volumeMounts") or []:
            pvc = self.store.read("persistentvolumeclaims", claims.get(mount["name"], ""))
            size = ((pvc or {}).get("status") or {}).get("capacity", {}).get("storage")
            if size:
                out.append(f"{mount['mountPath']}={parse_quantity(size)}")
        return " ".join(out)

    def refresh_pod(self, pod: dict) -> bool:
        """Bring one pod's status up to date with its process (or retry starting it); True if it changed."""
        phase = k8s.pod_phase(pod)
        pod_dir = self.store.pod_dir(k8s.name(pod))
        if phase == "Pending" and runtime.launched(pod_dir):
            # started by a run that was killed before it recorded so (between launch and write): the
            # container is there, as a kubelet would know; starting it again would run the job twice
            pod["status"] = status.running(pod["spec"])
            state, rc = runtime.process_state(pod_dir)
            if state == "exited":
                pod["status"] = status.terminated(pod["spec"], pod["status"].get("startTime"), rc)
            return True
        if phase == "Pending":
            before = pod.get("status")
            self.start_pod(pod)
            return pod.get("status") != before
        if phase == "Running" and runtime.launched(pod_dir):
            state, rc = runtime.process_state(pod_dir)
            if state == "exited":
                pod["status"] = status.terminated(pod["spec"], pod["status"].get("startTime"), rc)
                return True
        return False

    def new_job_pod(self, job: dict) -> dict:
        """A pod for a Job: `<job>-<5 chars>`, labels job-name and controller-uid, owned by the job."""
        template = copy.deepcopy(job["spec"]["template"])
        md = template.get("metadata") or {}
        labels = dict(md.get("labels") or {})
        labels.update({"controller-uid": job["metadata"]["uid"], "job-name": k8s.name(job)})
        spec = template["spec"]
        spec.setdefault("serviceAccountName", spec.get("serviceAccount", "default"))
        spec.setdefault("restartPolicy", "Never")
        spec.setdefault("nodeName", "lab-worker-0")
        pod = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{k8s.name(job)}-{suffix()}", "namespace": self.meta["namespace"], "labels": labels,
                         "annotations": dict(md.get("annotations") or {}),
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": k8s.name(job),
                                              "uid": job["metadata"]["uid"], "controller": True,
                                              "blockOwnerDeletion": True}]},
            "spec": spec,
            "status": {"phase": "Pending"},
        }
        self.store.write("pods", pod)  # uid and creationTimestamp first, then start it
        return self.store.write("pods", self.start_pod(pod))

    def delete_pod(self, pod: dict) -> None:
        runtime.remove_pod_dir(self.store.pod_dir(k8s.name(pod)))
        self.store.remove("pods", k8s.name(pod))

    def job_pods(self, job: dict) -> list[dict]:
        uid = job["metadata"]["uid"]
        return [p for p in self.store.read_all("pods") if (p["metadata"].get("labels") or {}).get("controller-uid") == uid]

    # ---- jobs -----------------------------------------------------------------------------
    def reconcile_job(self, job: dict) -> None:
        """One pass of the job controller over one Job."""
        st = job.setdefault("status", {})
        spec = job["spec"]
        if k8s.job_state(job) != "active":
            ttl = spec.get("ttlSecondsAfterFinished")
            if ttl is not None and _age(k8s.job_finished_at(job)) >= ttl:
                self.delete_job(job)
            return
        pods = self.job_pods(job)
        deadline = spec.get("activeDeadlineSeconds")
        if deadline is not None and _age(st.get("startTime")) >= deadline:
            for pod in pods:
                if k8s.pod_phase(pod) in ("Pending", "Running"):
                    runtime.kill(self.store.pod_dir(k8s.name(pod)))
                    pod["status"] = status.terminated(pod["spec"], (pod.get("status") or {}).get("startTime"),
                                                      runtime.KILLED, "DeadlineExceeded")
                    self.store.write("pods", pod)
            self._finish(job, "Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
            return
        phases = [k8s.pod_phase(p) for p in pods]
        failed, succeeded = phases.count("Failed"), phases.count("Succeeded")
        active = sum(1 for p in phases if p in ("Pending", "Running"))
        if succeeded >= int(spec.get("completions", 1)):
            st["completionTime"] = now_iso()
            self._finish(job, "Complete", None, None, active=0, failed=failed, succeeded=succeeded)
        elif failed > int(spec.get("backoffLimit", 6)):
            for pod in pods:
                if k8s.pod_phase(pod) in ("Pending", "Running"):
                    self.delete_pod(pod)
            self._finish(job, "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit",
                         active=0, failed=failed, succeeded=succeeded)
        else:
            if active == 0:
                self.new_job_pod(job)
                active = 1
            self._counts(st, active, failed, succeeded)
            self.store.write("jobs", job)

    @staticmethod
    def _counts(st: dict, active: int, failed: int, succeeded: int) -> None:
        for key, value in (("active", active), ("failed", failed), ("succeeded", succeeded)):
            if value:
                st[key] = value
            else:
                st.pop(key, None)

    def _finish(self, job: dict, kind: str, reason: str | None, message: str | None, **counts: int) -> None:
        st = job["status"]
        if counts:
            self._counts(st, counts["active"], counts["failed"], counts["succeeded"])
        else:
            st.pop("active", None)
        st["conditions"] = [*(st.get("conditions") or []), status.job_condition(kind, reason, message)]
        self.store.write("jobs", job)

    def delete_job(self, job: dict) -> None:
        """Background propagation: the Job's pods go with it, their processes killed."""
        for pod in self.job_pods(job):
            self.delete_pod(pod)
        self.store.remove("jobs", k8s.name(job))

    # ---- workloads ------------------------------------------------------------------------
    def workload_pod(self, owner: dict, pod_name: str, owner_kind: str, owner_name: str) -> dict:
        """A Running, Ready pod of a StatefulSet or Deployment, with its mounts mapped (exec works in it)."""
        template = copy.deepcopy(owner["spec"]["template"])
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        if owner_kind == "ReplicaSet":
            labels["pod-template-hash"] = owner_name.rsplit("-", 1)[1]
        else:
            labels["statefulset.kubernetes.io/pod-name"] = pod_name
        spec = template["spec"]
        spec.setdefault("nodeName", "lab-worker-0")
        pod = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod_name, "namespace": self.meta["namespace"], "labels": labels,
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner_kind, "name": owner_name,
                                              "uid": owner["metadata"].get("uid", ""), "controller": True,
                                              "blockOwnerDeletion": True}]},
            "spec": spec,
            "status": status.running(spec),
        }
        pod_dir = runtime.ensure_pod_dir(self.store.pod_dir(pod_name))
        runtime.build_rootfs(pod_dir / "rootfs", spec, spec["containers"][0], self.store.volume_dir, self.owner_uid())
        (pod_dir / "log").touch()
        return self.store.write("pods", pod)

    def scale_deployment(self, dep: dict) -> None:
        """Make the deployment's pods match spec.replicas, and its status say so."""
        want = k8s.spec_replicas(dep)
        rs = f"{k8s.name(dep)}-{template_hash(k8s.name(dep))}"
        pods = [p for p in self.store.read_all("pods") if k8s.owner(p, "ReplicaSet") == rs]
        for pod in pods[want:]:
            self.delete_pod(pod)
        for _ in range(want - len(pods)):
            self.workload_pod(dep, f"{rs}-{suffix()}", "ReplicaSet", rs)
        st = dep.setdefault("status", {})
        st["observedGeneration"] = dep["metadata"].get("generation", 1)
        for key in ("replicas", "readyReplicas", "availableReplicas", "updatedReplicas"):
            if want:
                st[key] = want
            else:
                st.pop(key, None)

    def recreate_workload_pod(self, pod: dict) -> None:
        """A deleted StatefulSet or ReplicaSet pod comes back fresh (same name for a StatefulSet)."""
        sts = k8s.owner(pod, "StatefulSet")
        if sts and (owner := self.store.read("statefulsets", sts)) is not None:
            self.workload_pod(owner, k8s.name(pod), "StatefulSet", sts)
            return
        rs = k8s.owner(pod, "ReplicaSet")
        dep = self.store.read("deployments", rs.rsplit("-", 1)[0]) if rs else None
        if dep is not None:
            self.scale_deployment(dep)

    # ---- the lazy loop ----------------------------------------------------------------------
    def reconcile(self) -> None:
        """Catch up with everything that happened since the last look: pods first, then their jobs.

        A pod or Job this pass leaves settled (a pod ended, or one without a process; a finished Job
        with no TTL) has nothing to catch up with until its file changes, so that version of the
        file is not read again: every API read of a live kind runs this pass, and parsing each pod at
        each look was most of what a lab's API cost."""
        with self.store.locked():
            for path, version, pod in self._unsettled("pods"):
                if self.refresh_pod(pod):
                    self.store.write("pods", pod)
                elif self._pod_settled(pod):
                    self._settled[path] = version
            for path, version, job in self._unsettled("jobs"):
                self.reconcile_job(job)
                if k8s.job_state(job) != "active" and job["spec"].get("ttlSecondsAfterFinished") is None:
                    self._settled[path] = version

    def _unsettled(self, kind: str) -> Iterator[tuple[str, tuple[int, int, int], dict]]:
        """Each stored object of the kind, with its file and version, but those seen settled in that version."""
        for path, version in self.store.versions(kind):
            if self._settled.get(path) != version and (obj := self.store.read_file(path)) is not None:
                yield path, version, obj

    def _pod_settled(self, pod: dict) -> bool:
        """Nothing but a new version of the pod's object changes its status: it ended, or it has no process."""
        phase = k8s.pod_phase(pod)
        return phase in ("Succeeded", "Failed") or (
            phase == "Running" and not runtime.launched(self.store.pod_dir(k8s.name(pod))))


