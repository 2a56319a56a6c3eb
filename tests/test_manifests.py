"""The inspection Job collect builds, validated against Kubernetes' published OpenAPI schemas.

kubernetes-validate carries schemas from 1.25 on; CP4D 3.5's OpenShift (Kubernetes 1.18/1.19) is
older than any of them, so the oldest and the newest carried versions are checked, strictly
(unknown fields are errors), which catches misspelt or misplaced keys a lenient server would drop.
"""

from __future__ import annotations

import kubernetes_validate
import pytest
from kubernetes_validate.utils import all_versions

from dvdoctor.cluster import oneshot
from dvdoctor.facts import probe
from dvdoctor.facts.dv_templates import bar_volume_spec
from dvdoctor.lab.bar import template_text
from dvdoctor.core.names import DEFAULT
from dvdoctor.facts.model import Facts

VERSIONS = (min(all_versions(), key=lambda v: tuple(int(p) for p in v.split("."))),
            kubernetes_validate.latest_version())
IMAGE = "image-registry.openshift-image-registry.svc:5000/zen/dv-init-volume:v1.5.0.0-217"

#: DV's backup job template as dv-engine-0 ships it (the mounts of the runbook's BAR pod).
#: DV's backup job template as dv-engine-0 ships it (the lab's stand-in: the mounts of the runbook's BAR pod).
BACKUP_TEMPLATE = template_text("dv-backup-job.yaml")

ENGINE_POD = {
    "metadata": {"name": "dv-engine-0"},
    "spec": {
        "containers": [
            {
                "name": "dv-engine",
                "volumeMounts": [
                    {"name": "dv-data", "mountPath": "/mnt/PV/versioned", "subPath": "1.5.0"},
                    {"name": "dv-data", "mountPath": "/mnt/PV/versioned/uc_dsserver_shared", "subPath": "uc_dsserver_shared"},
                ],
            }
        ]
    },
}


def _facts_data(with_template: bool) -> dict:
    engine = {"templates": {"dv-backup-job.yaml": BACKUP_TEMPLATE}} if with_template else {"templates": {}}
    return {"engine": engine, "objects": {"pods": [ENGINE_POD]}}


def _inspection_job(with_template: bool) -> dict:
    volumes, mounts = bar_volume_spec(Facts(_facts_data(with_template)))
    return oneshot.script_job(
        name=oneshot.job_name("inspect"),
        purpose="inspect",
        image=IMAGE,
        service_account=DEFAULT.names.bar_sa,
        uid=1000322824,
        script_text=probe.script("bar-probe.sh"),
        args=[],
        env={"BAR_DIR": "/mnt/PV/bar", "SYMLINK": "dv_backup.tar.gz", "VERIFY": "0"},
        volumes=volumes,
        mounts=mounts,
    )


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("with_template", [True, False], ids=["from-dv-template", "fallback"])
def test_inspection_job_is_valid(version: str, with_template: bool) -> None:
    job = _inspection_job(with_template)
    kubernetes_validate.validate(job, version, strict=True)
    spec = job["spec"]["template"]["spec"]
    (mount,) = spec["containers"][0]["volumeMounts"]
    assert (mount["mountPath"], mount["subPath"]) == ("/mnt/PV/bar", "1.5.0")
    (volume,) = spec["volumes"]
    assert volume["name"] == mount["name"] and volume["persistentVolumeClaim"]["claimName"] == "dv-bar-pvc"


def test_the_job_name_is_a_valid_object_name() -> None:
    name = _inspection_job(True)["metadata"]["name"]
    assert len(name) <= 63 and name.replace("-", "").isalnum() and name == name.lower()


@pytest.mark.parametrize(
    "damage",
    [
        lambda job: job["spec"].__setitem__("backoffLimit", "none"),
        lambda job: job["spec"]["template"]["spec"]["containers"][0].__setitem__("volumeMount", []),
        lambda job: job["spec"]["template"]["spec"]["containers"][0].pop("name"),
    ],
    ids=["wrong-type", "unknown-field", "missing-required"],
)
def test_the_validator_rejects_broken_jobs(damage) -> None:
    """The schema check has teeth: the same Job, broken in one place, is refused."""
    job = _inspection_job(True)
    damage(job)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, VERSIONS[-1], strict=True)


def test_exec_goes_to_dv_engine_or_else_the_pods_first_container():
    from dvdoctor.facts.dv_templates import engine_container

    def data(*containers: str) -> Facts:
        pod = {"metadata": {"name": "dv-engine-0"}, "spec": {"containers": [{"name": c} for c in containers]}}
        return Facts({"objects": {"pods": [pod]}})

    assert engine_container(data("sidecar", "dv-engine")) == "dv-engine"
    assert engine_container(data("bigsql")) == "bigsql"
    assert engine_container(Facts({"objects": {}})) == "dv-engine"
