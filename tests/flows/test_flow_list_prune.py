"""`dvdoctor list` and `dvdoctor prune` end to end in the lab, checked against the backup volume itself."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timedelta, timezone

import pytest

from dvdoctor.core.units import timestamp_time

COMBINED = "dv_backup.tar.gz"
COMPONENTS = ("dv_backup_dv_metastore.tar.gz", "dv_backup_dv_engine.tar.gz")


def older_copy(flow, days: int, complete: bool = True) -> str:
    """A backup `days` before the lab's first one: a copy of it (owners kept, as DV's uid wrote it)."""
    first = flow.timestamps()[-1]
    ts = (timestamp_time(first) - timedelta(days=days)).strftime("%Y-%m-%d-%H-%M-%S")
    subprocess.run(["cp", "-a", str(flow.bar / first), str(flow.bar / ts)], check=True)
    if not complete:  # a job that died after its metastore tarball
        for name in (COMBINED, COMPONENTS[1]):
            (flow.bar / ts / name).unlink()
    return ts


def listing(flow) -> list[str]:
    return sorted(f"{p.relative_to(flow.bar)} -> {os.readlink(p)}" if p.is_symlink() else str(p.relative_to(flow.bar))
                  for p in flow.bar.rglob("*"))


def assert_no_dvdoctor_leftovers(flow) -> None:
    """The one-shot inspection (and repair) jobs are gone, with their pods and pod folders."""
    for names in (flow.object_names("jobs"), flow.object_names("pods"), [p.name for p in (flow.lab / "pods").iterdir()]):
        assert not [n for n in names if n.startswith("dvdoctor-")], names


def test_list_matches_the_volume_as_table_and_json(flow):
    older_copy(flow, 2)
    older_copy(flow, 1, complete=False)
    assert flow.backup("--yes")[0] == 0
    expected = []
    now = datetime.now(timezone.utc)
    for ts in flow.timestamps():
        files = {p.name: p.stat().st_size for p in (flow.bar / ts).iterdir() if p.is_file()}
        expected.append({"timestamp": ts, "combined_bytes": files.get(COMBINED, 0),
                         "component_bytes": sum(files.get(n, 0) for n in COMPONENTS),
                         "state": "good" if COMBINED in files else "damaged", "current": ts == flow.current()})

    code, out, _ = flow.dv("list", "-o", "json")

    assert code == 0
    rows = json.loads(out)["backups"]
    assert [{k: r[k] for k in expected[0]} for r in rows] == expected
    assert [r["missing"] for r in rows] == [[], list(COMPONENTS[1:]) + [COMBINED], [], []]
    for r in rows:
        assert r["age_hours"] == pytest.approx((now - timestamp_time(r["timestamp"])).total_seconds() / 3600, abs=0.2)
    assert_no_dvdoctor_leftovers(flow)

    code, out, _ = flow.dv("list")

    assert code == 0
    lines = {r["timestamp"]: next(line for line in out.splitlines() if r["timestamp"] in line) for r in rows}
    for r in rows:
        assert ("→" in lines[r["timestamp"]]) == r["current"]
        assert ("damaged: it has no dv_backup.tar.gz" in lines[r["timestamp"]]) == (r["state"] == "damaged")
        assert ("good" in lines[r["timestamp"]]) == (r["state"] == "good")
    assert f"{len(rows)} backups; → marks the restore point" in out
    assert_no_dvdoctor_leftovers(flow)


def test_prune_keeps_the_newest_complete_and_removes_old_and_incomplete(flow):
    (newest,) = flow.timestamps()
    for days in (3, 2):
        older_copy(flow, days)
    older_copy(flow, 1, complete=False)
    before = listing(flow)

    code, out, _ = flow.dv("prune", "--keep", "1", "--dry-run")
    assert code == 0 and "--dry-run: nothing was changed" in out
    assert listing(flow) == before

    code, out, _ = flow.dv("prune", "--keep", "1")  # no terminal and no --yes: the answer is no
    assert code == 1 and "nothing was changed" in out
    assert listing(flow) == before

    code, out, _ = flow.dv("prune", "--keep", "1", "--yes")
    assert code == 0, out
    assert "verified: 3 of 3 backups removed" in out
    assert flow.timestamps() == [newest] and flow.current() == newest
    assert [e["fix"] for e in flow.audit_entries()] == ["prune"]
    assert_no_dvdoctor_leftovers(flow)


def test_prune_never_removes_the_current_backup_when_it_is_an_older_one(flow):
    (newest,) = flow.timestamps()
    current = older_copy(flow, 3)
    older_copy(flow, 2)
    older_copy(flow, 1, complete=False)
    flow.point_at(current)

    code, out, _ = flow.dv("prune", "--keep", "1", "--yes")

    assert code == 0, out
    assert flow.timestamps() == [current, newest]
    assert flow.current() == current


def test_a_kept_folder_that_is_no_backup_is_named_for_what_it_is(flow):
    """A restore point dated 2099 is no backup DV took, yet it is kept as the restore point: the plan
    said "(None)" (break-it review, L4)."""
    (first,) = flow.timestamps()
    older = older_copy(flow, 1)
    future = "2099-01-01-00-00-00"
    subprocess.run(["cp", "-a", str(flow.bar / first), str(flow.bar / future)], check=True)
    flow.point_at(future)
    code, out, _ = flow.dv("prune", "--keep", "1", "--dry-run")
    assert code == 0, out
    assert f"kept: {first} (good), {future} (not a backup, but the restore point)" in out
    assert f"{older}:" in out and "None" not in out
