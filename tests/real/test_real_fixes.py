"""Every fix that changes API objects, applied by `dvdoctor fix` on a real server and judged by what
the server holds afterwards: scaling, the volume's reclaim policy, the claim (created, or bound again
to the Released volume that kept the backups), and jobs deleted with their pods."""

from __future__ import annotations

import pytest

SIDE = ("dv-caching", "dv-api", "dv-unified-console")


def test_deployments_left_down_are_scaled_back_to_their_recorded_count(dv):
    for name in SIDE:
        dv.api.patch("Deployment", dv.name, name, {"metadata": {"annotations": {"dvdoctor.io/original-replicas": "2"}},
                                                   "spec": {"replicas": 0}})
    result = dv.dvdoctor("fix", "--issue", "side-deployments-left-down", "--yes", timeout=300)
    assert result.rc == 0, result.output
    for name in SIDE:
        dep = dv.api.get("Deployment", dv.name, name)
        assert dep["spec"]["replicas"] == 2, name
        assert "dvdoctor.io/original-replicas" not in (dep["metadata"].get("annotations") or {})
    # the real ReplicaSet controller follows: two (unschedulable) pods per deployment
    dv.api.wait("the ReplicaSets to scale up", lambda: all(
        (dv.api.get("Deployment", dv.name, n).get("status") or {}).get("replicas") == 2 for n in SIDE), timeout=30)
    assert "verified" in result.output


@pytest.mark.reclaim("Delete")
def test_a_delete_reclaim_policy_is_set_to_retain(dv):
    before = dv.dvdoctor("check", "--no-pod", "--only", "bar-pv-reclaim-delete", "-o", "json")
    assert before.json["results"][0]["status"] in ("warn", "fail"), before.output
    result = dv.dvdoctor("fix", "--issue", "bar-pv-reclaim-delete", "--yes", timeout=300)
    assert result.rc == 0, result.output
    pv = dv.api.get("PersistentVolume", None, f"dv-bar-pv-{dv.name}")
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert pv["status"]["phase"] == "Bound"


def delete_bar_claim(dv) -> None:
    dv.api.delete("PersistentVolumeClaim", dv.name, "dv-bar-pvc")
    dv.api.wait("dv-bar-pvc to be deleted", lambda: dv.api.get("PersistentVolumeClaim", dv.name, "dv-bar-pvc") is None, timeout=30)


def test_a_missing_claim_rebinds_the_released_volume_that_kept_the_backups(dv):
    pv_name = f"dv-bar-pv-{dv.name}"
    delete_bar_claim(dv)
    dv.api.wait("the Retain volume to be Released", lambda: dv.api.get("PersistentVolume", None, pv_name)["status"]["phase"] == "Released", timeout=30)
    result = dv.dvdoctor("fix", "--issue", "bar-pvc-missing", "--yes", timeout=300)
    assert result.rc == 0, result.output
    claim = dv.api.wait("the new dv-bar-pvc to be bound", lambda: (c := dv.api.get("PersistentVolumeClaim", dv.name, "dv-bar-pvc"))
                        and (c.get("status") or {}).get("phase") == "Bound" and c, timeout=60)
    assert claim["spec"]["volumeName"] == pv_name  # the volume with the backups, not a new empty one
    pv = dv.api.get("PersistentVolume", None, pv_name)
    assert pv["status"]["phase"] == "Bound" and pv["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]


def test_a_missing_claim_with_no_kept_volume_is_created_in_dv_data_storage_class(dv):
    delete_bar_claim(dv)
    dv.api.delete("PersistentVolume", None, f"dv-bar-pv-{dv.name}")
    dv.api.wait("the volume to be gone", lambda: dv.api.get("PersistentVolume", None, f"dv-bar-pv-{dv.name}") is None, timeout=30)
    result = dv.dvdoctor("fix", "--issue", "bar-pvc-missing", "--yes", "--size", "40Gi", timeout=300)
    claim = dv.api.get("PersistentVolumeClaim", dv.name, "dv-bar-pvc")
    assert claim is not None, result.output
    assert claim["spec"]["storageClassName"] == "ibmc-file-gold-gid"
    assert claim["spec"]["resources"]["requests"]["storage"] == "40Gi"
    assert "create" in result.output, result.output


def test_leftover_bar_jobs_are_deleted_with_their_pods(dv):
    template = dv.api.get("Job", dv.name, "dv-init-volume")["spec"]["template"]
    for name in ("dv-list-backups-job", "dv-test-job"):
        dv.api.create({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
                       "spec": {"backoffLimit": 0, "template": {"metadata": {"labels": {"app": "dv-bar"}},
                                                                 "spec": template["spec"]}}}, dv.name)
    pods_of = lambda job: [p for p in dv.api.list("Pod", dv.name) if p["metadata"]["labels"].get("job-name") == job]
    dv.api.wait("the jobs' pods", lambda: pods_of("dv-list-backups-job") and pods_of("dv-test-job"), timeout=30)
    result = dv.dvdoctor("fix", "--issue", "leftover-bar-pods", "--yes", timeout=300)
    assert result.rc == 0, result.output
    for job in ("dv-list-backups-job", "dv-test-job"):
        assert dv.api.get("Job", dv.name, job) is None
        # background propagation: the garbage collector removes the pods, none is orphaned
        dv.api.wait(f"the pods of {job} to be removed", lambda: not pods_of(job), timeout=30)
    assert dv.api.get("Job", dv.name, "dv-init-volume") is not None  # DV's own job stays


def pod_without_its_job(dv, job: str, check_id: str) -> dict:
    """A pod of `job` (DV's BAR image, Pending: the plane has no nodes) with no Job object, and the
    `check --only check_id` report, which must name that pod and nothing else."""
    template = dv.api.get("Job", dv.name, "dv-init-volume")["spec"]["template"]["spec"]
    dv.api.create({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": f"{job}-x7k2p", "labels": {"job-name": job}},
                   "spec": {**template, "restartPolicy": "Never"}}, dv.name)
    report = dv.dvdoctor("check", "--no-pod", "--only", check_id, "-o", "json").json
    assert [p["object"] for p in report["results"][0]["problems"]] == [f"pod/{job}-x7k2p"], report
    return report


def test_a_pod_left_by_a_bar_job_that_is_gone_is_deleted(dv):
    pod_without_its_job(dv, "dv-test-job", "leftover-bar-pods")
    result = dv.dvdoctor("fix", "--issue", "leftover-bar-pods", "--yes", timeout=300)
    assert result.rc == 0, result.output
    dv.api.wait("the pod to be gone", lambda: dv.api.get("Pod", dv.name, "dv-test-job-x7k2p") is None, timeout=30)


def test_a_backup_pod_whose_job_was_deleted_is_named_and_stopped_as_an_unattended_job(dv):
    """A dv-backup-job pod left at work when its Job object was deleted (`--cascade=orphan`): nobody
    follows it, so bar-job-unattended names the pod, and its repair deletes that pod and waits until
    the server no longer has it."""
    report = pod_without_its_job(dv, "dv-backup-job", "bar-job-unattended")
    assert report["results"][0]["fix"] == "dvdoctor fix --issue bar-job-unattended", report
    result = dv.dvdoctor("fix", "--issue", "bar-job-unattended", "--yes", timeout=300)
    assert result.rc == 0, result.output
    assert "delete pod dv-backup-job-x7k2p of job dv-backup-job, whose Job object was deleted" in " ".join(
        result.output.split()), result.output
    assert dv.api.get("Pod", dv.name, "dv-backup-job-x7k2p") is None
