"""Checks on the namespace's objects: jobs, pods, deployments, claims, service accounts, volumes."""

import pytest

import builders as b
from dvdoctor.core.names import OWNED_LABEL, OWNED_VALUE, REPLICAS_ANNOTATION
from dvdoctor.verdicts.registry import BACKUP, RESTORE


# ---- the init-volume job and its pod ------------------------------------------------------------------

def test_init_volume_pod_deleted_while_the_job_names_the_image():
    data = b.healthy()
    b.remove(data, "pods", "dv-init-volume-8xq2z")
    r = b.run_one("init-volume-pod-missing", data)
    assert r.status == "warn"
    text = b.evidence(r)
    assert f"job/dv-init-volume exists; its image: {b.IMAGE}" in text
    assert "pods labelled job-name=dv-init-volume or owned by job dv-init-volume: none" in text
    assert "extra characters at the end of d command" in text
    assert b.run_one("init-volume-job-missing", data).status == "pass"


def test_init_volume_pod_found_by_owner_reference_alone():
    data = b.healthy()
    b.find(data, "pods", "dv-init-volume-8xq2z")["metadata"]["labels"] = {}
    assert b.run_one("init-volume-pod-missing", data).status == "pass"


def test_the_runbooks_dvcli_error_in_a_collected_log_is_quoted():
    data = b.healthy()
    b.remove(data, "pods", "dv-init-volume-8xq2z")
    data["logs"]["dv-backup-job-7bx9q"] = f"{b.RUNBOOK_EMPTY_IMAGE}\n{b.RUNBOOK_SED}\n"
    assert f"log of dv-backup-job-7bx9q: {b.RUNBOOK_EMPTY_IMAGE}" in b.evidence(b.run_one("init-volume-pod-missing", data))


def test_init_volume_job_missing_is_an_error_and_not_also_a_missing_pod():
    data = b.healthy()
    b.remove(data, "jobs", "dv-init-volume")
    b.remove(data, "pods", "dv-init-volume-8xq2z")
    r = b.run_one("init-volume-job-missing", data)
    assert r.status == "fail"
    assert r.problems[0].message == "job dv-init-volume is missing: the image that runs DV's backup and restore is unknown"
    assert "jobs in cpd30: none (no dv-init-volume)" in b.evidence(r)
    assert b.run_one("init-volume-pod-missing", data).status == "pass"


# ---- side deployments ---------------------------------------------------------------------------------

def test_side_deployments_must_be_down_before_a_backup():
    r = b.run_one("side-deployments-running", b.healthy(), BACKUP)
    assert r.status == "fail"
    assert r.problems[0].message == "dv-caching, dv-api, dv-unified-console still run while a backup is about to start"
    assert "deployment/dv-api: spec.replicas 1, ready 1" in b.evidence(r)
    assert b.run_one("side-deployments-running", b.quiesced(b.healthy()), BACKUP).status == "pass"


def test_side_deployments_running_outside_a_backup_are_fine_until_a_backup_job_runs():
    data = b.healthy()
    assert b.run_one("side-deployments-running", data).status == "pass"
    data["objects"]["jobs"].append(b.job("dv-backup-job", state="active"))
    r = b.run_one("side-deployments-running", data)
    assert r.status == "fail" and "while job dv-backup-job is running" in r.problems[0].message


def test_side_deployments_left_down_after_an_interrupted_dvdoctor_backup():
    data = b.quiesced(b.healthy())
    r = b.run_one("side-deployments-left-down", data)
    assert r.status == "fail" and len(r.problems) == 3  # an error: DV's API and console are down
    assert r.problems[0].message == "deployment dv-caching was scaled down by dvdoctor from 1 and never scaled back"
    assert f"annotation {REPLICAS_ANNOTATION}=1" in b.evidence(r)
    data["objects"]["jobs"].append(b.job("dv-backup-job", state="active"))
    assert b.run_one("side-deployments-left-down", data).status == "pass"


def test_side_deployment_scaled_down_by_hand_is_reported_without_a_recorded_count():
    data = b.healthy()
    b.find(data, "deployments", "dv-api")["spec"]["replicas"] = 0
    r = b.run_one("side-deployments-left-down", data, RESTORE)
    assert [p.message for p in r.problems] == ["deployment dv-api is at 0 replicas while no backup runs"]


# ---- DV's pods ----------------------------------------------------------------------------------------

