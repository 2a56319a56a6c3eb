"""A low-space repair is whole or not applied, in the lab: the claim is too small for the next backup
and freeing what is safe cannot make room. With a storage class that allows expansion the plan grows
the claim (first) to the site's size for a new dv-bar-pvc and the next backup fits; without, nothing
changes, the exact command is printed and the exit code says it was not repaired."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from dvdoctor.lab import break_lab

# the lab sets a claim's capacity in whole MiB: the room these tests leave is a fraction of a backup
pytestmark = pytest.mark.mib_backups


def check_status(flow, check_id: str) -> str:
    code, out, _ = flow.dv("check", "-o", "json", "--only", check_id)
    [result] = json.loads(out)["results"]
    return result["status"]


def combined_digest(flow) -> str:
    return hashlib.sha256((flow.bar / flow.current() / "dv_backup.tar.gz").read_bytes()).hexdigest()


def test_an_expandable_claim_is_grown_so_the_next_backup_fits(flow):
    break_lab(flow.lab, "bar-low-space")
    assert check_status(flow, "bar-low-space") == "fail"
    link, combined = flow.current(), combined_digest(flow)

    code, out, err = flow.dv("fix", "--issue", "bar-low-space", "--yes")

    assert code == 0, out + err
    assert "1. grow claim dv-bar-pvc from capacity" in out and "to 30Gi" in out
    claim = flow.cluster().get("persistentvolumeclaims", "dv-bar-pvc")
    assert claim["spec"]["resources"]["requests"]["storage"] == "30Gi"
    assert flow.current() == link and combined_digest(flow) == combined  # the restore point is untouched
    assert check_status(flow, "bar-low-space") == "pass"
    grow = next(e for e in flow.audit_entries() if e["action"].startswith("grow claim"))
    assert grow["changes"][0]["before"].startswith("capacity ")
    assert flow.backup("--yes")[0] == 0  # and the next backup does fit


def test_without_expansion_nothing_changes_and_the_exact_command_is_printed(flow):
    break_lab(flow.lab, "bar-low-space")
    flow.cluster().patch("storageclasses", "ibmc-file-gold-gid", {"allowVolumeExpansion": False})
    before = flow.snapshot()

    code, out, err = flow.dv("fix", "--issue", "bar-low-space", "--yes")

    assert code == 1, out + err
    text = " ".join(out.split())  # (a narrow console may wrap the lines)
    assert "nothing was changed" in text
    command = f"`dvdoctor --lab {flow.lab} fix --issue bar-low-space --size 30Gi`"
    assert re.sub(r"\s", "", command) in re.sub(r"\s", "", out)
    assert flow.snapshot() == before
    assert not [e for e in flow.audit_entries() if e["fix"] == "bar-low-space"]
    assert check_status(flow, "bar-low-space") == "fail"


def test_the_plan_and_the_changes_say_counts_and_sizes_as_they_are(flow):
    """One damaged folder is "1 damaged backup folder"; the claim's capacity goes from its size before to after."""
    break_lab(flow.lab, "bar-low-space,incomplete-backups")
    before = flow.cluster().get("persistentvolumeclaims", "dv-bar-pvc")["status"]["capacity"]["storage"]
    code, out, err = flow.dv("fix", "--issue", "bar-low-space", "--yes")
    assert code == 0, out + err
    assert "delete 1 damaged backup folder, freeing" in out and "1 damaged backup folders" not in out
    assert f"persistentvolumeclaims/dv-bar-pvc capacity: {before} → 30Gi" in out
