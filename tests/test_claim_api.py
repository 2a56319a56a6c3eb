"""dv-bar-pvc through the real client against tests/fakeapi.py playing the volume binder and resizer.

Deleted while its volume was kept (reclaim Retain, now Released, every backup on it): the check names
the volume, the repair binds it again, and only without a kept volume is an empty claim made. Grown
by the low-space repair: nothing after the growth runs until the room is there.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import pytest

import builders as b
from dvdoctor.repair.audit import AuditLog
from dvdoctor.cluster.kube import connect
from dvdoctor.facts.collect import collect
from dvdoctor.facts.model import Facts
from dvdoctor.repair.fixer import FixOptions
from dvdoctor.repair.plan import ActionFailed, Runner, execute
from dvdoctor.verdicts.registry import run_checks
from fakeapi import FakeApi
from namespaces import binds_volumes

OLD_UID = "5d0c9b5e-old-claim"


def deleted_with_kept_volume() -> dict:
    """Healthy facts, then dv-bar-pvc deleted: its Retain volume is Released, claimRef still on the old uid."""
    data = b.healthy()
    b.remove(data, "persistentvolumeclaims", "dv-bar-pvc")
    pv = b.find(data, "persistentvolumes", "pvc-bar-0472")
    pv["metadata"]["creationTimestamp"] = "2021-01-10T09:00:00Z"
    pv["spec"]["claimRef"].update(uid=OLD_UID, resourceVersion="4711", kind="PersistentVolumeClaim")
    pv["spec"]["accessModes"] = ["ReadWriteMany"]
    pv["status"] = {"phase": "Released"}
    data.pop("bar_volume", None)
    data.setdefault("skipped", {})["bar_volume"] = "claim dv-bar-pvc is missing"
    return data


def older_kept(data: dict) -> None:
    old = copy.deepcopy(b.find(data, "persistentvolumes", "pvc-bar-0472"))
    old["metadata"] = {"name": "pvc-bar-0001", "creationTimestamp": "2020-06-01T00:00:00Z"}
    data["objects"]["persistentvolumes"].append(old)


pytestmark = pytest.mark.fake_api(holds=binds_volumes)


def test_check_names_every_kept_volume_newest_first_and_chooses_none():
    data = deleted_with_kept_volume()
    older_kept(data)
    result = b.run_one("bar-pvc-missing", data)
    assert result.status == "fail"
    text = b.evidence(result)
    assert "2 volumes of deleted dv-bar-pvc claims were kept (pvc-bar-0472, pvc-bar-0001)" in text
    assert "with its backups" not in text
    assert "persistentvolume/pvc-bar-0472: Released, reclaim Retain, 60Gi" in text
    assert "persistentvolume/pvc-bar-0001: Released" in text


def test_a_released_volume_of_another_namespace_or_claim_is_not_taken():
    data = deleted_with_kept_volume()
    b.find(data, "persistentvolumes", "pvc-bar-0472")["spec"]["claimRef"]["namespace"] = "other"
    result = b.run_one("bar-pvc-missing", data)
    assert "was kept" not in b.evidence(result)
    plan = b.fix_plan("bar-pvc-missing", Facts(data), FixOptions())
    [create] = plan.actions
    assert "volumeName" not in create.body["spec"]


def test_rebind_through_the_kubernetes_client(api: FakeApi, tmp_path: Path):
    data = deleted_with_kept_volume()
    older_kept(data)
    api.load(data)
    api.bind_after = 0.5  # the claim is Pending when created; the plan waits for the binder
    cluster = connect(str(api.kubeconfig(tmp_path / "config", namespace=b.NS)), None, None)
    cluster.retry_backoff = 0.01
    facts = Facts(copy.deepcopy(data))
    unchosen = b.fix_plan("bar-pvc-missing", facts, FixOptions(size="90Gi"))
    assert not unchosen.actions and any("pvc-bar-0001" in step for step in unchosen.manual)
    plan = b.fix_plan("bar-pvc-missing", facts, FixOptions(size="90Gi", volume="pvc-bar-0472"))

    changes = execute(plan, Runner(cluster, facts, AuditLog(tmp_path / "audit.jsonl")))

    [patch] = api.requests_to("PATCH", "/persistentvolumes/pvc-bar-0472$")
    assert patch.headers["content-type"] == "application/merge-patch+json"
    assert patch.json()["spec"] == {"claimRef": {"uid": None, "resourceVersion": None}}
    [post] = api.requests_to("POST", f"/namespaces/{b.NS}/persistentvolumeclaims$")
    spec = post.json()["spec"]
    assert spec["volumeName"] == "pvc-bar-0472"
    assert spec["storageClassName"] == "ibmc-file-gold-gid"
    assert spec["resources"]["requests"]["storage"] == "60Gi"  # the volume's size, not --size
    assert spec["accessModes"] == ["ReadWriteMany"]
    claim = api.stored("persistentvolumeclaims", "dv-bar-pvc")
    pv = api.stored("persistentvolumes", "pvc-bar-0472", None)
    assert claim["status"]["phase"] == "Bound"
    assert pv["status"]["phase"] == "Bound" and pv["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
    assert api.stored("persistentvolumes", "pvc-bar-0001", None)["status"]["phase"] == "Released"  # not chosen: untouched
    assert OLD_UID in changes[0].before  # the audit log holds the old claimRef: it can be undone
    assert (changes[0].what, changes[0].before, changes[0].after) == (  # in words, not a dict
        "persistentvolumes/pvc-bar-0472 claimRef", f"{b.NS}/dv-bar-pvc (uid {OLD_UID}, resourceVersion 4711)",
        f"{b.NS}/dv-bar-pvc, uid and resourceVersion cleared")
    assert any("do not apply" in n for n in plan.notes)

    after = collect(cluster, use_pod=False)
    [result] = run_checks(after, only=("bar-pvc-missing",))
    assert result.status == "pass"


def test_a_released_volume_still_holding_the_old_uid_is_not_bound(api: FakeApi, tmp_path: Path):
    """The binder refuses a volume whose claimRef still names the deleted claim: that is why the uid goes first."""
    data = deleted_with_kept_volume()
    api.load(data)
    cluster = connect(str(api.kubeconfig(tmp_path / "config", namespace=b.NS)), None, None)
    facts = Facts(copy.deepcopy(data))
    plan = b.fix_plan("bar-pvc-missing", facts, FixOptions())
    claim_only, wait = plan.actions[1], plan.actions[2]
    plan.actions = [claim_only, replace(wait, timeout=1.0)]  # the claim alone
    with pytest.raises(ActionFailed, match="claim dv-bar-pvc is Pending, not Bound, after 1 s"):
        execute(plan, Runner(cluster, facts, AuditLog(tmp_path / "audit.jsonl")))
    assert api.stored("persistentvolumeclaims", "dv-bar-pvc")["status"]["phase"] == "Pending"


def test_without_a_kept_volume_an_empty_claim_is_created():
    data = deleted_with_kept_volume()
    b.find(data, "persistentvolumes", "pvc-bar-0472")["status"]["phase"] = "Failed"  # reclaim Delete failed
    plan = b.fix_plan("bar-pvc-missing", Facts(data), FixOptions(size="60Gi"))
    [create] = plan.actions
    assert create.body["spec"]["resources"]["requests"]["storage"] == "60Gi"
    assert "volumeName" not in create.body["spec"]


def test_without_rights_to_list_volumes_the_plan_says_so():
    data = deleted_with_kept_volume()
    del data["objects"]["persistentvolumes"]
    data["errors"] = [{"what": "list persistentvolumes", "error": "forbidden: cannot list persistentvolumes"}]
    result = b.run_one("bar-pvc-missing", data)
    assert "a kept volume holding the backups cannot be ruled out" in b.evidence(result)
    plan = b.fix_plan("bar-pvc-missing", Facts(data), FixOptions())
    assert any("persistentvolumes could not be read" in n for n in plan.notes)


# -- growing the claim (bar-low-space): nothing after the growth runs until the room is there ----------


def test_a_growth_the_driver_never_makes_stops_the_plan_before_it_frees_anything(api: FakeApi, tmp_path: Path):
    from dvdoctor.repair.plan import AwaitGrown, Delete, Patch, Plan

    api.resize_volumes = False
    api.put("persistentvolumeclaims", b.pvc("dv-bar-pvc", "16Gi", "pvc-bar-0472"))
    api.put("jobs", {"metadata": {"name": "stands-for-a-removal"}})
    cluster = connect(str(api.kubeconfig(tmp_path / "config", namespace=b.NS)), None, None)
    plan = Plan("bar-low-space", [
        Patch("persistentvolumeclaims", "dv-bar-pvc", {"spec": {"resources": {"requests": {"storage": "30Gi"}}}}, "grow"),
        AwaitGrown("dv-bar-pvc", "30Gi", timeout=1.0),
        Delete("jobs", "stands-for-a-removal", "what the growth made room for"),
    ])
    facts = Facts(b.healthy())
    with pytest.raises(ActionFailed, match="still has 16Gi after 1 s: its storage driver has not grown it to 30Gi"):
        execute(plan, Runner(cluster, facts, AuditLog(tmp_path / "audit.jsonl")))
    assert api.stored("jobs", "stands-for-a-removal") is not None  # nothing after the growth ran

    claim = api.stored("persistentvolumeclaims", "dv-bar-pvc")  # grown, its file system waiting for a pod
    claim["status"]["conditions"] = [{"type": "FileSystemResizePending", "status": "True"}]
    api.put("persistentvolumeclaims", claim, event="MODIFIED")
    execute(Plan("bar-low-space", plan.actions[1:]), Runner(cluster, facts, AuditLog(tmp_path / "audit.jsonl")))
    assert api.stored("jobs", "stands-for-a-removal") is None
