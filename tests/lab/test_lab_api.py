"""The lab answers as an API server would: conflicts, admission, immutable fields, RBAC, scaling."""

from __future__ import annotations

import re

import pytest

from dvdoctor.cluster import k8s
from dvdoctor.cluster.port import Cluster
from dvdoctor.core.errors import ClusterError, Conflict, Forbidden, Invalid, NotFound
from dvdoctor.lab import break_lab
from dvdoctor.lab.contents import init_volume_image
from dvdoctor.lab.bar import bar_job


def test_lab_is_a_cluster_port(lab):
    assert isinstance(lab, Cluster)
    assert lab.describe() == f"lab {lab.store.root}"
    before = lab.request_count
    lab.list("pods")
    lab.get("jobs", "dv-init-volume")
    assert lab.request_count == before + 2


def test_objects_carry_server_metadata(lab):
    pod = lab.get("pods", "dv-engine-0")
    md = pod["metadata"]
    assert md["uid"] and md["creationTimestamp"] and md["resourceVersion"] and md["namespace"] == "cpd30"
    assert k8s.pod_ready(pod) and k8s.owner(pod, "StatefulSet") == "dv-engine"
    (init_pod,) = lab.list("pods", label_selector="job-name=dv-init-volume")
    assert k8s.pod_phase(init_pod) == "Succeeded"
    pvc = lab.get("persistentvolumeclaims", "dv-bar-pvc")
    pv = lab.get("persistentvolumes", pvc["spec"]["volumeName"])
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"


def test_create_of_an_existing_name_conflicts(lab):
    with pytest.raises(Conflict):
        lab.create("serviceaccounts", {"metadata": {"name": "dv-bar-sa"}})


def test_pod_naming_a_missing_service_account_is_refused(lab):
    job = bar_job(lab, "dv-backup-job.yaml", init_volume_image(lab.namespace))
    k8s.job_pod_spec(job)["serviceAccountName"] = "nobody"
    with pytest.raises(Forbidden, match='serviceaccount "nobody" not found'):
        lab.create("jobs", job)
    assert lab.get("jobs", "dv-backup-job") is None


def test_job_template_is_immutable(lab):
    job = bar_job(lab, "dv-list-backups-job.yaml", init_volume_image(lab.namespace))
    lab.create("jobs", job)
    with pytest.raises(Invalid, match="field is immutable"):
        lab.patch("jobs", "dv-list-backups-job", {"spec": {"template": {"spec": {"serviceAccountName": "default"}}}})
    lab.patch("jobs", "dv-list-backups-job", {"metadata": {"labels": {"seen": "yes"}}})


def test_claims_only_grow_and_only_when_their_class_allows(lab):
    grown = lab.patch("persistentvolumeclaims", "dv-bar-pvc", {"spec": {"resources": {"requests": {"storage": "64Mi"}}}})
    assert grown["status"]["capacity"]["storage"] == "64Mi"
    assert lab.get("persistentvolumes", grown["spec"]["volumeName"])["spec"]["capacity"]["storage"] == "64Mi"
    with pytest.raises(Invalid, match="less than previous value"):
        lab.patch("persistentvolumeclaims", "dv-bar-pvc", {"spec": {"resources": {"requests": {"storage": "32Mi"}}}})
    with pytest.raises(Invalid, match="immutable"):
        lab.patch("persistentvolumeclaims", "dv-bar-pvc", {"spec": {"storageClassName": "other"}})
    lab.patch("storageclasses", "ibmc-file-gold-gid", {"allowVolumeExpansion": False})
    with pytest.raises(Invalid, match="must support resize"):
        lab.patch("persistentvolumeclaims", "dv-bar-pvc", {"spec": {"resources": {"requests": {"storage": "1Gi"}}}})


def test_deployment_replicas_become_ready_pods(lab):
    dep = lab.patch("deployments", "dv-api", {"spec": {"replicas": 2}})
    assert (dep["status"]["replicas"], dep["status"]["readyReplicas"]) == (2, 2)
    pods = [p for p in lab.list("pods") if k8s.name(p).startswith("dv-api-")]
    assert len(pods) == 2 and all(k8s.pod_ready(p) for p in pods)
    assert all(re.fullmatch(r"dv-api-[a-z0-9]{10}-[a-z0-9]{5}", k8s.name(p)) for p in pods)
    assert all(k8s.owner(p, "ReplicaSet") for p in pods)
    dep = lab.patch("deployments", "dv-api", {"spec": {"replicas": 0}})
    assert k8s.ready_replicas(dep) == 0
    assert not [p for p in lab.list("pods") if k8s.name(p).startswith("dv-api-")]


def test_deleted_statefulset_pod_comes_back_ready(lab):
    break_lab(lab.store.root, "dv-pods-not-ready")
    assert not k8s.pod_ready(lab.get("pods", "dv-worker-0"))
    lab.delete("pods", "dv-worker-0")
    assert k8s.pod_ready(lab.get("pods", "dv-worker-0"))


def test_exec_and_logs(lab):
    result = lab.exec("dv-engine-0", ["bash", "-c", 'ls "$DV_ROOT/opt/dv/current/bar/yaml"; exit 3'])
    assert result.rc == 3
    assert "dv-backup-job.yaml" in result.stdout
    (init_pod,) = lab.list("pods", label_selector="job-name=dv-init-volume")
    with pytest.raises(ClusterError, match="completed pod"):
        lab.exec(k8s.name(init_pod), ["true"])
    with pytest.raises(NotFound):
        lab.logs("no-such-pod")
    assert lab.logs(k8s.name(init_pod), tail_lines=1) == "DV volumes initialized\n"


def test_caching_script_stand_in_records_its_argument(lab):
    assert lab.exec("dv-engine-0", ["bash", "-c", '"$DV_ROOT/opt/dv/current/bar/scripts/dv-caching-bar.sh" false']).rc == 0
    log = lab.store.pod_dir("dv-engine-0") / "rootfs" / "var" / "log" / "dv" / "dv-caching-bar.log"
    assert log.read_text().rstrip().endswith("dv-caching-bar.sh false")


def test_rbac_rules_are_enforced(lab):
    break_lab(lab.store.root, "dvdoctor-permissions")
    with pytest.raises(Forbidden, match='cannot patch resource "deployments"'):
        lab.patch("deployments", "dv-api", {"spec": {"replicas": 0}})
    # a wait is a watch, as a server sees it: the fault takes watch on jobs, and get stays
    with pytest.raises(Forbidden, match='cannot watch resource "jobs"'):
        lab.wait("jobs", "dv-init-volume", lambda job: job is not None, 1)
    assert lab.get("jobs", "dv-init-volume")
    assert lab.list("deployments")
    assert not any("deployments" in r["resources"] and "*" in r["verbs"] for r in lab.allowed_rules())
