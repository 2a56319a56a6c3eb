"""Which DV instance a backup came from: the manifest dvdoctor writes beside each backup it takes, and
`restore` refusing another instance's backup (DV 1.5.0 BAR is same-instance only) or asking about
one whose origin is unverified (the lab's first backup is made as dvcli.sh makes it: no manifest)."""

from __future__ import annotations

import json

MANIFEST = "dvdoctor-manifest.json"
TARBALLS = ("dv_backup.tar.gz", "dv_backup_dv_metastore.tar.gz", "dv_backup_dv_engine.tar.gz")


def engine(flow) -> dict:
    return flow.cluster().get("statefulsets", "dv-engine")


def new_backup(flow) -> str:
    """Take a backup with dvdoctor; its timestamp."""
    before = set(flow.timestamps())
    code, out, err = flow.backup("--yes")
    assert code == 0, out + err
    (ts,) = set(flow.timestamps()) - before
    return ts


def test_a_backup_dvdoctor_takes_records_this_instance(flow) -> None:
    (first,) = flow.timestamps()
    ts = new_backup(flow)
    sts = engine(flow)

    manifest = json.loads((flow.bar / ts / MANIFEST).read_text())

    assert manifest["backup"] == ts
    assert manifest["instance"] == {"namespace": "cpd30", "statefulset": "dv-engine", "uid": sts["metadata"]["uid"],
                                    "image": sts["spec"]["template"]["spec"]["containers"][0]["image"]}
    assert manifest["tarballs"] == {n: (flow.bar / ts / n).stat().st_size for n in TARBALLS}
    assert manifest["dvdoctor_version"] and manifest["written_at"].startswith(ts[:10])
    assert (flow.bar / ts / MANIFEST).stat().st_mode & 0o777 == 0o644
    assert not [p for p in (flow.bar / ts).iterdir() if p.name.startswith(".")]  # the temp file was renamed
    (entry,) = [e for e in flow.audit_entries() if MANIFEST in e["action"]]
    assert entry["changes"][0]["what"] == f"/mnt/PV/bar/{ts}/{MANIFEST}"

    code, out, _ = flow.dv("list", "-o", "json")
    assert code == 0
    rows = {r["timestamp"]: r for r in json.loads(out)["backups"]}
    assert rows[ts]["origin"] == "this instance" and rows[ts]["manifest"] == manifest
    assert rows[first]["origin"] == "unknown" and rows[first]["manifest"] is None


def test_restore_refuses_a_backup_whose_manifest_names_another_instance(flow) -> None:
    ts = new_backup(flow)
    path = flow.bar / ts / MANIFEST
    manifest = json.loads(path.read_text())
    ours = manifest["instance"]["uid"]
    manifest["instance"]["uid"] = "0b5e7c1a-0000-4000-8000-000000000001"  # a reprovisioned DV's
    path.write_text(json.dumps(manifest))
    before, data = flow.snapshot(), flow.data_digest()

    code, out, err = flow.restore("--yes")

    assert code == 2, out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1
    assert f"backup {ts} was taken by another DV instance (StatefulSet dv-engine uid 0b5e7c1a-" in lines[0]
    assert f"not this one (StatefulSet dv-engine uid {ours} in namespace cpd30" in lines[0]
    assert "nothing was changed" in lines[0] and "--accept-other-instance" in lines[0]
    assert flow.snapshot() == before and flow.data_digest() == data

    code, out, _ = flow.dv("list")
    assert next(line for line in out.splitlines() if ts in line).rstrip(" │").endswith("other instance")

    code, out, err = flow.restore("--yes", "--accept-other-instance")
    assert code == 0, out + err
    assert "taken by another DV instance" in out and f"restored {ts}" in out


def test_a_backup_without_a_manifest_needs_the_flag_under_yes(flow) -> None:
    (ts,) = flow.timestamps()
    before = flow.snapshot()

    code, out, err = flow.restore("--yes")

    assert code == 2, out + err
    assert err.strip() == (f"dvdoctor: error: backup {ts}'s origin is unverified: it has no {MANIFEST} (taken by "
                           "dvcli.sh or before dvdoctor); with --yes nobody can confirm it is this DV instance's, so "
                           "nothing was changed. Rerun with --accept-unverified-origin to restore it anyway")
    assert flow.snapshot() == before

    code, out, err = flow.restore("--yes", "--accept-unverified-origin")
    assert code == 0, out + err
    assert "Its origin is unverified" in out and f"restored {ts}" in out


def test_an_unreadable_manifest_is_unverified_not_trusted(flow) -> None:
    ts = new_backup(flow)
    (flow.bar / ts / MANIFEST).write_text('{"instance": ')  # cut short

    code, out, err = flow.restore("--yes")

    assert code == 2, out + err
    assert f"backup {ts}'s origin is unverified: its {MANIFEST} cannot be read (not JSON: " in err