def crashlooping(pod: dict, restarts: int = 14) -> dict:
    pod["status"]["conditions"][1]["status"] = "False"
    pod["status"]["containerStatuses"][0] |= {"ready": False, "restartCount": restarts,
                                              "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
    return pod


def test_dv_pod_not_ready_before_a_restore():
    data = b.healthy()
    crashlooping(b.find(data, "pods", "dv-engine-0"))
    r = b.run_one("dv-pods-not-ready", data, RESTORE)
    assert r.status == "fail"
    assert r.problems[0].message == "DV pod dv-engine-0 is not ready"
    assert r.problems[0].evidence == ("pod/dv-engine-0 of statefulset/dv-engine: phase Running, not Ready, "
                                      "waiting: CrashLoopBackOff, 14 restarts",)


def test_missing_statefulset_and_deployment_pods_are_reported():
    data = b.healthy()
    b.remove(data, "pods", "dv-worker-0")
    b.remove(data, "pods", "dv-api-7c9f8d6b5-x2k4p")
    messages = [p.message for p in b.run_one("dv-pods-not-ready", data, RESTORE).problems]
    assert messages == ["DV pod dv-worker-0 does not exist", "deployment dv-api wants 1 pod and has none"]


def test_a_statefulset_missing_many_pods_names_a_few_and_counts_the_rest():
    """It named every missing pod: 10**12 replicas in a facts file ran the machine out of memory."""
    data = b.healthy()
    next(s for s in data["objects"]["statefulsets"] if s["metadata"]["name"] == "dv-worker")["spec"]["replicas"] = 1000
    messages = [p.message for p in b.run_one("dv-pods-not-ready", data, RESTORE).problems]
    assert messages == [f"DV pod dv-worker-{i} does not exist" for i in range(1, 6)] + ["994 more pods of dv-worker do not exist"]


def test_pods_are_matched_by_exact_owner_never_by_substring():
    data = b.healthy()
    lookalike = crashlooping(b.deployment_pod("dv-api-gateway", "5d8f7c6b4", "q9w8e"))
    other_sts = crashlooping(b.sts_pod("dv-engine-backup"))
    data["objects"]["pods"] += [lookalike, other_sts]
    assert b.run_one("dv-pods-not-ready", data, RESTORE).status == "pass"


def test_pods_without_owner_references_are_matched_by_exact_name_pattern():
    data = b.healthy()
    for pod in data["objects"]["pods"]:
        pod["metadata"]["ownerReferences"] = []
    crashlooping(b.find(data, "pods", "dv-unified-console-7c9f8d6b5-x2k4p"))
    r = b.run_one("dv-pods-not-ready", data, RESTORE)
    assert [p.object for p in r.problems] == ["pod/dv-unified-console-7c9f8d6b5-x2k4p"]


def test_dv_pods_down_during_a_backup_job_are_skipped_now_but_fail_a_restore_gate():
    data = b.healthy()
    crashlooping(b.find(data, "pods", "dv-engine-0"))
    data["objects"]["jobs"].append(b.job("dv-backup-job", state="active"))
    now = b.run_one("dv-pods-not-ready", data)
    assert now.status == "skip" and now.reason == "job dv-backup-job is running and stops DV on purpose"
    assert b.run_one("dv-pods-not-ready", data, RESTORE).status == "fail"


def test_dv_down_is_reported_now_too():
    data = b.healthy()
    pod = b.find(data, "pods", "dv-metastore-0")
    pod["status"] = {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                                                        "message": "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims."}]}
    r = b.run_one("dv-pods-not-ready", data)
    assert r.status == "fail"
    assert "phase Pending, unschedulable: 0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims., 0 restarts" in b.evidence(r)


# ---- BAR jobs -----------------------------------------------------------------------------------------

def failed_backup(data: dict, log: str | None, suffix: str = "7bx9q") -> None:
    data["objects"]["jobs"].append(b.job("dv-backup-job", state="failed", finished="2021-01-23T07:00:00Z"))
    data["objects"]["pods"].append(b.job_pod("dv-backup-job", suffix=suffix, phase="Failed"))
    if log is not None:
        data["logs"][f"dv-backup-job-{suffix}"] = log


