"""A backup is trusted only when proven: bar-probe.sh reads real tarballs back with bash (the
combined one and each component tarball inside it, in one streamed pass), and dvdoctor/facts/trust.py
judges what it printed. Every case here is real files on disk, cut and corrupted the way a full
volume or a killed job leaves them."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

import builders as b
from dvdoctor.facts import probe
from dvdoctor.facts.backups import backups
from dvdoctor.facts.model import Facts, validate
from dvdoctor.core.names import DEFAULT
from dvdoctor.facts.trust import DAMAGED, GOOD, IN_PROGRESS, UNVERIFIED, Verdict, judge, record, survey

COMPONENTS = ("dv_backup_dv_metastore.tar.gz", "dv_backup_dv_engine.tar.gz")
OLDER = "2021-01-21-19-27-31"


def _info(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size, link
    return info


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]], form: int = tarfile.DEFAULT_FORMAT) -> bytes:
    """An uncompressed tar of these members (a member's data, or None for one without)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=form) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _tar_gz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    return gzip.compress(_tar(members))


def _files(folder: Path, names: tuple[str, ...]) -> list[tuple[tarfile.TarInfo, bytes]]:
    """Members for files of a folder, under their names."""
    return [(_info(n, size=(folder / n).stat().st_size), (folder / n).read_bytes()) for n in names]


def component(path: Path, kib: int = 256) -> None:
    """A real component tarball: a gzipped tar of random data (so gzip cannot shrink it)."""
    data = os.urandom(kib * 1024)
    path.write_bytes(_tar_gz([(_info("versioned/data.bin", size=len(data)), data)]))


def backup(bar: Path, ts: str = b.TS, members: tuple[str, ...] = COMPONENTS, cut_inner: str | None = None) -> Path:
    """A backup folder as DV's job writes it; `cut_inner`: that component is cut in half *before* the
    combined tarball is made, as when the volume filled while the engine's tarball was written."""
    folder = bar / ts
    folder.mkdir(mode=0o755)
    for name in COMPONENTS:
        component(folder / name)
    if cut_inner:
        data = (folder / cut_inner).read_bytes()
        (folder / cut_inner).write_bytes(data[: len(data) // 2])
    with tarfile.open(folder / "dv_backup.tar.gz", "w:gz") as tar:
        for name in members:
            tar.add(folder / name, arcname=name)
    return folder / "dv_backup.tar.gz"


def point_at(bar: Path, ts: str) -> None:
    os.symlink(f"/mnt/PV/bar/{ts}/dv_backup.tar.gz", bar / "dv_backup.tar.gz")


def facts_of(bar_volume: dict, jobs: list[dict] | None = None, pods: list[dict] | None = None) -> Facts:
    data = b.healthy()
    data["collected_at"] = "2030-01-01T00:00:00Z"  # the folders below are dated 2021
    data["bar_volume"] = bar_volume
    if jobs is not None:
        data["objects"]["jobs"] += jobs
    data["objects"]["pods"] += pods or []
    validate(data)
    return Facts(data)


def verdict(root: Path, ts: str = b.TS, verify=True):
    s = survey(facts_of(b.run_bar_probe(root, verify=verify)))
    return s.verdicts[ts]


def test_a_whole_backup_reads_back_with_its_sha256(root):
    tarball = backup(b.bar_of(root))
    v = verdict(root)
    assert (v.state, v.fresh) == (GOOD, True)
    assert v.sha256 == hashlib.sha256(tarball.read_bytes()).hexdigest()


def test_a_combined_tarball_cut_short_is_damaged(root):
    tarball = backup(b.bar_of(root))
    data = tarball.read_bytes()
    tarball.write_bytes(data[: len(data) // 2])  # a job killed while writing it
    v = verdict(root)
    assert v.state == DAMAGED and v.why.startswith("reading it: ") and "unexpected end of file" in v.why


def test_a_whole_outer_tarball_with_a_cut_inner_one_is_damaged(root):
    """gzip -t and a tar listing of the outer tarball both pass here: only the inner read-back shows it."""
    tarball = backup(b.bar_of(root), cut_inner="dv_backup_dv_engine.tar.gz")
    assert gzip.decompress(tarball.read_bytes())  # the outer one is whole
    v = verdict(root)
    assert v.state == DAMAGED
    assert v.why.startswith("its dv_backup_dv_engine.tar.gz does not read back: ")


def test_an_outer_tarball_without_a_component_is_damaged(root):
    backup(b.bar_of(root), members=COMPONENTS[:1])
    assert verdict(root).why == "it holds no dv_backup_dv_engine.tar.gz"


@pytest.mark.parametrize("content, why", [
    (b"", "its dv_backup.tar.gz is empty (0 bytes)"),
    (b"PK\x03\x04 a zip, not gzip", "it is not gzip data (it starts with 504b)"),
])
def test_empty_or_not_gzip_is_damaged_even_without_a_read_back(root, content, why):
    tarball = backup(b.bar_of(root))
    tarball.write_bytes(content)
    for verify in (True, False):  # cheap enough to tell on every inspection
        assert (verdict(root, verify=verify).state, verdict(root, verify=verify).why) == (DAMAGED, why), verify


def test_a_gzip_of_something_that_is_not_tar_is_damaged(root):
    folder = b.bar_of(root) / b.TS
    folder.mkdir(mode=0o755)
    (folder / "dv_backup.tar.gz").write_bytes(gzip.compress(b"not a tar archive\n" * 100))
    v = verdict(root)
    assert v.state == DAMAGED and v.why.startswith("reading it: ")


def test_a_recorded_read_back_is_trusted_until_the_file_changes(root):
    """dvdoctor records the read-back of a backup it took; later runs trust it while size and mtime match."""
    bar = b.bar_of(root)
    tarball = backup(bar)
    first = b.run_bar_probe(root, verify=probe.ReadBack(also=("@newest",)))
    s = survey(facts_of(first))
    item, v = s.backups[0], s.verdicts[b.TS]
    manifest = {"schema": "dvdoctor/backup-manifest/v1", "read_back": record(item, v, DEFAULT.names, s.backups[0].time)}
    (bar / b.TS / "dvdoctor-manifest.json").write_text(json.dumps(manifest, sort_keys=True) + "\n")

    again = b.run_bar_probe(root, verify=probe.REPORT)
    assert again["read_back"][b.TS]["state"] == "recorded"  # not read: the record proves it
    s = survey(facts_of(again))
    assert s.verdicts[b.TS].state == GOOD and not s.verdicts[b.TS].fresh
    assert s.verdicts[b.TS].sha256 == hashlib.sha256(tarball.read_bytes()).hexdigest()

    data = bytearray(tarball.read_bytes())  # the same size, other bytes, a new mtime: read it again
    data[len(data) // 2] ^= 0xFF
    tarball.write_bytes(bytes(data))
    os.utime(tarball, (1_700_000_000, 1_700_000_000))
    assert verdict(root, verify=probe.ReadBack(mode="recorded")).state == UNVERIFIED
    assert verdict(root, verify=probe.REPORT).state == DAMAGED


def test_the_budget_reads_the_restore_point_first_and_leaves_the_rest_unverified(root):
    bar = b.bar_of(root)
    backup(bar, OLDER)
    backup(bar, b.TS)
    point_at(bar, OLDER)
    bar_volume = b.run_bar_probe(root, verify=probe.ReadBack(budget=1))
    s = survey(facts_of(bar_volume))
    assert s.verdicts[OLDER].state == GOOD  # the restore point, read first
    assert s.verdicts[b.TS].state == UNVERIFIED
    assert "over this run's read-back budget" in s.verdicts[b.TS].why


def test_the_folder_a_backup_job_writes_is_in_progress_and_not_read(root):
    bar = b.bar_of(root)
    backup(bar, OLDER)
    tarball = backup(bar, b.TS)
    tarball.write_bytes(tarball.read_bytes()[:1000])  # still being written
    bar_volume = b.run_bar_probe(root, verify=True, skip="@since:2021-01-22-19-26-00")
    assert bar_volume["read_back"][b.TS]["state"] == "unread"
    running = b.job("dv-backup-job", state="active")
    running["status"]["startTime"] = "2021-01-22T19:27:00Z"
    s = survey(facts_of(bar_volume, jobs=[running]))
    assert (s.writing, s.state(b.TS), s.state(OLDER)) == ({b.TS}, IN_PROGRESS, GOOD)


def test_the_folder_a_backup_pod_writes_after_its_job_was_deleted_is_in_progress_too(root):
    """Break-it review (low): with the Job object deleted and its pod's tar at work, the folder it
    writes was judged damaged (cut short), and the newest backup looked lost."""
    bar = b.bar_of(root)
    backup(bar, OLDER)
    tarball = backup(bar, b.TS)
    tarball.write_bytes(tarball.read_bytes()[:1000])  # still being written
    pod = b.job_pod("dv-backup-job", suffix="t4r00", phase="Running")  # started 2021-01-22T19:27:00Z
    s = survey(facts_of(b.run_bar_probe(root, verify=True, skip="@since:2021-01-22-19-26-00"), pods=[pod]))
    assert (s.writing, s.state(b.TS), s.state(OLDER)) == ({b.TS}, IN_PROGRESS, GOOD)
    ended = b.job_pod("dv-backup-job", suffix="t4r00", phase="Failed")  # the same pod, ended: no longer written
    s = survey(facts_of(b.run_bar_probe(root, verify=True), pods=[ended]))
    assert s.writing == set() and s.state(b.TS) == DAMAGED


def test_future_and_impossible_timestamps_are_never_backups(root):
    bar = b.bar_of(root)
    backup(bar, OLDER)
    for ts in ("2099-01-01-00-00-00", "2021-13-01-00-00-00", "2021-02-30-00-00-00"):
        backup(bar, ts)
    s = survey(facts_of(b.run_bar_probe(root, verify=True)))
    assert [x.timestamp for x in s.backups] == [OLDER]
    assert s.newest_good().timestamp == OLDER
    assert sorted(o.name for o in s.odd) == ["2021-02-30-00-00-00", "2021-13-01-00-00-00", "2099-01-01-00-00-00"]


def test_judge_without_a_combined_tarball_is_damaged():
    from dvdoctor.facts.backups import Backup

    v = judge(Backup(b.TS, {"dv_backup_dv_metastore.tar.gz": 10}), DEFAULT.names)
    assert v.state == DAMAGED and "has no dv_backup.tar.gz" in v.why


def test_backups_keeps_only_valid_timestamp_folders(root):
    bar = b.bar_of(root)
    backup(bar, OLDER)
    (bar / "２０２１-01-22-19-27-31").mkdir()  # full-width digits: \d would take them
    items = backups(b.run_bar_probe(root), DEFAULT.names)
    assert [x.timestamp for x in items] == [OLDER]


def _with_component(bar: Path, name: str, content: bytes, ts: str = b.TS) -> None:
    """The backup at `ts`, its component `name` replaced by `content` and the combined tarball made again."""
    folder = bar / ts
    (folder / name).write_bytes(content)
    with tarfile.open(folder / "dv_backup.tar.gz", "w:gz") as tar:
        for member in COMPONENTS:
            tar.add(folder / member, arcname=member)


@pytest.mark.parametrize("content", [
    gzip.compress(b""),  # an empty output gzipped: `tar -tz` calls it an empty archive
    gzip.compress(b"tar: cannot open: No space left on device\n"),  # a short message, not a tar
    gzip.compress(b"\0" * 511),
    gzip.compress(b"\0" * 10240),  # a valid tar of no file (break-it, session 14: it read back good)
], ids=["empty", "short-text", "511-zeros", "empty-archive"])
def test_a_component_that_unpacks_to_no_tar_is_damaged(root, content):
    """Break-it, session 13: a probe that listed components with `tar -tzf -` called these good, and
    prune then removed the real good backup beside them."""
    backup(b.bar_of(root))
    _with_component(b.bar_of(root), "dv_backup_dv_metastore.tar.gz", content)
    v = verdict(root)
    assert v.state == DAMAGED and v.why.startswith("its dv_backup_dv_metastore.tar.gz does not read back: ")


def test_a_component_whose_gzip_is_cut_after_the_tars_end_is_damaged(root):
    """The tar ends (a large blocking factor pads it) before its gzip stream does: gzip's CRC and
    length at the very end are read too (`tar -tz` stopped at the end-of-archive and never saw them)."""
    backup(b.bar_of(root))
    padded = _tar([(_info("versioned/a", size=10), b"0123456789")], tarfile.GNU_FORMAT) + b"\0" * (256 * 512)
    _with_component(b.bar_of(root), "dv_backup_dv_engine.tar.gz", gzip.compress(padded)[:-6])
    v = verdict(root)
    assert v.state == DAMAGED


@pytest.mark.parametrize("spoil", ["crc", "cut"])
def test_a_combined_tarball_whose_gzip_fails_after_the_tars_end_is_damaged(root, spoil):
    """Break-it, session 14: `tar -xz` stopped at the end-of-archive, and its gzip, killed by SIGPIPE
    before reaching its CRC when more than a pipe's worth followed, was no error to tar: a combined
    tarball with a bad CRC (or cut short after the tar's end) read back good, and prune planned to
    remove the good backup beside it."""
    tarball = backup(b.bar_of(root))
    packed = bytearray(gzip.compress(_tar(_files(tarball.parent, COMPONENTS)) + b"\0" * 3_000_000))
    if spoil == "crc":
        packed[-8] ^= 0xFF  # gzip's CRC-32 of the data, in its last 8 bytes
    else:
        del packed[-6:]
    tarball.write_bytes(bytes(packed))
    v = verdict(root)
    assert v.state == DAMAGED and v.why.startswith("reading it: "), (v.state, v.why)
    assert ("crc error" if spoil == "crc" else "unexpected end of file") in v.why


@pytest.mark.parametrize("members", [
    [(_info("versioned", tarfile.DIRTYPE), None)],
    [(_info("versioned", tarfile.DIRTYPE), None), (_info("versioned/dump.sql"), b"")],
    [(_info("versioned/dump.sql", tarfile.SYMTYPE, link="/nowhere"), None)],
], ids=["a-folder-only", "an-empty-file", "a-link-only"])
def test_a_component_with_no_file_of_data_is_damaged(root, members):
    """Break-it, session 14: a dump that wrote nothing leaves a component that lists a folder, a link or
    an empty file; it read back good (it lists something), and prune planned to remove the good one."""
    backup(b.bar_of(root))
    _with_component(b.bar_of(root), "dv_backup_dv_metastore.tar.gz", _tar_gz(members))
    v = verdict(root)
    assert v.state == DAMAGED and "no file with data in it" in v.why, (v.state, v.why)


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.DIRTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE])
def test_a_component_followed_by_a_member_of_its_name_that_is_not_a_file_is_damaged(root, kind):
    """Break-it, session 14: tar hands only regular files to the check, and extracting keeps the last
    member of a name: a good component followed by a link (or a folder, a fifo) of its name read back
    good, and the restore would have found no tarball there."""
    folder = backup(b.bar_of(root)).parent
    name = "dv_backup_dv_metastore.tar.gz"
    odd = (_info(name, kind, link="/nonexistent" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""), None)
    members = [*_files(folder, (name,)), odd, *_files(folder, (COMPONENTS[1],))]
    (folder / "dv_backup.tar.gz").write_bytes(_tar_gz(members))
    v = verdict(root)
    assert v.state == DAMAGED and v.why.startswith(f"its {name} is also a member that is not a file"), (v.state, v.why)


@pytest.mark.parametrize("make, said", [
    (lambda p: os.mkfifo(p), "is not a regular file (a fifo or a device)"),
    (lambda p: p.mkdir(), "is a folder"),
    (lambda p: p.symlink_to("/dev/zero"), "is a symbolic link"),
], ids=["fifo", "folder", "link"])
def test_something_else_in_place_of_the_combined_tarball_is_named_for_what_it_is(root, make, said):
    """Break-it round 2, session 14: a fifo, a folder or a link where DV's job writes dv_backup.tar.gz
    was called "no dv_backup.tar.gz (its job did not finish)": the right verdict, the wrong story. The
    probe neither reads it (no hang on a fifo) nor calls it good."""
    tarball = backup(b.bar_of(root))
    tarball.unlink()
    make(tarball)
    v = verdict(root)
    assert v.state == DAMAGED and v.why == f"its dv_backup.tar.gz {said}, not the file DV's job writes", v.why


#: A command line that runs what follows it with /bin/sh being bash (in a mount namespace of its own),
#: as on DV's RHEL-based BAR image; here /bin/sh is dash.
SH_IS_BASH = b.own_mounts('mount --bind "$(command -v bash)" /bin/sh')


@pytest.mark.skipif(not (b.IS_ROOT and b.HAS_UNSHARE),
                    reason="making /bin/sh bash in a mount namespace of its own needs root and unshare")
def test_the_member_check_judges_alike_whichever_shell_is_bin_sh(root):
    """tar hands each member to `/bin/sh -c`, which runs the member check itself (POSIX sh, no second
    shell): dash in the lab, bash on DV's image. Both see every kind of damage, and the same."""
    said = subprocess.run([*SH_IS_BASH, "/bin/sh", "-c", 'echo "${BASH_VERSION:-not bash}"'],
                          capture_output=True, text=True, check=True).stdout
    assert said.strip() != "not bash"  # the namespace's /bin/sh really is bash
    bar = b.bar_of(root)
    stamps = {"good": "2021-01-17-19-27-31", "cut-inner": "2021-01-18-19-27-31", "no-data": "2021-01-19-19-27-31",
              "component-crc": "2021-01-20-19-27-31", "not-tar": "2021-01-21-19-27-31",
              "dot-dot": "2021-01-22-19-27-31"}
    backup(bar, stamps["good"])
    backup(bar, stamps["cut-inner"], cut_inner="dv_backup_dv_engine.tar.gz")
    for kind, content in (("no-data", _tar_gz([(_info("versioned", tarfile.DIRTYPE), None)])),
                          ("component-crc", gzip.compress(_tar(_files(bar / stamps["good"], COMPONENTS[:1])))[:-8]
                           + b"\0\0\0\0\0\0\0\0"),
                          ("not-tar", gzip.compress(b"tar: cannot open: No space left on device\n")),
                          ("dot-dot", _tar_gz([(_info("versioned/../x", size=2), b"xy")]))):
        backup(bar, stamps[kind])
        _with_component(bar, "dv_backup_dv_metastore.tar.gz", content, stamps[kind])
    by_dash = b.run_bar_probe(root, verify=True)["read_back"]
    by_bash = b.run_bar_probe(root, verify=True, wrap=SH_IS_BASH)["read_back"]
    assert by_bash == by_dash
    states = {kind: by_dash[ts]["state"] for kind, ts in stamps.items()}
    assert states == {"good": "good", "cut-inner": "damaged", "no-data": "damaged", "component-crc": "damaged",
                      "not-tar": "damaged", "dot-dot": "damaged"}
    assert "which a restore refuses" in by_dash[stamps["dot-dot"]]["message"]
    assert "no file with data in it" in by_dash[stamps["no-data"]]["message"]
    assert "crc error" in by_dash[stamps["component-crc"]]["message"]


def test_each_stamp_is_size_and_whole_seconds_as_stat_gives_them(root):
    """A backup's stamp (what a recorded read-back is matched against) is `stat -c %s:%Y` of the file as
    it is just before its read-back, whatever the mtime's fraction, before 1970 too."""
    bar = b.bar_of(root)
    times = {"2021-01-18-19-27-31": 1_600_000_000.999999, "2021-01-19-19-27-31": 1_600_000_000,
             "2021-01-20-19-27-31": -1.5, "2021-01-21-19-27-31": 1_650_000_000.25}
    for ts, when in times.items():
        os.utime(backup(bar, ts), (when, when))
    for verify in (False, True):  # none read, then each read back in turn
        stamps = b.run_bar_probe(root, verify=verify)["stamps"]
        assert stamps == {ts: subprocess.run(["stat", "-c", "%s:%Y", str(bar / ts / "dv_backup.tar.gz")],
                                             capture_output=True, text=True, check=True).stdout.strip()
                          for ts in times}, verify


@pytest.mark.skipif(not (b.IS_ROOT and b.HAS_UNSHARE),
                    reason="hiding /proc (and so /dev/fd) in a mount namespace of its own needs root and unshare")
@pytest.mark.parametrize("fd", ["missing", "a-plain-folder"])
def test_a_pod_without_dev_fd_reads_back_through_a_fifo(root, fd):
    """Break-it, session 17: tee hands the read-back its copy through /dev/fd/3; in a pod without /proc
    (so without /dev/fd), or where /dev/fd is a plain folder, tee could not reach the pipe (or wrote a
    file there), and every good backup read back empty, damaged."""
    tarball = backup(b.bar_of(root))
    folder = " && mkdir -p /proc/self/fd" if fd == "a-plain-folder" else ""
    no_proc = b.own_mounts(f"mount -t tmpfs none /proc{folder}")
    said = b.run_bar_probe(root, verify=True, wrap=no_proc)["read_back"][b.TS]
    assert (said["state"], said["sha256"]) == ("good", hashlib.sha256(tarball.read_bytes()).hexdigest()), said


def test_an_owner_name_with_a_space_does_not_pass_for_a_size(root):
    """Break-it, session 17 (the same before it): the look at a component's verbose listing took its
    third field for the size, and an owner name with a space (`a 5`) put `5/root` there: a component of
    only empty files read back good. The listing now names owners by number."""
    empty = _info("versioned/dump.sql")
    empty.uname, empty.gname = "a 5", "root"
    backup(b.bar_of(root))
    _with_component(b.bar_of(root), "dv_backup_dv_metastore.tar.gz", _tar_gz([(empty, b"")]))
    v = verdict(root)
    assert v.state == DAMAGED and "no file with data in it" in v.why, (v.state, v.why)


@pytest.mark.parametrize("after", ["zeros", "a-little-zeros"])
def test_a_component_padded_with_zeros_after_the_tars_end_is_good(root, after):
    """Break-it, session 17 (before it too): a good component whose tar is followed by more than a pipe's
    worth (64 KiB) of zeros, as a larger blocking factor pads it, read back damaged: tar stopped at the
    end-of-archive and its gzip died of SIGPIPE. tar now reads on to the stream's end (`-i`), so gzip
    reads to its CRC; `tar -xzf` restores such a component."""
    padding = b"\0" * (256 * 512 if after == "zeros" else 3 * 512)
    padded = _tar([(_info("versioned/a", size=10), b"0123456789")], tarfile.GNU_FORMAT) + padding
    backup(b.bar_of(root))
    _with_component(b.bar_of(root), "dv_backup_dv_engine.tar.gz", gzip.compress(padded))
    v = verdict(root)
    assert v.state == GOOD, (v.state, v.why)


#: A tar of one 1-byte file cut right after its end-of-archive (no record padding): what follows it lies in
#: the 10 KiB record GNU tar reads at its end.
_TINY = _tar([(_info("versioned/tiny", size=1), b"x")], tarfile.GNU_FORMAT)[:2048]


@pytest.mark.parametrize("after", [
    "a-second-archive-in-the-last-record", "its-file-all-zeros", "a-large-second-archive",
    "after-a-lone-block-of-nuls", "after-the-record",
])
def test_data_after_a_components_tar_end_is_damaged(root, after):
    """Break-it rounds 3 and 4, session 17 (there before it): `tar -xzf` stops at the first end-of-archive
    (or a lone block of NULs) and drops what follows, a concatenated dump's second archive; it read back
    good when it lay in tar's last record or within a pipe's worth after it."""
    def second(data: bytes) -> bytes:
        return _tar([(_info("versioned/real.bin", size=len(data)), data)], tarfile.GNU_FORMAT)
    content = {
        "a-second-archive-in-the-last-record": lambda: _TINY + second(os.urandom(2000)),
        "its-file-all-zeros": lambda: _TINY + second(b"\0" * 300_000),
        "a-large-second-archive": lambda: _TINY + second(os.urandom(300_000)),
        "after-a-lone-block-of-nuls": lambda: _TINY[:1024] + b"\0" * 512 + second(os.urandom(2000)),
        "after-the-record": lambda: _tar([(_info("versioned/tiny", size=1), b"x")]) + second(os.urandom(2000)),
    }[after]()
    backup(b.bar_of(root))
    _with_component(b.bar_of(root), "dv_backup_dv_engine.tar.gz", gzip.compress(content))
    v = verdict(root)
    assert v.state == DAMAGED and "data follows its tar end-of-archive" in v.why, (v.state, v.why)


@pytest.mark.parametrize("name", ["versioned/a: ** Block of NULs **", "versioned/x\nblock 7: ** Block of NULs **",
                                  "versioned/d: ** End of File **"])
def test_a_member_named_like_tars_own_lines_is_only_a_member(root, name):
    """Break-it round 5, session 17: tar's lines about blocks of NULs were matched by their end, so a
    member whose name ends so was taken for one (a good component read back damaged)."""
    data = os.urandom(2000)
    members = [(_info(name, size=len(data)), data), (_info("versioned/z", size=len(data)), data)]
    backup(b.bar_of(root))
    _with_component(b.bar_of(root), "dv_backup_dv_engine.tar.gz", _tar_gz(members))
    v = verdict(root)
    assert v.state == GOOD, (v.state, v.why)


def _judged_as_a_restore_does(root: Path, tmp: Path, members: list, good: bool) -> Verdict:
    """The verdict on the backup at b.TS whose engine component holds `members`, after checking that a
    restore's `tar -xzf` of that component (in an empty folder) succeeds exactly when `good`."""
    content = gzip.compress(_tar(members, tarfile.GNU_FORMAT))
    folder = tmp / "restore"
    folder.mkdir()
    (tmp / "c.tar.gz").write_bytes(content)
    restored = subprocess.run(["tar", "-xzf", str(tmp / "c.tar.gz")], cwd=folder, capture_output=True,
                              env={**os.environ, "LC_ALL": "C"}).returncode == 0
    assert restored == good  # as tar -x judges it
    backup(b.bar_of(root))
    _with_component(b.bar_of(root), "dv_backup_dv_engine.tar.gz", content)
    v = verdict(root)
    assert v.state == (GOOD if good else DAMAGED), (v.state, v.why)
    return v


_DATA = b"0123456789"


@pytest.mark.parametrize("members, good", [
    ([(_info("versioned/x/../../y", size=10), _DATA)], False),
    ([(_info("versioned/a", size=10), _DATA), (_info("versioned/..", size=10), _DATA)], False),
    ([(_info("/versioned/a", size=10), _DATA)], True),
    ([(_info("versioned/a", size=10), _DATA), (_info("versioned/h", tarfile.LNKTYPE, link="../versioned/a"), None)],
     True),
    ([(_info("versioned/a", size=10), _DATA), (_info("versioned/s", tarfile.SYMTYPE, link="../../etc/x"), None),
      (_info("versioned/a..b/..c", size=10), _DATA)], True),
    # break-it, session 18: tar's stderr line about the prefix it strips prints the name raw: a newline
    # split it (read back good), and a hard link's target forged one (read back damaged)
    ([(_info("versioned/a", size=10), _DATA), (_info("a\n/../x", size=10), _DATA)], False),
    ([(_info("versioned/a", size=10), _DATA),
      (_info("versioned/h", tarfile.LNKTYPE, link="q\ntar: Removing leading `../' from member names\n/../versioned/a"),
       None)], True),
    ([(_info("a/../vol", b"V"), None), (_info("versioned/a", size=10), _DATA)], False),  # tar -t says nothing
    ([(_info("versioned/" + "z" * 3000 + "/../x", size=10), _DATA)], False),
    ([(_info("versioned/a\\c\"q/../x", size=10), _DATA)], False),
], ids=["dot-dot-in-a-name", "a-name-ending-in-dot-dot", "an-absolute-name", "a-hard-link-to-dot-dot",
        "dot-dots-that-are-no-component", "a-newline-before-dot-dot", "a-link-target-like-tars-line",
        "a-volume-header", "a-long-name", "a-backslash-and-a-quote"])
def test_a_member_a_restore_refuses_for_its_dot_dot_is_damaged(root, tmp_path, members, good):
    """Left by break-it rounds, sessions 16-17: a member whose name holds a `..` component is listed
    (`tar -t` exits 0) and read back good, but a restore's `tar -x` refuses it and exits 2. An absolute
    name, a hard link whose target holds `..` and a symbolic link's target are restored: good. Names
    are read from the listing, C-quoted (one line each, whatever they hold), and the reason comes first
    in a message cut to fit, a long name's too."""
    v = _judged_as_a_restore_does(root, tmp_path, members, good)
    if not good:
        assert "a member's name holds '..', which a restore refuses" in v.why, v.why
        assert "block " in v.why  # the listing's line that names it (cut when long)


@pytest.mark.parametrize("members, good", [
    ([(_info("versioned/a", size=10), _DATA), (_info("versioned/big", b"M", size=10), _DATA)], False),
    ([(_info("versioned/a", tarfile.CONTTYPE, size=10), _DATA)], True),
], ids=["a-multi-volume-continuation", "a-contiguous-file-only"])
def test_member_types_are_judged_as_a_restore_extracts_them(root, tmp_path, members, good):
    """Break-it round 2, session 18 (the same before it): a member continued from another volume (`M`)
    is listed, but a restore cannot extract it (exit 2): it read back good. A contiguous file (`C`), which
    tar extracts as a regular one, is a file with data: as the only one it read back damaged."""
    v = _judged_as_a_restore_does(root, tmp_path, members, good)
    if not good:
        assert "continued from another volume" in v.why, v.why



def test_a_components_message_is_the_same_at_every_read_back(root):
    """Break-it round 3, session 18 (before it too): gzip's error and tar's warnings went to one file at
    once, so gzip's CRC error landed before, after or inside tar's line, and a damaged component's
    message changed from one read-back to the next. gzip's now comes first, from a file of its own."""
    members = [(_info(f"versioned/f{i}", size=10), _DATA) for i in range(2000)]
    members.append((_info("/versioned/abs", size=10), _DATA))
    packed = bytearray(gzip.compress(_tar(members, tarfile.GNU_FORMAT)))
    packed[-8] ^= 0xFF  # gzip's CRC-32 of the data
    backup(b.bar_of(root))
    _with_component(b.bar_of(root), "dv_backup_dv_engine.tar.gz", bytes(packed))
    said = {b.run_bar_probe(root, verify=True)["read_back"][b.TS]["message"] for _ in range(6)}
    assert len(said) == 1, said
    [message] = said
    assert message.index("crc error") < message.index("Removing leading `/' from member names"), message
