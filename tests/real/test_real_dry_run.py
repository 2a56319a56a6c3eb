"""Every object dvdoctor creates, as it builds it, sent to the real server with dryRun=All: validated
and admitted in full (RBAC escalation checks, service accounts, quotas), stored nowhere.

DV's own backup and restore Jobs come from templates inside dv-engine-0, which never runs here
(no nodes): they are not in this list.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from dvdoctor.facts import collect as collecting
from dvdoctor.cluster import rbac
from dvdoctor.flows import schedule
from dvdoctor.cluster.kube import connect
from dvdoctor.facts.dv_templates import pvc_from_template
from dvdoctor.cluster.lock import Lock
from dvdoctor.core.names import DEFAULT
from dvdoctor.cluster.rbac import subject

from .api import PATHS

NAMESPACED = {kind for kind, (_, _, namespaced) in PATHS.items() if namespaced}


def dry_run(dv, obj: dict) -> dict:
    prefix, plural, namespaced = PATHS[obj["kind"]]
    path = prefix + (f"/namespaces/{dv.name}" if namespaced else "") + f"/{plural}?dryRun=All"
    return dv.api.request("POST", path, obj)


@pytest.fixture
def facts(dv):
    cluster = connect(str(dv.kubeconfig), None, dv.name)
    return collecting.collect(cluster, DEFAULT, use_pod=False)


def objects_dvdoctor_creates(dv, facts) -> list[dict]:
    names = facts.names
    out = [
        collecting.bar_job(facts, "inspect", "bar-probe.sh", [], {"VERIFY": "0", "COMPONENTS": ""}),
        collecting.bar_job(facts, "fix", "bar-fix.sh", ["chmod"], {"ALLOW_WORLD": "0"}),
        pvc_from_template(facts, None, None),
        Lock(connect(str(dv.kubeconfig), None, dv.name), "dvdoctor fix")._body(datetime.now(timezone.utc)),
        *schedule.manifests(dv.name, "0 2 * * *", "registry.example/dvdoctor:0.1.0"),
        *schedule.manifests(dv.name, "@hourly", "registry.example/dvdoctor:0.1.0", check_only=True),
    ]
    for target in rbac.TARGETS:
        out += rbac.manifests(dv.name, target, subject(None, None, f"sa-{target}", dv.name))
    return out


def test_the_server_admits_every_object_dvdoctor_creates(dv, facts):
    objects = objects_dvdoctor_creates(dv, facts)
    kinds = {o["kind"] for o in objects}
    assert {"Job", "PersistentVolumeClaim", "Lease", "CronJob", "ServiceAccount", "Role", "RoleBinding",
            "ClusterRole", "ClusterRoleBinding"} <= kinds
    if any(o["metadata"]["name"] == "dv-bar-pvc" for o in objects):
        dv.api.delete("PersistentVolumeClaim", dv.name, "dv-bar-pvc")  # so its create can be judged
        dv.api.wait("dv-bar-pvc to be gone", lambda: dv.api.get("PersistentVolumeClaim", dv.name, "dv-bar-pvc") is None)
    refused = []
    for obj in objects:
        try:
            answer = dry_run(dv, obj)
        except Exception as exc:  # the server's own words
            refused.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc}")
            continue
        assert answer["metadata"]["name"] == obj["metadata"]["name"]
    assert refused == []
    # nothing was stored
    assert dv.api.get("Lease", dv.name, "dvdoctor-lock") is None
    assert dv.api.list("Job", dv.name, "app.kubernetes.io/managed-by=dvdoctor") == []
    assert dv.api.get("PersistentVolumeClaim", dv.name, "dv-bar-pvc") is None