def test_failed_backup_job_names_the_permission_root_cause():
    data = b.healthy()
    failed_backup(data, f"2021-01-14 19:20:07 starting backup\n{b.RUNBOOK_ERRNO13}\n")
    r = b.run_one("bar-job-failed", data)
    assert r.status == "fail"
    assert r.problems[0].message == ("job dv-backup-job failed; root cause: bar-permissions "
                                     "(see `dvdoctor explain bar-permissions`)")
    text = b.evidence(r)
    assert ("job/dv-backup-job: condition Failed, BackoffLimitExceeded: Job has reached the specified backoff limit"
            in text)
    assert f"log of dv-backup-job-7bx9q: {b.RUNBOOK_ERRNO13}" in text


def test_each_known_signature_points_at_its_check():
    cases = {
        "gzip: stdout: No space left on device": "bar-low-space",
        "tar: /mnt/PV/versioned/ibm/db2: file changed as we read it": "side-deployments-running",
        b.RUNBOOK_SED: "init-volume-pod-missing",
    }
    for line, check_id in cases.items():
        data = b.healthy()
        failed_backup(data, line + "\n")
        r = b.run_one("bar-job-failed", data)
        assert r.problems[0].message.endswith(f"root cause: {check_id} (see `dvdoctor explain {check_id}`)")


def test_a_restarting_restore_pod_is_failing_before_its_job_gives_up():
    data = b.healthy()
    data["objects"]["jobs"].append(b.job("dv-restore-job", state="active"))
    data["objects"]["pods"].append(b.job_pod("dv-restore-job", phase="Running", restarts=3, waiting="CrashLoopBackOff"))
    data["logs"]["dv-restore-job-5pfw2"] = "copying dv_backup.tar.gz\nunexpected end of file\n"
    r = b.run_one("bar-job-failed", data)
    assert r.problems[0].message == "job dv-restore-job keeps failing"
    text = b.evidence(r)
    assert "pod/dv-restore-job-5pfw2: phase Running, 3 restarts, waiting: CrashLoopBackOff" in text
    assert "last line (no known signature): unexpected end of file" in text


def test_a_failed_job_without_a_collected_log_says_so():
    data = b.healthy()
    failed_backup(data, None)
    assert "log of dv-backup-job-7bx9q: not collected" in b.evidence(b.run_one("bar-job-failed", data))


def test_a_completed_backup_job_is_not_failed():
    data = b.healthy()
    data["objects"]["jobs"].append(b.job("dv-backup-job", finished="2021-01-23T07:30:00Z"))
    data["objects"]["pods"].append(b.job_pod("dv-backup-job"))
    assert b.run_one("bar-job-failed", data).status == "pass"


def test_a_job_that_completed_after_a_pod_failed_is_not_failing():
    """A restore whose first pod failed and whose retry succeeded is Complete: its failed pod is a past
    retry, not a job that keeps failing (break-it review: check failed it, and its fix then recorded a
    false "restore failed part-way")."""
    data = b.healthy()
    data["objects"]["jobs"].append(b.job("dv-restore-job", finished="2021-01-23T07:30:00Z"))
    data["objects"]["pods"] += [b.job_pod("dv-restore-job", "k2j4h", phase="Failed"), b.job_pod("dv-restore-job")]
    assert b.run_one("bar-job-failed", data).status == "pass"


# ---- leftovers ----------------------------------------------------------------------------------------

def test_dvclis_list_job_and_the_runbooks_test_job_are_leftovers():
    data = b.healthy()
    data["objects"]["jobs"] += [b.job("dv-list-backups-job", state="active"), b.job("dv-test-job", state="active")]
    data["objects"]["pods"] += [b.job_pod("dv-list-backups-job", "k2j4h", "Running"), b.job_pod("dv-test-job", "5pfw2", "Running")]
    r = b.run_one("leftover-bar-pods", data)
    assert r.status == "warn"
    assert [p.object for p in r.problems] == ["job/dv-list-backups-job", "job/dv-test-job"]
    assert "its pods: dv-test-job-5pfw2 (Running)" in b.evidence(r)


def test_finished_backup_jobs_are_leftovers_after_an_hour():
    data = b.healthy()
    data["objects"]["jobs"].append(b.job("dv-backup-job", finished="2021-01-23T07:30:00Z"))
    assert b.run_one("leftover-bar-pods", data).status == "pass"  # 30 minutes: still someone's evidence
    data["collected_at"] = "2021-01-23T09:00:00Z"
    r = b.run_one("leftover-bar-pods", data)
    assert r.problems[0].message == "job dv-backup-job is left over: complete 1.5 h ago"


