"""A backup is trusted only when proven, end to end in the lab, on real tarballs cut the way a full
volume or a dying job cuts them: a whole outer tarball around a cut inner one, a tarball cut short,
a zero-byte one, one that is not gzip. What is asserted is what an administrator would lose: which
backups remain and still read back, where the restore point is, what `list` says, and that a
refused restore or prune changed nothing (DV's replicas, markers, data, the backup volume)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tarfile
from datetime import timedelta

from dvdoctor.core.units import timestamp_time

COMBINED = "dv_backup.tar.gz"
ENGINE = "dv_backup_dv_engine.tar.gz"
METASTORE = "dv_backup_dv_metastore.tar.gz"


def copy_of(flow, days: float) -> str:
    """A copy of the lab's newest backup, taken `days` before it, with its owners."""
    first = flow.timestamps()[-1]
    ts = (timestamp_time(first) - timedelta(days=days)).strftime("%Y-%m-%d-%H-%M-%S")
    os.system(f"cp -a '{flow.bar / first}' '{flow.bar / ts}'")
    assert (flow.bar / ts / COMBINED).is_file()
    return ts


def rebuild_combined(flow, ts: str) -> None:
    """Make TS's combined tarball again from its component files, as DV's job does, keeping its owner."""
    path = flow.bar / ts / COMBINED
    st = path.stat()
    with tarfile.open(path, "w:gz") as tar:
        for name in (METASTORE, ENGINE):
            tar.add(flow.bar / ts / name, arcname=name)
    os.chown(path, st.st_uid, st.st_gid)


