"""How many API requests one `collect` costs against a realistic DV namespace (target: under 30).

Run on demand: `.venv/bin/python benchmarks/requests.py`. It serves tests/fakeapi.py's local API
server with the objects of a DV 1.5.0 namespace (domain.md), connects KubeCluster to it, and
runs dvdoctor.collect.collect twice: without and with the inspection Job. The fake server runs the
in-pod work for real: exec into dv-engine-0 runs engine-probe.sh with bash on a temporary tree,
and the inspection Job's pod log is the real output of bar-probe.sh on a temporary backup volume.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# This file's name shadows the `requests` package the kubernetes client imports: drop its folder.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT / "tests"))

from fakeapi import FakeApi  # noqa: E402

from dvdoctor.facts import collect as collect_mod  # noqa: E402
from dvdoctor.facts import probe  # noqa: E402
from dvdoctor.cluster.kube import connect  # noqa: E402
from dvdoctor.lab.bar import template_text
from dvdoctor.core.names import DEFAULT  # noqa: E402

NS = "cpd30"
UID = 1000322824
IMAGE = "image-registry.openshift-image-registry.svc:5000/zen/dv-init-volume:v1.5.0.0-217"
BACKUP_TEMPLATE = template_text("dv-backup-job.yaml")  # the lab's stand-in for DV's template


def pod(name: str, phase: str = "Running", labels: dict | None = None, mounts: list | None = None) -> dict:
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"containers": [{"name": name.rsplit("-", 1)[0], "image": IMAGE, "volumeMounts": mounts or []}]},
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": "c", "ready": True, "restartCount": 0, "state": {"running": {}}}]},
    }


def populate(api: FakeApi) -> None:
    """The objects of the runbook's DV namespace."""
    engine_mounts = [{"name": "dv-data", "mountPath": "/mnt/PV/versioned", "subPath": "1.5.0"},
                     {"name": "dv-data", "mountPath": "/mnt/PV/versioned/uc_dsserver_shared", "subPath": "uc_dsserver_shared"}]
    api.put("pods", pod("dv-engine-0", mounts=engine_mounts))
    for name in ("dv-metastore-0", "dv-utils-0", "dv-worker-0", "dv-caching-5d9c7b-abcde", "dv-api-7f8d9-fghij",
                 "dv-unified-console-6c5b4-klmno", "dv-addon-1a2b3-pqrst", "dv-service-provider-4d5e6-uvwxy"):
        api.put("pods", pod(name))
    api.put("pods", pod("dv-init-volume-x7k2p", "Succeeded", {"job-name": "dv-init-volume"}))
    for name in ("dv-engine", "dv-metastore", "dv-utils", "dv-worker"):
        api.put("statefulsets", {"metadata": {"name": name}, "spec": {"replicas": 1}, "status": {"readyReplicas": 1}})
    for name in ("dv-caching", "dv-api", "dv-unified-console", "dv-addon", "dv-service-provider"):
        api.put("deployments", {"metadata": {"name": name}, "spec": {"replicas": 1}, "status": {"readyReplicas": 1}})
    api.put("jobs", {"metadata": {"name": "dv-init-volume"},
                     "spec": {"template": {"spec": {"securityContext": {"runAsUser": UID},
                                                    "containers": [{"name": "dv-init-volume", "image": IMAGE}]}}},
                     "status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}})
    for name, size in (("dv-pvc", "100Gi"), ("dv-bar-pvc", "20Gi")):
        api.put("persistentvolumeclaims", {"metadata": {"name": name},
                                           "spec": {"storageClassName": "ibmc-file-gold-gid", "volumeName": f"pvc-{name}",
                                                    "resources": {"requests": {"storage": size}}},
                                           "status": {"phase": "Bound", "capacity": {"storage": size}}})
        api.put("persistentvolumes", {"metadata": {"name": f"pvc-{name}"},
                                      "spec": {"persistentVolumeReclaimPolicy": "Delete", "storageClassName": "ibmc-file-gold-gid",
                                               "claimRef": {"namespace": NS, "name": name}}}, namespace=None)
    api.put("storageclasses", {"metadata": {"name": "ibmc-file-gold-gid"}, "provisioner": "ibm.io/ibmc-file",
                               "reclaimPolicy": "Delete", "allowVolumeExpansion": True}, namespace=None)
    for name in ("default", "dv-bar-sa", "cpd-viewer-sa"):
        api.put("serviceaccounts", {"metadata": {"name": name}})
    api.put("events", {"metadata": {"name": "dv-engine-0.1"}, "reason": "Started", "message": "Started container dv-engine"})
    api.rules = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]


def engine_tree(root: Path) -> None:
    (root / "mnt/marker_files").mkdir(parents=True)
    (root / "opt/dv/current/bar/yaml").mkdir(parents=True)
    (root / "opt/dv/current/bar/scripts").mkdir(parents=True)
    (root / "opt/dv/current/bar/yaml/dv-backup-job.yaml").write_text(BACKUP_TEMPLATE)
    caching = root / "opt/dv/current/bar/scripts/dv-caching-bar.sh"
    caching.write_text("#!/bin/sh\n")
    caching.chmod(0o755)


def bar_tree(root: Path) -> None:
    """A backup volume like the runbook's listing, with small files standing in for the tarballs."""
    stamp = root / "mnt/PV/bar/2021-01-22-19-27-31"
    (stamp / "tmp").mkdir(parents=True)
    for name in ("dv_backup_dv_metastore.tar.gz", "dv_backup_dv_engine.tar.gz", "dv_backup.tar.gz"):
        (stamp / name).write_bytes(os.urandom(4096))
    (root / "mnt/PV/bar/dv_backup.tar.gz").symlink_to("/mnt/PV/bar/2021-01-22-19-27-31/dv_backup.tar.gz")


def run_in(root: Path, argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(env or {}), "DV_ROOT": str(root)})
    return done.returncode, done.stdout, done.stderr


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        engine_root, bar_root = Path(tmp, "engine"), Path(tmp, "bar")
        engine_tree(engine_root)
        bar_tree(bar_root)
        api = FakeApi(namespaces=(NS,)).start()
        populate(api)
        api.exec_handler = lambda pod_name, container, argv: run_in(engine_root, argv)

        def run_job(plural: str, ns: str | None, job: dict) -> None:
            """Play the kubelet and the job controller: run the job's script, then mark both done."""
            if plural != "jobs":
                return
            container = job["spec"]["template"]["spec"]["containers"][0]
            env = {e["name"]: e["value"] for e in container.get("env") or []}
            rc, out, _err = run_in(bar_root, container["command"], env)
            name = job["metadata"]["name"]
            pod_name = f"{name}-q8z4w"
            api.logs[pod_name] = out
            api.put("pods", {**pod(pod_name, "Succeeded" if rc == 0 else "Failed", {"job-name": name})}, ns)
            api.put("jobs", {**job, "status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}},
                    ns, event="MODIFIED")

        api.on_create = run_job
        config = api.kubeconfig(Path(tmp, "config"), namespace=NS)
        try:
            for use_pod in (False, True):
                cluster = connect(str(config), None, None)
                started = time.perf_counter()
                facts = collect_mod.collect(cluster, DEFAULT, use_pod=use_pod)
                took = time.perf_counter() - started
                data = facts.data
                sections = [k for k in ("engine", "bar_volume", "access") if data.get(k)]
                print(f"collect use_pod={use_pod!s:<5}  requests: {cluster.request_count:3d} "
                      f"(incl. connect's namespace check)  {took * 1000:.0f} ms  sections: {', '.join(sections)}")
                if data.get("skipped"):
                    print(f"  skipped: {json.dumps(data['skipped'])}")
        finally:
            api.stop()
    print("target: under 30 requests for a full run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