def test_dvdoctors_own_finished_jobs_and_orphaned_pods_are_leftovers():
    data = b.healthy()
    owned = {OWNED_LABEL: OWNED_VALUE}
    data["objects"]["jobs"] += [b.job("dvdoctor-inspect-a1b2c3", labels=owned),
                                b.job("dvdoctor-fix-d4e5f6", state="active", labels=owned)]
    orphan = b.job_pod("dvdoctor-inspect-0f0f0f", phase="Succeeded")
    orphan["metadata"]["labels"] |= owned
    data["objects"]["pods"].append(orphan)
    messages = [p.message for p in b.run_one("leftover-bar-pods", data).problems]
    assert messages == [
        "job dvdoctor-inspect-a1b2c3 is left over: dvdoctor's own job, complete 11.9 h ago",
        "pod dvdoctor-inspect-0f0f0f-5pfw2 is left over from job dvdoctor-inspect-0f0f0f, which no longer exists",
    ]


# ---- claims, service account, volume ------------------------------------------------------------------

def test_bar_pvc_missing_names_the_lookalike_dvcli_would_take():
    data = b.healthy()
    b.remove(data, "persistentvolumeclaims", "dv-bar-pvc")
    data["objects"]["persistentvolumeclaims"].append(b.pvc("dv-bar-pvc-old", "20Gi", "pvc-old"))
    r = b.run_one("bar-pvc-missing", data, RESTORE)
    assert r.status == "fail"
    assert "claims in cpd30: dv-bar-pvc-old, dv-pvc" in b.evidence(r)
    assert "dvcli.sh would take dv-bar-pvc-old for it" in b.evidence(r)


def test_bar_pvc_pending_says_its_phase_and_events():
    data = b.healthy()
    b.remove(data, "persistentvolumeclaims", "dv-bar-pvc")
    data["objects"]["persistentvolumeclaims"].append(b.pvc("dv-bar-pvc", "20Gi", "", phase="Pending"))
    data["objects"]["events"].append({"metadata": {"name": "dv-bar-pvc.1"}, "involvedObject": {"kind": "PersistentVolumeClaim", "name": "dv-bar-pvc"},
                                      "reason": "ProvisioningFailed", "message": "storageclass.storage.k8s.io \"ibmc-file-gold-gid\" not found"})
    r = b.run_one("bar-pvc-missing", data)
    assert r.problems[0].message == "claim dv-bar-pvc is Pending, not Bound"
    assert "persistentvolumeclaim/dv-bar-pvc: phase Pending, storage class ibmc-file-gold-gid, request 20Gi" in b.evidence(r)
    assert 'event ProvisioningFailed: storageclass.storage.k8s.io "ibmc-file-gold-gid" not found' in b.evidence(r)


def test_bar_sa_missing():
    data = b.healthy()
    b.remove(data, "serviceaccounts", "dv-bar-sa")
    r = b.run_one("bar-sa-missing", data)
    assert r.status == "fail" and "Make sure required security settings are configured" in b.evidence(r)
    assert "service accounts named dv-*: none" in b.evidence(r)


def test_reclaim_policy_delete_loses_every_backup():
    data = b.healthy()
    b.find(data, "persistentvolumes", "pvc-bar-0472")["spec"]["persistentVolumeReclaimPolicy"] = "Delete"
    r = b.run_one("bar-pv-reclaim-delete", data)
    assert r.status == "warn"
    assert r.problems[0].object == "persistentvolume/pvc-bar-0472"
    text = b.evidence(r)
    assert "persistentvolume/pvc-bar-0472: persistentVolumeReclaimPolicy Delete, capacity 60Gi, bound to cpd30/dv-bar-pvc" in text
    assert "storageclass/ibmc-file-gold-gid: reclaimPolicy Delete" in text


def test_reclaim_policy_is_skipped_when_pvs_could_not_be_listed():
    data = b.healthy()
    del data["objects"]["persistentvolumes"]
    data["errors"].append({"what": "list persistentvolumes", "error": "forbidden: cannot list resource \"persistentvolumes\" at the cluster scope"})
    r = b.run_one("bar-pv-reclaim-delete", data)
    assert r.status == "skip"
    assert r.reason.startswith("PersistentVolumes could not be listed, so the reclaim policy of pvc-bar-0472 is unknown: forbidden")



