"""dv-bar-pvc deleted with its volume kept (reclaim Retain): in the lab, the claim's deletion leaves the
volume Released with the backups' files on it; `check` names that volume, `fix` binds it again, and
`list` shows the very backups that were there, which still read back byte for byte."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from dvdoctor.lab.overview import overview


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


def check_json(flow, check_id: str) -> dict:
    code, out, _ = flow.dv("check", "-o", "json", "--only", check_id)
    [result] = json.loads(out)["results"]
    return result


def list_timestamps(flow) -> list[str]:
    code, out, _ = flow.dv("list", "-o", "json")
    assert code == 0, out
    return [r["timestamp"] for r in json.loads(out)["backups"]]


def test_deleted_claim_on_a_retained_volume_is_bound_again_with_its_backups(flow):
    assert flow.backup("--yes")[0] == 0  # two backups now
    before = list_timestamps(flow)
    assert len(before) == 2
    files = digests(flow.bar)
    link = flow.current()
    admin = flow.cluster()
    volume = admin.get("persistentvolumeclaims", "dv-bar-pvc")["spec"]["volumeName"]
    old_uid = admin.get("persistentvolumeclaims", "dv-bar-pvc")["metadata"]["uid"]

    assert admin.delete("persistentvolumeclaims", "dv-bar-pvc")
    pv = admin.get("persistentvolumes", volume)
    assert pv["status"]["phase"] == "Released" and pv["spec"]["claimRef"]["uid"] == old_uid
    assert not flow.bar.exists()
    [kept] = [v for v in overview(flow.lab)["volumes"] if v.get("volume") == volume]  # `lab status` shows it
    assert kept["phase"] == "Released" and kept["bytes"] > 0

    result = check_json(flow, "bar-pvc-missing")
    assert result["status"] == "fail"
    text = json.dumps(result)
    assert f"its volume {volume} was kept (fix binds it again" in text
    assert f"persistentvolume/{volume}: Released, reclaim Retain" in text

    code, out, err = flow.dv("fix", "--issue", "bar-pvc-missing", "--yes")
    assert code == 0, out + err
    assert "verified" in out
    assert f"persistentvolumes/{volume} claimRef: cpd30/dv-bar-pvc (uid {old_uid}" in out  # in words, no dict
    assert "cpd30/dv-bar-pvc, uid and resourceVersion cleared" in out and "{" not in out

    claim = admin.get("persistentvolumeclaims", "dv-bar-pvc")
    pv = admin.get("persistentvolumes", volume)
    assert claim["spec"]["volumeName"] == volume and claim["status"]["phase"] == "Bound"
    assert pv["status"]["phase"] == "Bound" and pv["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
    assert list_timestamps(flow) == before
    assert digests(flow.bar) == files and flow.current() == link
    entries = [e for e in flow.audit_entries() if e["fix"] == "bar-pvc-missing"]
    assert [c["what"] for e in entries for c in e["changes"]] == [f"persistentvolumes/{volume} claimRef",
                                                                  "persistentvolumeclaims/dv-bar-pvc",
                                                                  "persistentvolumeclaims/dv-bar-pvc phase"]
    assert old_uid in entries[0]["changes"][0]["before"]
    assert check_json(flow, "bar-pvc-missing")["status"] == "pass"
    assert flow.dv("fix", "--issue", "bar-pvc-missing", "--yes")[0] == 0  # nothing left to do


def test_without_a_kept_volume_a_new_empty_claim_is_made(flow):
    admin = flow.cluster()
    volume = admin.get("persistentvolumeclaims", "dv-bar-pvc")["spec"]["volumeName"]
    admin.patch("persistentvolumes", volume, {"spec": {"persistentVolumeReclaimPolicy": "Delete"}})
    assert admin.delete("persistentvolumeclaims", "dv-bar-pvc")
    assert admin.get("persistentvolumes", volume) is None

    result = check_json(flow, "bar-pvc-missing")
    assert "no Released volume was bound to" in json.dumps(result)
    code, out, err = flow.dv("fix", "--issue", "bar-pvc-missing", "--yes")
    assert code == 0, out + err
    claim = admin.get("persistentvolumeclaims", "dv-bar-pvc")
    assert claim["status"]["phase"] == "Bound" and claim["spec"]["volumeName"] != volume
    assert list_timestamps(flow) == []


def test_a_backup_never_makes_an_empty_claim_over_a_kept_volume(flow):
    """Before a backup, a deleted claim whose volume was kept stops the gate (a backup would create an
    empty claim and the backups would stay unbound); `backup --fix` binds the volume again first."""
    before = list_timestamps(flow)
    files = digests(flow.bar)
    admin = flow.cluster()
    volume = admin.get("persistentvolumeclaims", "dv-bar-pvc")["spec"]["volumeName"]
    assert admin.delete("persistentvolumeclaims", "dv-bar-pvc")
    snapshot = flow.snapshot()

    code, out, err = flow.backup("--yes")

    assert code != 0, out + err
    assert "bar-pvc-missing" in out and "Preflight failed: nothing was changed" in " ".join(out.split())
    assert flow.snapshot() == snapshot and admin.get("persistentvolumeclaims", "dv-bar-pvc") is None

    code, out, err = flow.backup("--yes", "--fix")

    assert code == 0, out + err
    assert admin.get("persistentvolumeclaims", "dv-bar-pvc")["spec"]["volumeName"] == volume
    after = list_timestamps(flow)
    assert after[:-1] == before and len(after) == len(before) + 1
    kept = digests(flow.bar)
    assert all(kept[path] == digest for path, digest in files.items())  # the old backups, byte for byte


def test_two_kept_volumes_are_never_chosen_for_the_admin(flow):
    """The claim was deleted, made again (a new, empty volume) and deleted again: two Released volumes
    of dv-bar-pvc, the newer one empty. Nothing is bound (the newest is not taken for the one with the
    backups); the check names both; `--volume` binds the chosen one and its backups come back."""
    before = list_timestamps(flow)
    assert before
    admin = flow.cluster()
    claim = admin.get("persistentvolumeclaims", "dv-bar-pvc")
    old = claim["spec"]["volumeName"]
    assert admin.delete("persistentvolumeclaims", "dv-bar-pvc")
    # made again from the first one's spec, without its volume: the provisioner gives it a new, empty one
    again = {"metadata": {"name": "dv-bar-pvc", "labels": claim["metadata"].get("labels") or {}},
             "spec": {k: v for k, v in claim["spec"].items() if k != "volumeName"}}
    admin.create("persistentvolumeclaims", again)
    code, out, err = flow.dv("fix", "--issue", "bar-pvc-missing", "--yes")  # nothing to do: it is bound
    new = admin.get("persistentvolumeclaims", "dv-bar-pvc")["spec"].get("volumeName")
    assert new and new != old, out + err
    admin.patch("persistentvolumes", new, {"spec": {"persistentVolumeReclaimPolicy": "Retain"}})
    assert admin.delete("persistentvolumeclaims", "dv-bar-pvc")
    assert {admin.get("persistentvolumes", v)["status"]["phase"] for v in (old, new)} == {"Released"}
    snapshot = flow.snapshot()

    result = check_json(flow, "bar-pvc-missing")
    assert result["status"] == "fail"
    text = json.dumps(result)
    assert "with its backups" not in text
    [problem] = result["problems"]
    assert old in problem["message"] and new in problem["message"]
    assert f"persistentvolume/{old}: Released" in text and f"persistentvolume/{new}: Released" in text

    code, out, err = flow.dv("fix", "--issue", "bar-pvc-missing", "--yes")
    assert code == 1, out + err
    flat = " ".join(out.split())
    assert old in flat and new in flat and "--volume PV" in flat
    assert admin.get("persistentvolumeclaims", "dv-bar-pvc") is None and flow.snapshot() == snapshot

    code, out, err = flow.dv("fix", "--issue", "bar-pvc-missing", "--yes", "--volume", "no-such-pv")
    assert code == 1 and admin.get("persistentvolumeclaims", "dv-bar-pvc") is None, out + err

    code, out, err = flow.dv("fix", "--issue", "bar-pvc-missing", "--yes", "--volume", old)
    assert code == 0, out + err
    assert admin.get("persistentvolumeclaims", "dv-bar-pvc")["spec"]["volumeName"] == old
    assert list_timestamps(flow) == before
    assert admin.get("persistentvolumes", new)["status"]["phase"] == "Released"  # left alone