def cut_inner(flow, ts: str) -> None:
    """The volume filled while the engine's tarball was written, and the combined one was made anyway."""
    engine = flow.bar / ts / ENGINE
    data = engine.read_bytes()
    engine.write_bytes(data[: len(data) // 2])
    rebuild_combined(flow, ts)
    assert gzip.decompress((flow.bar / ts / COMBINED).read_bytes())  # the outer tarball is whole


def states(flow) -> dict[str, tuple[str, str]]:
    code, out, err = flow.dv("list", "-o", "json")
    assert code == 0, out + err
    return {r["timestamp"]: (r["state"], r["why"]) for r in json.loads(out)["backups"]}


def volume(flow) -> dict[str, str]:
    """Every file and link on the backup volume with its content hash: any change shows."""
    out = {}
    for p in sorted(flow.bar.rglob("*")):
        key = str(p.relative_to(flow.bar))
        out[key] = "-> " + os.readlink(p) if p.is_symlink() else (
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
    return out


def dv_untouched(flow):
    """What a refused command must leave as it was: DV's data, replicas, markers, its jobs."""
    return flow.data_digest(), flow.replicas(), flow.markers, flow.object_names("jobs")


def test_a_cut_inner_tarball_is_damaged_refused_by_restore_and_never_the_restore_point(flow):
    (cut,) = flow.timestamps()
    good = copy_of(flow, 1)
    cut_inner(flow, cut)  # the newest backup, and the restore point: DV's job saw nothing wrong

    got = states(flow)
    assert got[good] == ("good", "read back now, inner tarballs included")
    assert got[cut][0] == "damaged" and got[cut][1].startswith(f"its {ENGINE} does not read back: ")
    code, out, _ = flow.dv("list")
    line = next(x for x in out.splitlines() if cut in x)
    assert "→" in line and "damaged" in line

    before, files = dv_untouched(flow), volume(flow)
    code, out, err = flow.restore("--yes", "--accept-unverified-origin")
    assert code == 2 and len(err.strip().splitlines()) == 1, out + err
    assert f"backup {cut} cannot be restored: it is damaged: its {ENGINE} does not read back" in err
    assert dv_untouched(flow) == before and volume(flow) == files  # refused before DV was touched

    code, out, _ = flow.dv("check")
    assert "the restore point" in out and "is a damaged backup" in out and "incomplete-backups" in out

    code, out, err = flow.dv("fix", "--issue", "broken-backup-symlink", "--yes")
    assert code == 0, out + err
    assert flow.current() == good  # only ever to a good backup

    code, out, err = flow.dv("prune", "--keep", "1", "--yes")
    assert code == 0, out + err
    assert flow.timestamps() == [good] and flow.current() == good
    assert states(flow) == {good: ("good", "read back now, inner tarballs included")}


def test_a_newer_backup_cut_short_never_makes_prune_delete_the_good_ones(flow):
    """The old rule trusted a combined tarball by its presence: a cut one was "the newest complete"."""
    (cut,) = flow.timestamps()
    good, older = copy_of(flow, 1), copy_of(flow, 2)
    flow.point_at(good)
    tarball = flow.bar / cut / COMBINED
    tarball.write_bytes(tarball.read_bytes()[:-4096])  # the volume filled while it was written

    code, out, err = flow.dv("prune", "--keep", "1", "--yes")

    assert code == 0, out + err
    assert flow.timestamps() == [good] and flow.current() == good
    assert states(flow)[good][0] == "good"
    assert f"{cut}: " in out and "damaged" in out and f"{older}: " in out


def test_zero_byte_and_not_gzip_tarballs_are_damaged_with_the_reason(flow):
    (good,) = flow.timestamps()
    empty, zipped = copy_of(flow, 2), copy_of(flow, 1)
    (flow.bar / empty / COMBINED).write_bytes(b"")
    (flow.bar / zipped / COMBINED).write_bytes(b"PK\x03\x04" + os.urandom(2000))

    got = states(flow)

    assert got[empty] == ("damaged", f"its {COMBINED} is empty (0 bytes)")
    assert got[zipped] == ("damaged", "it is not gzip data (it starts with 504b)")
    assert got[good][0] == "good"
    for ts in (empty, zipped):
        before = dv_untouched(flow)
        code, _, err = flow.restore("--yes", "--from", ts, "--accept-unverified-origin")
        assert code == 2 and f"backup {ts} cannot be restored: it is damaged" in err
        assert dv_untouched(flow) == before


def test_prune_and_the_repairs_refuse_when_no_good_backup_would_remain(flow):
    (first,) = flow.timestamps()
    cut_inner(flow, first)  # the restore point itself is damaged
    empty = copy_of(flow, 1)
    (flow.bar / empty / COMBINED).write_bytes(b"")
    files = volume(flow)

    code, out, err = flow.dv("prune", "--keep", "1", "--yes")
    assert code == 2 and "refusing to delete: no backup on dv-bar-pvc would be left that is proven good" in err
    assert volume(flow) == files

    code, out, err = flow.dv("fix", "--issue", "incomplete-backups", "--yes")
    assert code == 1 and "refusing to delete" in out
    assert volume(flow) == files

    code, out, err = flow.dv("fix", "--issue", "broken-backup-symlink", "--yes")
    assert code == 1 and "No backup proven good exists to point at" in out
    assert volume(flow) == files


def test_a_backup_dvdoctor_took_is_trusted_by_its_record_until_its_tarball_changes(flow):
    code, out, err = flow.backup("--yes")
    assert code == 0, out + err
    assert "read back (inner tarballs included)" in out
    new = flow.timestamps()[-1]
    record = json.loads((flow.bar / new / "dvdoctor-manifest.json").read_text())["read_back"]
    tarball = flow.bar / new / COMBINED
    assert record["result"] == "good"
    assert record["sha256"] == hashlib.sha256(tarball.read_bytes()).hexdigest()
    assert record["stamp"] == f"{tarball.stat().st_size}:{int(tarball.stat().st_mtime)}"

    got = states(flow)
    assert got[new][0] == "good" and got[new][1].startswith("read back when dvdoctor took it")

    cut_inner(flow, new)  # changed after it was recorded: the record no longer counts, it is read again
    assert states(flow)[new][0] == "damaged"


def unreadable_by_the_bar_uid(path) -> None:
    """The runbook's Errno 13: a root-owned file the BAR job's uid may not read (the lab's pods run as
    that uid when the tests run as root; otherwise as this user, who then loses read permission)."""
    if os.geteuid() == 0:
        os.chown(path, 0, 0)
        path.chmod(0o600)
    else:
        path.chmod(0o000)


def test_a_backup_the_bar_uid_cannot_read_is_unverified_and_never_pruned_for_it(flow):
    """A permission problem says nothing of a backup's bytes: it was called damaged (its two first bytes
    could not be read) and `prune --keep 5` deleted an intact backup."""
    code, out, err = flow.backup("--yes")
    assert code == 0, out + err
    old, new = flow.timestamps()
    tarball = flow.bar / old / COMBINED
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    unreadable_by_the_bar_uid(tarball)
    assert gzip.decompress(tarball.read_bytes())  # intact

    got = states(flow)
    assert got[old][0] == "unverified" and got[old][1].startswith("not readable by uid "), got[old]
    assert got[new][0] == "good"
    code, out, err = flow.dv("check", "--only", "backup-unreadable,incomplete-backups", "-o", "json")
    results = {r["id"]: r for r in json.loads(out)["results"]}
    assert results["incomplete-backups"]["status"] == "pass"  # not damaged
    assert results["backup-unreadable"]["status"] == "warn", results["backup-unreadable"]
    assert f"backup {old} cannot be read by uid" in json.dumps(results["backup-unreadable"])

    for keep in ("5", "1"):
        code, out, err = flow.dv("prune", "--keep", keep, "--yes")
        assert code == 0, out + err
        assert flow.timestamps() == [old, new]
        assert hashlib.sha256(tarball.read_bytes()).hexdigest() == digest


def test_bit_rot_that_keeps_size_and_mtime_is_read_back_by_prune_and_verify(flow):
    """A recorded read-back proves the file as it was: bit rot keeps its size and mtime. `prune --keep 1`
    kept the rotten recorded backup as "the newest good" and deleted the only one that reads back."""
    code, out, err = flow.backup("--yes")
    assert code == 0, out + err
    older, new = flow.timestamps()
    assert flow.current() == new
    tarball = flow.bar / new / COMBINED
    st = tarball.stat()
    with open(tarball, "r+b") as f:  # in place: same size
        f.seek(st.st_size // 2)
        f.write(os.urandom(4096))
    os.utime(tarball, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime
    older_digest = hashlib.sha256((flow.bar / older / COMBINED).read_bytes()).hexdigest()

    code, out, err = flow.dv("prune", "--keep", "1", "--yes")

    assert code == 0, out + err
    assert flow.timestamps() == [older, new]  # the rotten one is the restore point: kept, never relied on
    assert hashlib.sha256((flow.bar / older / COMBINED).read_bytes()).hexdigest() == older_digest

    code, out, err = flow.dv("list", "--verify", "-o", "json")
    assert code in (0, 1), out + err
    got = {r["timestamp"]: (r["state"], r["why"]) for r in json.loads(out)["backups"]}
    assert got[new][0] == "damaged" and got[new][1].startswith("reading it:"), got[new]
    assert got[older] == ("good", "read back now, inner tarballs included")


def test_a_new_backup_found_damaged_does_not_stay_the_restore_point(slow_flow):
    """DV's job moves the restore point to its new backup last, whole or not. When the read-back after
    the job finds the new backup damaged (here its metastore tarball was cut while the job held
    half-way, so the combined tarball wraps a cut one), the restore point goes back to the good
    backup it named before, through the audited relink, and the output says so (break-it review:
    it stayed on the damaged one, unsaid)."""
    import time

    from dvdoctor.flows import checkpoints

    flow = slow_flow
    (old,) = flow.timestamps()

    def cut_while_held():
        deadline = time.monotonic() + 30
        while not flow.holding("dv-backup-job") and time.monotonic() < deadline:
            time.sleep(0.05)
        (new,) = [t for t in flow.timestamps() if t != old]
        os.truncate(flow.bar / new / METASTORE, 1000)
        flow.end_hold("dv-backup-job")

    with checkpoints.at("job-running", cut_while_held):
        code, out, _ = flow.backup("--yes")

    assert code == 1, out
    (new,) = [t for t in flow.timestamps() if t != old]
    assert f"postflight: backup {new} is damaged" in out
    assert f"the restore point is back on the good backup {old}: {COMBINED} -> {old}/{COMBINED}" in out
    assert os.readlink(flow.bar / COMBINED).endswith(f"/{old}/{COMBINED}")
    assert (flow.bar / new).is_dir()  # kept for a look; fix --issue incomplete-backups removes it
    assert any("back at" in json.dumps(e) for e in flow.audit_entries()), flow.audit_entries()


def test_fix_to_names_a_good_backup_or_is_refused_even_when_the_link_needs_no_repair(flow):
    """Break-it review (low): `fix --issue broken-backup-symlink --to 2099-01-01-00-00-00` printed
    "nothing to do", exit 0, when the link was fine: a --to that names no good backup is bad input
    whether or not the repair runs, and --to given to another fix is too."""
    code, out, err = flow.dv("fix", "--issue", "broken-backup-symlink", "--to", "2099-01-01-00-00-00", "--dry-run")
    assert code == 2 and "--to 2099-01-01-00-00-00: no backup of that name" in err, out + err
    code, out, err = flow.dv("fix", "--issue", "stale-bar-marker", "--to", flow.current(), "--dry-run")
    assert code == 2 and "--to is for --issue broken-backup-symlink" in err, out + err
    code, out, err = flow.dv("fix", "--issue", "broken-backup-symlink", "--to", flow.current(), "--dry-run")
    assert code == 0 and "note:" not in out, out + err  # a good backup: accepted, and the link needs nothing
    # another good backup while the restore point is healthy: nothing to repair, and it says where to go
    old = flow.current()
    assert flow.backup("--yes")[0] == 0
    code, out, err = flow.dv("fix", "--issue", "broken-backup-symlink", "--to", old, "--yes")
    flat = " ".join(out.split())
    assert code == 0 and f"the restore point already names a good backup, {flow.current()}" in flat, out + err
    assert f"To restore DV from {old}: dvdoctor restore --from {old}" in flat
    assert flow.current() != old