# ---- inside dv-engine-0 -------------------------------------------------------------------------------

def marker(name: str, written: str) -> dict:
    from datetime import datetime

    return {"name": name, "size": 0, "mtime": datetime.fromisoformat(written).timestamp()}


def test_restore_marker_left_after_the_restore_ended():
    data = b.healthy()
    data["engine"]["markers"].append(marker(".bar_restored.txt", "2021-01-23T05:00:00+00:00"))
    r = b.run_one("restore-marker-left", data)
    assert r.status == "warn"
    text = b.evidence(r)
    assert "dv-engine-0:/mnt/marker_files/.bar_restored.txt (0 B, written 3.0 h ago)" in text
    assert "/opt/dv/current/bar/scripts/dv-caching-bar.sh false` is due too" in text
    data["objects"]["jobs"].append(b.job("dv-restore-job", state="active"))
    assert b.run_one("restore-marker-left", data).status == "pass"


def test_stale_bar_marker_without_a_running_job():
    data = b.healthy()
    data["engine"]["markers"].append(marker(".bar", "2021-01-23T07:00:00+00:00"))
    r = b.run_one("stale-bar-marker", data)
    assert r.status == "fail" and "written 60 min ago" in b.evidence(r)
    data["objects"]["jobs"].append(b.job("dv-backup-job", state="active"))
    assert b.run_one("stale-bar-marker", data).status == "pass"


def test_bar_templates_missing_or_empty():
    data = b.healthy()
    del data["engine"]["templates"]["dv-restore-job.yaml"]
    data["engine"]["missing_templates"].append("dv-restore-job.yaml")
    data["engine"]["templates"]["dv-bar-pvc.yaml"] = "\n"
    r = b.run_one("bar-templates-missing", data)
    assert r.status == "fail"
    assert r.problems[0].message == "2 of DV's BAR templates are missing or empty in /opt/dv/current/bar/yaml"
    text = b.evidence(r)
    assert "dv-engine-0:/opt/dv/current/bar/yaml/dv-restore-job.yaml: no such file" in text
    assert "dv-engine-0:/opt/dv/current/bar/yaml/dv-bar-pvc.yaml: empty" in text
    assert "present: dv-backup-job.yaml, dv-list-backups-job.yaml" in text


# ---- dvdoctor's own permissions -----------------------------------------------------------------------

