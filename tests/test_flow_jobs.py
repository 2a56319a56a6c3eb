"""DV's job templates turned into the objects dvdoctor creates: structured edits, valid manifests."""

import kubernetes_validate
import pytest

from dvdoctor.core.errors import UsageError
from dvdoctor.flows.jobs import job_from_template, select_backup
from dvdoctor.facts.dv_templates import pvc_from_template
from fixes_support import minimal_facts

IMAGE = "image-registry.openshift-image-registry.svc:5000/cpd30/dv-init-volume:v1.5.0.0-217"
PLACEHOLDER = "docker-registry.default.svc:5000/zen/dv-init-volume:v1.5.0.0"
RESTORE_TEMPLATE = f"""\
apiVersion: batch/v1
kind: Job
metadata:
  name: dv-restore-job
  namespace: zen
  uid: 0b5a3e52-aaaa-bbbb-cccc-000000000000
spec:
  backoffLimit: 2
  template:
    spec:
      serviceAccountName: dv-bar-sa
      restartPolicy: Never
      securityContext: {{runAsNonRoot: true, runAsUser: 1000322824}}
      initContainers:
      - {{name: prepare, image: "{PLACEHOLDER}", command: [dv-bar, prepare]}}
      containers:
      - name: dv-restore
        image: {PLACEHOLDER}
        command: [dv-bar, restore]
        env:
        - {{name: DV_BACKUP_FILE, value: dv_backup.tar.gz}}
        - {{name: OTHER, value: keep-me}}
        volumeMounts:
        - {{name: dv-bar-data, mountPath: /mnt/PV/bar, subPath: "1.5.0"}}
      volumes:
      - name: dv-bar-data
        persistentVolumeClaim: {{claimName: dv-bar-pvc}}
"""
PVC_TEMPLATE = """\
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: dv-bar-pvc}
spec:
  storageClassName: "managed-nfs-storage"
  accessModes: [ReadWriteMany]
  resources: {requests: {storage: 20Gi}}
"""


def facts_with_templates(**templates):
    init_job = {"metadata": {"name": "dv-init-volume"},
                "spec": {"template": {"spec": {"containers": [{"name": "init", "image": IMAGE}]}}}}
    return minimal_facts(objects={"jobs": [init_job]},
                         engine={"complete": True, "markers": [], "templates": templates, "missing_templates": []})


def test_every_container_gets_the_init_volume_jobs_image_and_server_fields_go():
    job = job_from_template(facts_with_templates(**{"dv-restore-job.yaml": RESTORE_TEMPLATE}), "dv-restore-job.yaml", "dvdoctor restore")
    spec = job["spec"]["template"]["spec"]
    assert {c["image"] for c in spec["containers"] + spec["initContainers"]} == {IMAGE}
    assert "namespace" not in job["metadata"] and "uid" not in job["metadata"]
    assert job["metadata"]["annotations"]["dvdoctor.io/started-by"] == "dvdoctor restore"


def test_restore_is_pointed_at_one_backup_by_the_env_value_dv_expects():
    job = job_from_template(facts_with_templates(**{"dv-restore-job.yaml": RESTORE_TEMPLATE}), "dv-restore-job.yaml", "t")
    assert select_backup(job, "2021-01-22-19-27-31", "dv_backup.tar.gz", "dv_backup.tar.gz") == 1
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env == {"DV_BACKUP_FILE": "2021-01-22-19-27-31/dv_backup.tar.gz", "OTHER": "keep-me"}
    for version in ("1.25.0", kubernetes_validate.latest_version()):
        kubernetes_validate.validate(job, version, strict=True)


def test_a_template_without_the_backup_env_is_refused():
    job = job_from_template(facts_with_templates(**{"dv-restore-job.yaml": RESTORE_TEMPLATE.replace("value: dv_backup.tar.gz", "value: x")}),
                            "dv-restore-job.yaml", "t")
    with pytest.raises(UsageError, match="no env value 'dv_backup.tar.gz'"):
        select_backup(job, "2021-01-22-19-27-31", "dv_backup.tar.gz", "dv_backup.tar.gz")


def test_missing_template_and_missing_init_job_are_clear_errors():
    with pytest.raises(UsageError, match="dv-backup-job.yaml is missing"):
        job_from_template(facts_with_templates(), "dv-backup-job.yaml", "t")
    facts = facts_with_templates(**{"dv-restore-job.yaml": RESTORE_TEMPLATE})
    facts.data["objects"]["jobs"] = []
    with pytest.raises(UsageError, match="job dv-init-volume is missing"):
        job_from_template(facts, "dv-restore-job.yaml", "t")


def test_bar_pvc_from_dvs_template_takes_class_and_size():
    pvc = pvc_from_template(facts_with_templates(**{"dv-bar-pvc.yaml": PVC_TEMPLATE}), "ibmc-file-gold-gid", "60Gi")
    assert pvc["spec"]["storageClassName"] == "ibmc-file-gold-gid"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "60Gi"
    kubernetes_validate.validate(pvc, kubernetes_validate.latest_version(), strict=True)