VIEW_AND_EXEC = [
    {"verbs": ["get", "list", "watch"], "apiGroups": ["", "apps", "batch"], "resources": ["*"]},
    {"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]},
    {"verbs": ["create"], "apiGroups": [""], "resources": ["pods/exec"]},
    {"verbs": ["create", "delete"], "apiGroups": ["batch"], "resources": ["jobs"]},
    {"verbs": ["patch"], "apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["dv-api"]},
]


def test_missing_verbs_are_named_exactly():
    data = b.healthy()
    data["access"]["rules"] = VIEW_AND_EXEC
    r = b.run_one("dvdoctor-permissions", data, command="fix")
    assert r.status == "warn" and "`dvdoctor fix` needs" in r.problems[0].message
    lines = r.problems[0].evidence
    assert ("cannot patch apps/deployments: needed by fix, backup to scale the side deployments down before a "
            "backup and back up after") in lines
    assert "cannot delete pods: needed by fix to restart DV pods that stay down after a marker is removed (--restart)" in lines
    assert any(line.startswith("cannot patch persistentvolumes (cluster-wide): needed by fix") for line in lines)
    assert any(line.startswith("cannot list storage.k8s.io/storageclasses (cluster-wide)") for line in lines)
    assert not any("pods/exec" in line or "batch/jobs" in line for line in lines)


def test_check_is_judged_on_what_check_needs_and_lists_the_rest():
    data = b.healthy()
    data["access"]["rules"] = VIEW_AND_EXEC
    r = b.run_one("dvdoctor-permissions", data)  # the command at hand is check
    assert r.status == "warn"
    lines = r.problems[0].evidence
    assert any(line.startswith("cannot list storage.k8s.io/storageclasses (cluster-wide)") for line in lines)
    assert not any("deployments" in line or "cannot delete pods" in line for line in lines)  # fix's and backup's
    assert "patch apps/deployments" in r.reason and "delete pods" in r.reason and "(not by `dvdoctor check`)" in r.reason
    data["access"]["rules"] = VIEW_AND_EXEC + [
        {"verbs": ["list"], "apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"]},
        {"verbs": ["list"], "apiGroups": ["coordination.k8s.io"], "resources": ["leases"]}]
    r = b.run_one("dvdoctor-permissions", data)
    assert r.status == "pass" and "patch apps/deployments" in r.reason, r.reason


def test_a_gate_checks_only_its_commands_permissions():
    data = b.quiesced(b.healthy())
    data["access"]["rules"] = VIEW_AND_EXEC + [
        {"verbs": ["create"], "apiGroups": [""], "resources": ["persistentvolumeclaims"]},
        {"verbs": ["patch"], "apiGroups": ["apps"], "resources": ["statefulsets"]},  # a failed restore's record
        {"verbs": ["get", "list", "create", "patch", "delete"], "apiGroups": ["coordination.k8s.io"], "resources": ["leases"]}]
    r = b.run_one("dvdoctor-permissions", data, BACKUP)
    assert [line.split(":")[0] for line in r.problems[0].evidence] == ["cannot patch apps/deployments"]
    # a right to change DV that check does not need: the backup would be refused at its first change
    assert r.status == "fail" and "it would be refused part-way" in r.problems[0].message
    assert b.run_one("dvdoctor-permissions", data, RESTORE).status == "pass"


def test_a_gate_stops_on_a_right_met_only_part_way_and_not_on_creating_a_claim_that_exists():
    """Break-it review: without delete on jobs a backup scaled DV down, then was refused at deleting its
    finished job; without create on claims, one stopped although dv-bar-pvc was there to use."""
    data = b.quiesced(b.healthy())
    data["access"]["rules"] = [{"verbs": ["get", "list", "watch", "create", "patch"], "apiGroups": ["batch"], "resources": ["jobs"]},
                               {"verbs": ["*"], "apiGroups": ["", "apps", "coordination.k8s.io", "storage.k8s.io"], "resources": ["*"]}]
    r = b.run_one("dvdoctor-permissions", data, BACKUP)
    assert r.status == "fail" and [e.split(":")[0] for e in r.problems[0].evidence] == ["cannot delete batch/jobs"]
    data["access"]["rules"] = [
        {"verbs": ["get", "list", "watch", "patch", "delete"], "apiGroups": [""], "resources": ["persistentvolumeclaims"]},
        {"verbs": ["*"], "apiGroups": ["apps", "batch", "coordination.k8s.io", "storage.k8s.io"], "resources": ["*"]},
        {"verbs": ["*"], "apiGroups": [""], "resources": [r for r in ("pods", "pods/log", "pods/exec", "events",
                                                                       "serviceaccounts", "persistentvolumes")]}]
    r = b.run_one("dvdoctor-permissions", data, BACKUP)
    assert [e.split(":")[0] for e in r.problems[0].evidence] == ["cannot create persistentvolumeclaims"]
    assert r.status == "warn"  # dv-bar-pvc exists: the backup will not create it
    b.remove(data, "persistentvolumeclaims", "dv-bar-pvc")
    assert b.run_one("dvdoctor-permissions", data, BACKUP).status == "fail"


def test_a_gate_missing_only_rights_check_needs_too_warns_its_checks_say_the_rest():
    """A right check needs too (exec into dv-engine-0) leaves the checks that need it unable to run: the
    gate stops on that (exit 3), so the permissions check only warns."""
    data = b.quiesced(b.healthy())
    data["access"]["rules"] = [r for r in VIEW_AND_EXEC if "pods/exec" not in r["resources"]] + [
        {"verbs": ["patch"], "apiGroups": ["apps"], "resources": ["deployments"]},
        {"verbs": ["create"], "apiGroups": [""], "resources": ["persistentvolumeclaims"]},
        {"verbs": ["get", "list", "create", "patch", "delete"], "apiGroups": ["coordination.k8s.io"], "resources": ["leases"]}]
    r = b.run_one("dvdoctor-permissions", data, BACKUP)
    assert [line.split(":")[0] for line in r.problems[0].evidence] == ["cannot create pods/exec"]
    assert r.status == "warn" and "first change" not in r.problems[0].message


def test_subresource_wildcards_follow_rbac():
    data = b.healthy()
    data["access"]["rules"] = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["pods", "jobs", "deployments", "statefulsets",
                                                                                  "persistentvolumeclaims", "serviceaccounts", "events",
                                                                                  "persistentvolumes", "storageclasses", "leases"]}]
    lines = b.run_one("dvdoctor-permissions", data, command="fix").problems[0].evidence
    assert [line.split(":")[0] for line in lines] == ["cannot get pods/log", "cannot get pods/exec", "cannot create pods/exec"]
    data["access"]["rules"].append({"verbs": ["get", "create"], "apiGroups": [""], "resources": ["*/log", "*/exec"]})
    assert b.run_one("dvdoctor-permissions", data).status == "pass"


def test_an_empty_rules_review_is_skipped_not_read_as_no_rights():
    data = b.healthy()
    data["access"]["rules"] = []
    r = b.run_one("dvdoctor-permissions", data)
    assert r.status == "skip" and "authorizer" in r.reason


# ---- the API server's version -------------------------------------------------------------------

def test_openshift_3_11_is_told_what_dvdoctor_cannot_do_there():
    data = b.healthy()
    data["server"] = {"version": "1.11", "lease": None}
    r = b.run_one("server-too-old", data)
    assert r.status == "fail"  # an error: backup, restore and fix refuse there
    text = b.evidence(r)
    assert "cannot take its lock" in text and "fix, backup, restore" in text and "dry-run" in text


def test_a_1_18_server_with_its_lease_passes_and_an_unknown_version_skips():
    data = b.healthy()
    data["server"] = {"version": "1.18", "lease": "coordination.k8s.io/v1"}
    assert b.run_one("server-too-old", data).status == "pass"
    data["server"] = {"version": None, "lease": None}
    assert b.run_one("server-too-old", data).status == "skip"


def test_a_1_14_server_with_its_lease_passes_with_a_note():
    data = b.healthy()
    data["server"] = {"version": "1.14", "lease": "coordination.k8s.io/v1"}
    r = b.run_one("server-too-old", data)
    assert r.status == "pass" and "older than 1.18" in r.reason


def test_no_lease_api_means_no_lock_a_known_answer_not_an_unknown():
    data = b.healthy()
    data["server"] = {"version": "1.11", "lease": None}
    data["objects"].pop("leases", None)
    r = b.run_one("stale-dvdoctor-lock", data)
    assert r.status == "skip" and not r.incomplete and "serves no Lease API" in r.reason
    data["server"] = {"version": None, "lease": None}  # the server was not asked: still unknown
    r = b.run_one("stale-dvdoctor-lock", data)
    assert r.status == "skip" and r.incomplete


def test_a_copy_tagged_by_hand_with_no_timestamp_is_not_a_copy_of_a_backup():
    """A restic tag is anyone's to set: `backup=zzz` crashed the check (break-it review)."""
    data = b.healthy()
    data["copies"] = {"snapshots": [{"backup": "zzz", "complete": True}, {"backup": "9999-99-99-99-99-99", "complete": True}]}
    r = b.run_one("no-recent-copy", data)
    assert r.status == "warn" and "has no copy" in r.problems[0].message, (r.status, r.reason)
    assert "copies in the repository: none" in r.problems[0].evidence


def test_copies_damaged_names_what_restic_check_found_and_says_when_it_did_not_look():
    data = b.healthy()
    data["copies"]["snapshots"].append(b.copy_of("2021-01-23-19-27-31", snapshot="5e4d3c2b"))
    data["copies"]["repository_check"] = {"ok": False, "error": "the repository is damaged (pack 3f2a: does not exist)"}
    r = b.run_one("copies-damaged", data)
    assert r.status == "fail" and r.problems[0].evidence == (
        "restic check: the repository is damaged (pack 3f2a: does not exist)",
        "2 copies of this DV instance listed complete, the newest of backup 2021-01-23-19-27-31")
    del data["copies"]["repository_check"]  # check without --verify: not looked at, and not unknown
    r = b.run_one("copies-damaged", data)
    assert r.status == "skip" and not r.incomplete and "--verify" in r.reason
    data["copies"] = {"snapshots": [], "error": "the repository's password is wrong"}
    r = b.run_one("copies-damaged", data)  # copies-unusable fails; whether it is damaged is unknown
    assert r.status == "skip" and r.incomplete and "see copies-unusable" in r.reason


def _pod_without_its_job(shape: str) -> tuple[dict, list[dict]]:
    """A dv-backup-job pod whose Job object is gone or another one, in the shapes a cluster shows."""
    pod = b.job_pod("dv-backup-job", suffix="t4r00", phase="Running")
    jobs: list[dict] = []
    if shape == "unknown phase":  # its node lost contact: the tar there may still write
        pod["status"]["phase"] = "Unknown"
    elif shape == "no status":
        del pod["status"]
    elif shape == "owner reference only":
        pod["metadata"]["labels"] = {}
    elif shape == "newer label only":
        pod["metadata"]["labels"] = {"batch.kubernetes.io/job-name": "dv-backup-job"}
        pod["metadata"]["ownerReferences"] = []
    elif shape == "a newer job of the name":  # DV reuses the name: a finished Job of another run
        pod["metadata"]["ownerReferences"][0]["uid"] = "uid-of-the-run-that-wrote"
        jobs.append(b.job("dv-backup-job"))
    return pod, jobs


@pytest.mark.parametrize("shape", ["running", "unknown phase", "no status", "owner reference only",
                                   "newer label only", "a newer job of the name"])
def test_a_backup_pod_at_work_without_its_job_is_the_job_at_work_not_a_leftover(shape):
    """Break-it review: such a pod's tar runs on, so it owns the namespace as its job did (every change
    refuses) and leftover-bar-pods never deletes it half-way."""
    from dvdoctor.facts.bar_jobs import active_jobs
    from dvdoctor.core.names import DvNames
    pod, jobs = _pod_without_its_job(shape)
    [job] = active_jobs(jobs, DvNames(), [pod])
    assert (job.name, job.pod) == ("dv-backup-job", "dv-backup-job-t4r00")
    data = b.healthy()
    data["objects"]["pods"].append(pod)
    data["objects"]["jobs"] += jobs
    r = b.run_one("leftover-bar-pods", data)
    assert not any("dv-backup-job-t4r00" in p.message for p in r.problems), b.evidence(r)


@pytest.mark.parametrize("shape", ["running", "unknown phase", "no status", "owner reference only",
                                   "newer label only", "a newer job of the name"])
def test_a_backup_pod_at_work_without_its_job_is_a_backup_at_work_for_every_check(shape):
    """Break-it review (low): side-deployments-running looked at the Job only, and a job-less pod
    was attached to nobody yet named by no check. Its folder is being written, its writers must be
    down, and bar-job-unattended names it (nobody follows a pod without its Job) with the stop."""
    from dvdoctor.core.names import DvNames
    from dvdoctor.facts.bar_jobs import backup_at_work
    from dvdoctor.facts.collect import _being_written
    pod, jobs = _pod_without_its_job(shape)
    at_work = backup_at_work(jobs, [pod], DvNames())
    assert at_work is not None and at_work.pod == "dv-backup-job-t4r00"
    # the inspection pod reads back no folder named from a minute before the pod's start (or creation)
    since = "2021-01-10-08-59-00" if shape == "no status" else "2021-01-22-19-26-00"
    assert _being_written({"jobs": jobs, "pods": [pod]}, DvNames()) == f"@since:{since}"
    data = b.healthy()
    data["objects"]["pods"].append(pod)
    data["objects"]["jobs"] += jobs
    data["collected_at"] = "2021-01-22T19:40:00Z"
    for dep in data["objects"]["deployments"]:
        dep["spec"]["replicas"] = 1
    r = b.run_one("side-deployments-running", data)
    assert r.status == "fail", b.evidence(r)
    assert r.problems[0].message.endswith("still run while pod dv-backup-job-t4r00 of job dv-backup-job, whose Job "
                                          "object was deleted, is at work"), r.problems[0].message
    r = b.run_one("bar-job-unattended", data)
    (problem,) = r.problems
    assert problem.object == "pod/dv-backup-job-t4r00" and "with nobody attached: its Job object was deleted" in \
        problem.message, b.evidence(r)


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_a_backup_pod_that_ended_without_its_job_is_a_leftover_not_a_job(phase):
    from dvdoctor.facts.bar_jobs import active_jobs
    from dvdoctor.core.names import DvNames
    pod = b.job_pod("dv-backup-job", suffix="t4r00", phase=phase)
    assert active_jobs([], DvNames(), [pod]) == []
    data = b.healthy()
    data["objects"]["pods"].append(pod)
    assert any("dv-backup-job-t4r00" in p.message for p in b.run_one("leftover-bar-pods", data).problems)
