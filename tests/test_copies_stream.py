"""The copy stream without restic: a backup packs to a tar that deduplicates and unpacks byte for byte;
odd, cut or hostile input is a StreamError naming the member, never a wrong backup. Also the copy
Job's manifest (Kubernetes' schemas), the copies settings, and the lab's database-shaped data."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import zlib
from pathlib import Path

import kubernetes_validate
import pytest

from dvdoctor.copies.stream import FRAME, FRAME_HEADER, StreamError, chunk_marker, meta_from_tail, pack, unpack
from dvdoctor.lab import dbdata

from test_manifests import VERSIONS, _facts_data


def _component(files: dict[str, bytes], fmt=tarfile.GNU_FORMAT) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=fmt) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue())


def _combined(members: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 1_600_000_000
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def _roundtrip(combined: bytes, tmp_path: Path, extras=None):
    stream = io.BytesIO()
    packed = pack(io.BytesIO(combined), stream, {"backup": "2026-01-01-00-00-00"}, extras)
    folder = tmp_path / "out"
    unpacked = unpack(io.BytesIO(stream.getvalue()), folder, meta_from_tail(stream.getvalue()))
    return packed, unpacked, folder, stream.getvalue()


def _unpack(raw: bytes, folder: Path):
    """Unpack as rehydrate does: the metadata from the stream's own end first, then the stream."""
    return unpack(io.BytesIO(raw), folder, meta_from_tail(raw))


def test_components_come_back_byte_for_byte_and_the_combined_tarball_lists_them(tmp_path):
    odd = "versioned/a name with\nnewline\tand tab $(x) ü"
    engine = _component({"versioned/big.dat": bytes(range(256)) * 3000, odd: b"odd", "x" * 150: b"long name"},
                        fmt=tarfile.PAX_FORMAT)
    meta = _component({"versioned/metastore/db": b"m" * 1000})
    combined = _combined({"dv_backup_dv_metastore.tar.gz": meta, "dv_backup_dv_engine.tar.gz": engine})
    packed, unpacked, folder, _ = _roundtrip(combined, tmp_path, {"dvdoctor-manifest.json": b'{"m": 1}'})
    for name, original in (("dv_backup_dv_metastore.tar.gz", meta), ("dv_backup_dv_engine.tar.gz", engine)):
        assert gzip.decompress((folder / name).read_bytes()) == gzip.decompress(original)
    assert packed.checksums() == unpacked.checksums()
    assert packed.checksums()["dv_backup_dv_engine.tar.gz"] == hashlib.sha256(gzip.decompress(engine)).hexdigest()
    listing = subprocess.run(["tar", "-tzf", str(folder / "dv_backup.tar.gz")], capture_output=True, text=True,
                             check=True).stdout.split()
    assert listing == ["dv_backup_dv_metastore.tar.gz", "dv_backup_dv_engine.tar.gz"]
    assert (folder / "dvdoctor-manifest.json").read_bytes() == b'{"m": 1}'


def test_the_stream_holds_the_components_decompressed_so_unchanged_files_are_unchanged_bytes(tmp_path):
    data = bytes(range(256)) * 400  # a small file: one piece in the stream, as it is
    big = bytes(range(256)) * (3 * FRAME // 256)  # a large one: whole frames, each compressed on its own
    a = _combined({"dv_backup_dv_engine.tar.gz": _component({"versioned/t1": data, "versioned/big": big,
                                                             "versioned/t2": b"day 1"})})
    b = _combined({"dv_backup_dv_engine.tar.gz": _component({"versioned/t1": data, "versioned/big": big,
                                                             "versioned/t2": b"day 2"})})
    out_a, out_b = io.BytesIO(), io.BytesIO()
    pack(io.BytesIO(a), out_a, {})
    pack(io.BytesIO(b), out_b, {})
    assert data in out_a.getvalue() and data in out_b.getvalue()  # gzip'd, the two would share nothing

    def frames(raw: bytes) -> dict[str, bytes]:
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:  # a tar any tool reads
            return {m.name: tar.extractfile(m).read() for m in tar if m.name.startswith(".dvdoctor/d/")}

    big_a = {n: d for n, d in frames(out_a.getvalue()).items() if len(d) == FRAME + 64}
    assert len(big_a) == 4 and big_a == {n: d for n, d in frames(out_b.getvalue()).items() if len(d) == FRAME + 64}
    assert all(len(d.rstrip(b"\0")) < FRAME // 4 for d in (d[:FRAME] for d in big_a.values()))  # compressed


@pytest.mark.parametrize("damage, words", [
    (lambda c: c[: len(c) // 2], "does not read back"),
    (lambda c: b"not gzip at all", "does not read back"),
    (lambda c: _combined({"dv_backup_dv_engine.tar.gz": _component({"f": b"x" * 5000})[:-30]}), "does not read back"),
    (lambda c: _combined({"notes.txt": b"no component"}), "no component tarball"),
])
def test_a_damaged_or_hostile_backup_is_refused_with_the_reason(damage, words, tmp_path):
    good = _combined({"dv_backup_dv_engine.tar.gz": _component({"versioned/f": b"x" * 5000})})
    with pytest.raises(StreamError, match=words):
        pack(io.BytesIO(damage(good)), io.BytesIO(), {})


def test_bytes_after_the_end_of_archive_are_refused(tmp_path):
    inner = gzip.decompress(_component({"versioned/f": b"x"})) + b"garbage"
    combined = _combined({"dv_backup_dv_engine.tar.gz": gzip.compress(inner)})
    with pytest.raises(StreamError, match="after its end-of-archive"):
        pack(io.BytesIO(combined), io.BytesIO(), {})


def test_a_cut_or_altered_copy_never_unpacks_into_a_backup(tmp_path):
    combined = _combined({"dv_backup_dv_engine.tar.gz": _component({"versioned/f": bytes(range(256)) * 100})})
    stream = io.BytesIO()
    pack(io.BytesIO(combined), stream, {})
    raw = stream.getvalue()
    with pytest.raises(StreamError, match="no tail"):
        _unpack(raw[: len(raw) // 2], tmp_path / "cut")
    with pytest.raises(StreamError, match="cut short"):  # the end read alone, the stream cut
        unpack(io.BytesIO(raw[: len(raw) // 2]), tmp_path / "cut2", meta_from_tail(raw))
    at = raw.index(bytes(range(256)))
    altered = raw[:at] + b"\xff" + raw[at + 1:]
    with pytest.raises(StreamError, match="checksum"):
        _unpack(altered, tmp_path / "altered")


def test_member_names_cannot_leave_the_folder(tmp_path):
    combined = _combined({"dv_backup_dv_engine.tar.gz": _component({"versioned/f": b"x"})})
    stream = io.BytesIO()
    pack(io.BytesIO(combined), stream, {})
    meta = meta_from_tail(stream.getvalue())
    meta["parts"][0]["meta"]["member"] = "../../etc/evil.tar.gz"
    with pytest.raises(StreamError, match="outside the backup folder"):
        unpack(io.BytesIO(stream.getvalue()), tmp_path / "f", meta)
    assert not (tmp_path.parent / "etc").exists()


def test_a_tail_from_another_copy_never_passes(tmp_path):
    """The metadata read from the end and the stream read from the start must be one copy's."""
    one, two = io.BytesIO(), io.BytesIO()
    pack(io.BytesIO(_combined({"dv_backup_dv_engine.tar.gz": _component({"versioned/f": b"day 1"})})), one, {})
    pack(io.BytesIO(_combined({"dv_backup_dv_engine.tar.gz": _component({"versioned/f": b"day 2"})})), two, {})
    with pytest.raises(StreamError, match="checksum|mixed copies"):
        unpack(io.BytesIO(one.getvalue()), tmp_path / "mixed", meta_from_tail(two.getvalue()))


def test_a_stream_of_another_format_says_so(tmp_path):
    stream = io.BytesIO()
    pack(io.BytesIO(_combined({"dv_backup_dv_engine.tar.gz": _component({"versioned/f": b"x"})})), stream, {})
    raw = stream.getvalue().replace(b'{"format": 3,', b'{"format": 9,')
    with pytest.raises(StreamError, match="stream format 9"):
        meta_from_tail(raw)


def test_large_files_are_framed_every_512_kib_and_come_back_whole(tmp_path):
    """A file of several frames: each frame is its own entry ending with the marker; a large file's
    last frame is padded to a whole one; all of it comes back byte for byte."""
    big = bytes(range(256)) * (FRAME * 3 // 256 + 77)
    small = b"s" * 1000
    combined = _combined({"dv_backup_dv_engine.tar.gz": _component({"versioned/big": big, "versioned/small": small})})
    marker = chunk_marker(0x3DA3358B4DC173)
    stream = io.BytesIO()
    pack(io.BytesIO(combined), stream, {}, marker=marker)
    raw = stream.getvalue()
    names = tarfile.open(fileobj=io.BytesIO(raw)).getnames()
    frames = [n for n in names if n.startswith(".dvdoctor/d/")]
    assert len(frames) == 4 + 1  # big: 3 whole frames and a padded last one; small: one entry
    assert raw.count(marker) == 4
    _unpack(raw, tmp_path / "out")
    assert gzip.decompress((tmp_path / "out" / "dv_backup_dv_engine.tar.gz").read_bytes()) == gzip.decompress(
        _component({"versioned/big": big, "versioned/small": small}))


def test_the_marker_is_one_restics_chunker_cuts_at():
    """The chunker cuts where the Rabin fingerprint of its 64-byte window, modulo the repository's
    polynomial, has its low 20 bits zero: computed here from the definition, bit by bit."""
    poly = 0x3DA3358B4DC173  # a degree-53 polynomial, as restic draws them
    marker = chunk_marker(poly)
    value = int.from_bytes(marker, "big")
    for bit in range(value.bit_length() - 1, 52, -1):  # long division over GF(2), one bit at a time
        if value >> bit & 1:
            value ^= poly << (bit - 53)
    assert len(marker) == 64 and value & ((1 << 20) - 1) == 0
    assert chunk_marker(None) != marker and len(chunk_marker(None)) == 64


@pytest.mark.parametrize("version", VERSIONS)
def test_the_copy_job_is_valid_and_takes_the_repository_only_from_the_secret(version):
    from dvdoctor.copies.where import copy_job
    from dvdoctor.facts.model import Facts
    from dvdoctor.core.names import CopySettings, DEFAULT

    data = _facts_data(True)
    data["objects"]["statefulsets"] = [{"metadata": {"name": "dv-engine", "uid": "u-1"},
                                        "spec": {"template": {"spec": {"containers": [{"image": "dv:1"}]}}}}]
    data["namespace"] = "cpd30"
    facts = Facts(data, DEFAULT)
    copies = CopySettings(secret="dv-copies", image="registry.example/dvdoctor:0.2")
    for write in (False, True):
        job = copy_job(facts, copies, ["copy", "2026-01-01-00-00-00"], write=write)
        kubernetes_validate.validate(job, version, strict=True)
        container = job["spec"]["template"]["spec"]["containers"][0]
        assert container["envFrom"] == [{"secretRef": {"name": "dv-copies"}}]
        assert not any(e["name"].startswith("RESTIC_REPOSITORY") or e["name"] == "RESTIC_PASSWORD"
                       for e in container["env"])
        (mount,) = container["volumeMounts"]
        assert mount["mountPath"] == "/mnt/PV/bar" and mount["readOnly"] is (not write)
        assert container["command"][:3] == ["python3", "-m", "dvdoctor.copies.job"]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_repository_on_another_claim_is_mounted_for_every_action(version):
    """`copies: {secret, claim}`: the repository is a path on another claim of DV's namespace; the
    copy Job mounts that claim (read-write: restic locks even to list) for copy, listing and pruning
    alike, and never takes the backup claim for it."""
    from dvdoctor.copies.where import REPOSITORY_MOUNT, copy_job
    from dvdoctor.core.errors import UsageError
    from dvdoctor.facts.model import Facts
    from dvdoctor.core.names import CopySettings, DEFAULT

    data = _facts_data(True)
    data["objects"]["statefulsets"] = [{"metadata": {"name": "dv-engine", "uid": "u-1"},
                                        "spec": {"template": {"spec": {"containers": [{"image": "dv:1"}]}}}}]
    data["namespace"] = "cpd30"
    facts = Facts(data, DEFAULT)
    copies = CopySettings(secret="dv-copies", claim="dv-copies-pvc", image="registry.example/dvdoctor:0.2")
    for args, write in ((["copy", "2026-01-01-00-00-00"], False), (["snapshots"], False),
                        (["forget", "daily=7"], False), (["rehydrate", "abcdef12", "2026-01-01-00-00-00"], True)):
        job = copy_job(facts, copies, args, write=write)
        kubernetes_validate.validate(job, version, strict=True)
        pod = job["spec"]["template"]["spec"]
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]
                  if "persistentVolumeClaim" in v}
        mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
        assert claims[mounts[REPOSITORY_MOUNT]["name"]] == "dv-copies-pvc", args
        assert not mounts[REPOSITORY_MOUNT].get("readOnly"), args
        assert ("/mnt/PV/bar" in mounts) is (args[0] in ("copy", "rehydrate")), args
    with pytest.raises(UsageError, match="backup volume itself"):
        copy_job(facts, CopySettings(secret="s", claim="dv-bar-pvc"), ["snapshots"], write=False)


def test_a_claim_for_copies_goes_with_a_secret():
    from dvdoctor.cli.config import parse
    from dvdoctor.core.errors import UsageError

    assert parse("copies: {secret: dv-copies, claim: dv-copies-pvc}\n").copies.claim == "dv-copies-pvc"
    with pytest.raises(UsageError, match="claim is for a cluster"):
        parse("copies: {repository: /r, password_file: /p, claim: c}\n")
    with pytest.raises(UsageError, match="copies.claim"):
        parse("copies: {secret: s, claim: Not_A_Name}\n")


def test_copies_settings_are_one_or_the_other(tmp_path):
    from dvdoctor.cli.config import parse
    from dvdoctor.core.errors import UsageError

    assert parse("copies: {secret: dv-copies, image: r/dvdoctor:1}\n").copies.secret == "dv-copies"
    for text, words in (("copies: {secret: s, repository: r}\n", "not both"),
                        ("copies: {repository: r}\n", "together"),
                        ("copies: {password_file: p}\n", "together"),
                        ("copies: {secret: Not_A_Name}\n", "copies.secret")):
        with pytest.raises(UsageError, match=words):
            parse(text)


def test_database_pages_compress_about_three_to_one_and_churn_changes_what_it_says(tmp_path):
    vol = tmp_path / "dv"
    size = 8 * 1024 * 1024
    written = dbdata.write(vol, size)
    assert abs(written - size) < dbdata.PAGE * 4
    table = next(iter(dbdata.layout(vol).tables)).read_bytes()
    ratio = len(table) / len(zlib.compress(table, 6))
    assert 2.6 < ratio < 3.6, ratio
    before = {p: p.read_bytes() for p in vol.rglob("*") if p.is_file()}
    done = dbdata.churn(vol, 10, scattered=0.1, seed=5)
    budget = written * 10 // 100
    assert abs(sum(done.values()) - budget) <= 3 * dbdata.PAGE
    assert done["pages"] > 0 and done["runs"] > 0 and done["appended"] > 0
    changed = 0
    for p, old in before.items():
        if p.exists() and p.suffix != ".LOG":
            new = p.read_bytes()
            changed += sum(old[i:i + dbdata.PAGE] != new[i:i + dbdata.PAGE] for i in range(0, len(old), dbdata.PAGE))
    assert changed * dbdata.PAGE <= done["runs"] + done["pages"]
    assert changed * dbdata.PAGE >= 0.9 * (done["runs"] + done["pages"])


@pytest.mark.parametrize("how", ["plain", "pax", "gnu-long", "outer"])
def test_names_like_the_streams_own_are_plain_names_inside_a_backup(how, tmp_path):
    """The stream names its entries by hashes; a backup's own files may be called anything, even
    `.dvdoctor/...` by a pax path or a GNU long name, and come back as they were."""
    raw = io.BytesIO()
    fmt = tarfile.GNU_FORMAT if how == "gnu-long" else tarfile.PAX_FORMAT
    with tarfile.open(fileobj=raw, mode="w", format=fmt) as tar:
        info = tarfile.TarInfo({"plain": ".dvdoctor/meta.json.gz", "pax": "versioned/innocent",
                                "gnu-long": ".dvdoctor/tail.json/" + "x" * 120, "outer": "versioned/f"}[how])
        if how == "pax":
            info.pax_headers = {"path": ".dvdoctor/tail.json"}
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    members = {"dv_backup_dv_engine.tar.gz": gzip.compress(raw.getvalue())}
    if how == "outer":
        members[".dvdoctor/meta.json.gz"] = b"an outer member named like the stream's metadata"
    _, _, folder, _ = _roundtrip(_combined(members), tmp_path)
    assert gzip.decompress((folder / "dv_backup_dv_engine.tar.gz").read_bytes()) == raw.getvalue()


def test_members_that_are_not_tarballs_come_back_inside_the_combined_tarball_only(tmp_path):
    """A combined tarball may hold more than component tarballs: a link keeps its target, a folder
    stays a folder, a file comes back inside it and not loose in the backup folder, which then
    holds what DV's own folder holds: the components and the combined tarball (mode 0644)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        engine = _component({"versioned/f": b"x" * 5000})
        for name, kind, data in (("dv_backup_dv_engine.tar.gz", tarfile.REGTYPE, engine),
                                 ("notes/readme.txt", tarfile.REGTYPE, b"notes"), ("notes", tarfile.DIRTYPE, b""),
                                 ("latest", tarfile.SYMTYPE, b"")):
            info = tarfile.TarInfo(name)
            info.type, info.size, info.mode = kind, len(data), 0o755 if kind == tarfile.DIRTYPE else 0o644
            if kind == tarfile.SYMTYPE:
                info.linkname = "dv_backup_dv_engine.tar.gz"
            tar.addfile(info, io.BytesIO(data))
    _, _, folder, _ = _roundtrip(raw.getvalue(), tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["dv_backup.tar.gz", "dv_backup_dv_engine.tar.gz"]
    assert (folder / "dv_backup.tar.gz").stat().st_mode & 0o777 == 0o644
    with tarfile.open(folder / "dv_backup.tar.gz") as back:
        members = {m.name: m for m in back.getmembers()}
        assert members["latest"].issym() and members["latest"].linkname == "dv_backup_dv_engine.tar.gz"
        assert members["notes"].isdir()
        assert back.extractfile("notes/readme.txt").read() == b"notes"


def test_a_reader_that_stops_is_not_blamed_on_the_backup():
    from dvdoctor.copies.stream import SinkError

    class Gone:
        def write(self, data):
            raise BrokenPipeError(32, "Broken pipe")

    combined = _combined({"dv_backup_dv_engine.tar.gz": _component({"versioned/f": b"x" * 5000})})
    with pytest.raises(SinkError):
        pack(io.BytesIO(combined), Gone(), {})


@pytest.mark.parametrize("stderr, words, usage", [
    ("Fatal: unable to open config file: ... Is there a repository at the following location?", "no restic repository", True),
    ("Fatal: unable to open config file: unexpected HTTP response (401): 401 Unauthorized\n"
     "Is there a repository at the following location?", "refused the credentials", True),
    ("Fatal: unable to open config file: Head \"http://127.0.0.1:18999/dv/config\": dial tcp 127.0.0.1:18999: connect: "
     "connection refused\nIs there a repository at the following location?", "cannot be reached", True),
    ("Fatal: wrong password or no key found", "password is wrong", True),
    ("Fatal: an empty password is not a password", "password file is empty", True),
    ("unable to create lock in backend: repository is already locked by PID 12 on host", "locked", False),
    ("Load(<data/1234>, 0, 0) returned error, retrying after 1s: ciphertext verification failed", "damaged", False),
    ("Fatal: something new", "something new", False),
    ('Fatal: invalid repository location: parse "http://alice:Zw0rd": invalid port ":Zw0rd" after host',
     "not a valid URL", True),
    ("Fatal: unable to open config file: unexpected HTTP response (500): 500 Internal Server Error\n"
     "Is there a repository at the following location?", "server failed", False),
    ("Fatal: unable to open config file: open /etc/passwd/config: not a directory\n"
     "Is there a repository at the following location?", "a file, not a folder", True),
    ("\x1b[2Ksignal interrupt received, cleaning up", "signal interrupt received", False),
    # restic 0.14's own words for an sftp location it cannot reach, and for an rclone remote that is not set up
    ("subprocess ssh: ssh: Could not resolve hostname user: Name or service not known\nFatal: unable to open "
     "repository at sftp:user:x@127.0.0.1:/x: unable to start the sftp session, error: EOF", "cannot be reached", True),
    ('rclone: Failed to create file system for "foo:x": didn\'t find section in config file\nFatal: unable to open '
     "repository at rclone:foo:x: error talking HTTP to rclone: context canceled", "cannot be reached", True),
])
def test_restics_errors_become_one_line_that_says_what_to_do(stderr, words, usage):
    from dvdoctor.copies.restic import explain

    err = explain(stderr, "snapshots")
    assert words in str(err) and err.usage is usage and "\n" not in str(err) and "\x1b" not in str(err)


@pytest.mark.parametrize("repository, shown", [
    ("rest:http://alice:Zw0rd#x@127.0.0.1:9/", ["Zw0rd#x", "Zw0rd"]),
    ("rest:http://alice:Zw0/rd@127.0.0.1:9/", ["Zw0/rd", "Zw0"]),
    ("rest:http://alice:p@ss%zzZw0rd@127.0.0.1:9/", ["zzZw0rd", "p@ss%zzZw0rd"]),
    ("rest:http://:p%zzZw0rdonly@127.0.0.1:9/", ["zzZw0rdonly"]),
    ("sftp:user:SFTPLEAK77@127.0.0.1:/x", ["SFTPLEAK77"]),  # restic's scp-like form, no //
    ("sftp:user:p@ss/SFTP:LEAK@host:/x", ["p@ss/SFTP:LEAK", "SFTP"]),
])
def test_no_piece_of_a_repository_password_is_ever_shown(repository, shown):
    """restic (Go's URL parser) may quote a location cut anywhere inside its password: neither the
    words for a known cause nor the last line of an unknown one carries any piece of it."""
    from dvdoctor.copies.restic import explain, location_secrets
    from dvdoctor.core import redact

    secrets = location_secrets(repository)
    cut = repository.split("#")[0]
    for stderr in (f'Fatal: parse "{cut}": invalid port', f"Fatal: something new about {cut} and {repository}",
                   f"Fatal: {repository.replace('@', ' at ')} did not answer"):
        message = str(explain(stderr, "snapshots", secrets))
        assert not any(piece in message for piece in shown), message
    assert not any(piece in redact.text(f"copies.repository: {repository!r} is not allowed") for piece in shown)


@pytest.mark.skipif(shutil.which("restic") is None,
                    reason="restic is not installed (make test installs it as root on Debian)")
def test_restic_cuts_at_the_frames_so_a_changed_page_costs_one_frame(tmp_path, restic_repository):
    """Against restic itself: an 8 MiB file backed up, then again with three 8 KiB pages changed
    in three frames. restic cuts after every frame marker made for its repository's polynomial, so
    the file is stored as its frames exactly, and the second backup adds three frames (and the
    small last chunk that holds the metadata), where chunks of restic's own choosing would each be
    a random 512 KiB to 8 MiB."""
    import os
    import random

    rng = random.Random(5)
    pages = [rng.randbytes(8192) for _ in range(1024)]
    day2 = list(pages)
    for at in (100, 500, 900):
        day2[at] = rng.randbytes(8192)
    env = {**os.environ, "RESTIC_REPOSITORY": str(tmp_path / "repo"), "RESTIC_PASSWORD": "test",
           "RESTIC_CACHE_DIR": str(tmp_path / "cache")}

    def restic(*args, stdin=None):
        return subprocess.run(["restic", *args], input=stdin, env=env, capture_output=True, check=True).stdout

    def backup(data):
        stream = io.BytesIO()
        pack(io.BytesIO(_combined({"dv_backup_dv_engine.tar.gz": _component({"versioned/t": b"".join(data)})})),
             stream, {}, marker=marker)
        out = restic("backup", "--stdin", "--stdin-filename", "s", "--json", stdin=stream.getvalue())
        summary = [json.loads(line) for line in out.splitlines() if b'"summary"' in line][0]
        tree = json.loads(restic("cat", "blob", json.loads(restic("cat", "snapshot", summary["snapshot_id"]))["tree"]))
        return summary["data_added"], len(tree["nodes"][0]["content"])

    restic_repository(tmp_path / "repo", "test")
    marker = chunk_marker(int(json.loads(restic("cat", "config"))["chunker_polynomial"], 16))
    frames = -(-(8 * 1024 * 1024 + 512) // (FRAME - FRAME_HEADER))  # the file's data blocks, its last frame padded
    _, chunks = backup(pages)
    assert frames <= chunks <= frames + 2  # a chunk a frame, and the stream's small end
    added, _ = backup(day2)
    assert 3 * 512 * 1024 <= added < 3 * 512 * 1024 + 256 * 1024, added


@pytest.mark.skipif(shutil.which("restic") is None,
                    reason="restic is not installed (make test installs it as root on Debian)")
def test_a_copy_comes_back_only_under_the_backup_it_holds(tmp_path, capsys, restic_repository):
    """The name a copy is restored under comes from its tag, which anyone with the password may
    change; the stream's own record decides: a copy of one backup is never written back as another."""
    import os

    from dvdoctor.copies import job
    from dvdoctor.copies.restic import Restic

    bar = tmp_path / "bar"
    (bar / "2026-01-01-00-00-00").mkdir(parents=True)
    (bar / "2026-01-01-00-00-00" / "dv_backup.tar.gz").write_bytes(
        _combined({"dv_backup_dv_engine.tar.gz": _component({"versioned/f": b"x" * 5000})}))
    restic = Restic({**os.environ, "RESTIC_REPOSITORY": str(tmp_path / "repo"), "RESTIC_PASSWORD": "test",
                     "RESTIC_CACHE_DIR": str(tmp_path / "cache")})
    restic_repository(tmp_path / "repo", "test")
    assert job.copy(restic, bar, "uid-1", "ns", ["2026-01-01-00-00-00"]) == 0
    snapshot = restic.snapshots()[0].id
    capsys.readouterr()
    assert job.rehydrate(restic, tmp_path / "back", snapshot, "2026-02-02-00-00-00") == 1
    assert "holds a copy of backup '2026-01-01-00-00-00', not of 2026-02-02-00-00-00" in capsys.readouterr().out
    assert not (tmp_path / "back" / "2026-02-02-00-00-00").exists()
    assert job.rehydrate(restic, tmp_path / "back", snapshot, "2026-01-01-00-00-00") == 0


@pytest.mark.parametrize("where", ["bar/copies", "bar", ".", "local:bar/copies"])
def test_a_repository_on_the_backup_volume_is_refused(where, tmp_path, monkeypatch, capsys):
    """Copies are for when the backup volume is lost: a repository on it (or holding it) would go too."""
    from dvdoctor.copies import job

    bar = tmp_path / "bar"
    bar.mkdir()
    prefix = "local:" if where.startswith("local:") else ""
    monkeypatch.setenv("DV_BAR", str(bar))
    monkeypatch.setenv("RESTIC_REPOSITORY", prefix + str(tmp_path / where.removeprefix("local:")))
    monkeypatch.setenv("DVDOCTOR_INSTANCE", "uid-1")
    assert job.main(["snapshots"]) == 2
    assert "on the backup volume itself" in capsys.readouterr().out
    monkeypatch.setenv("RESTIC_REPOSITORY", str(tmp_path / "elsewhere"))
    assert job._repository_on(bar, str(tmp_path / "elsewhere")) is None


def test_a_copy_made_in_stream_format_2_still_comes_back(tmp_path):
    """Copies made before frames were compressed here (format 2: restic compressed them) are backups
    too: this stream was written by format 2's pack (640 KiB file: two frames, the last padded, and a
    small file) and must unpack to the component it was made from."""
    raw = gzip.decompress((Path(__file__).parent / "golden" / "copy-stream-format-2.tar.gz").read_bytes())
    meta = meta_from_tail(raw)
    assert meta["format"] == 2
    packed = _unpack(raw, tmp_path / "out")
    component = gzip.decompress((tmp_path / "out" / "dv_backup_dv_engine.tar.gz").read_bytes())
    assert hashlib.sha256(component).hexdigest() == packed.checksums()["dv_backup_dv_engine.tar.gz"]
    assert hashlib.sha256(component).hexdigest() == "c21f311a5df71bbdb41d1d261ddab88c37df1966356ec7f843b72a47afefced7"
    with tarfile.open(fileobj=io.BytesIO(component)) as tar:
        assert tar.getnames() == ["versioned/big", "versioned/small"]


@pytest.mark.parametrize("where", ["header", "payload", "padding"])
def test_a_damaged_compressed_frame_is_a_stream_error(tmp_path, where):
    """A frame compressed here (format 3) that was changed in the repository never unpacks as data."""
    big = bytes(range(256)) * (2 * FRAME // 256)
    stream = io.BytesIO()
    pack(io.BytesIO(_combined({"dv_backup_dv_engine.tar.gz": _component({"versioned/big": big})})), stream, {})
    raw = bytearray(stream.getvalue())
    with tarfile.open(fileobj=io.BytesIO(bytes(raw))) as tar:
        first = next(m for m in tar if m.name.startswith(".dvdoctor/d/"))
    at = first.offset_data + {"header": 1, "payload": FRAME_HEADER + 40, "padding": FRAME - 10}[where]
    raw[at] ^= 0x55
    with pytest.raises(StreamError):
        _unpack(bytes(raw), tmp_path / "out")


def test_the_lab_runs_its_own_copy_program_whatever_folder_it_is_started_from(tmp_path, monkeypatch):
    """`python -m` puts the current folder first on sys.path: started from inside another dvdoctor
    checkout, the lab ran that checkout's copy program. Here the current folder holds an impostor."""
    from dvdoctor.copies.where import local_run
    from dvdoctor.core.names import CopySettings

    impostor = tmp_path / "checkout" / "dvdoctor" / "copies"
    impostor.mkdir(parents=True)
    (impostor.parent / "__init__.py").write_text("")
    (impostor / "__init__.py").write_text("")
    (impostor / "job.py").write_text('print(\'{"error": "impostor"}\')\nraise SystemExit(7)\n')
    (tmp_path / "pw").write_text("x\n")
    monkeypatch.chdir(tmp_path / "checkout")
    run = local_run(tmp_path / "bar", CopySettings(repository=str(tmp_path / "no-repo"),
                                                   password_file=str(tmp_path / "pw")), "uid", "ns")
    outcome = run(["snapshots"], False)
    assert outcome.rc != 7 and "impostor" not in outcome.errors(), outcome


@pytest.mark.parametrize("where", ["repo", "local:repo", "other/../repo"])
def test_a_repository_beside_dvs_folder_on_the_same_claim_is_refused(where, tmp_path):
    """DV's folder is a subPath (1.5.0) of the claim: a repository at the claim's root, beside it, is
    lost with the claim all the same (the lab runs the copy program where it sees the whole claim)."""
    from dvdoctor.copies.where import local_run
    from dvdoctor.core.names import CopySettings

    volume = tmp_path / "volumes" / "dv-bar-pvc"
    (volume / "1.5.0").mkdir(parents=True)
    (tmp_path / "pw").write_text("x\n")
    prefix = "local:" if where.startswith("local:") else ""
    repository = prefix + str(volume / where.removeprefix("local:"))
    run = local_run(volume / "1.5.0", CopySettings(repository=repository, password_file=str(tmp_path / "pw")),
                    "uid", "ns", volume=volume)
    outcome = run(["init"], True)
    assert outcome.rc == 2 and any("on the backup volume itself" in e for e in outcome.errors()), outcome
    assert not (volume / "repo").exists()


@pytest.mark.skipif(shutil.which("restic") is None,
                    reason="restic is not installed (make test installs it as root on Debian)")
def test_a_copy_whose_checksum_tag_was_changed_is_not_written_back(tmp_path, capsys, restic_repository):
    """list --copies shows a copy's checksums from its tags; rehydrate verifies against the ones the
    stream holds. Where the two disagree (a tag changed with `restic tag`, or damage), neither is
    trusted: nothing is written back."""
    import os

    from dvdoctor.copies import job
    from dvdoctor.copies.restic import Restic

    bar = tmp_path / "bar"
    (bar / "2026-01-01-00-00-00").mkdir(parents=True)
    (bar / "2026-01-01-00-00-00" / "dv_backup.tar.gz").write_bytes(
        _combined({"dv_backup_dv_engine.tar.gz": _component({"versioned/f": b"x" * 5000})}))
    env = {**os.environ, "RESTIC_REPOSITORY": str(tmp_path / "repo"), "RESTIC_PASSWORD": "test",
           "RESTIC_CACHE_DIR": str(tmp_path / "cache")}
    restic = Restic(env)
    restic_repository(tmp_path / "repo", "test")
    assert job.copy(restic, bar, "uid-1", "ns", ["2026-01-01-00-00-00"]) == 0
    snap = restic.snapshots()[0]
    real = "sha256:dv_backup_dv_engine.tar.gz=" + snap.tags["sha256:dv_backup_dv_engine.tar.gz"]
    subprocess.run(["restic", "tag", "--remove", real, "--add", "sha256:dv_backup_dv_engine.tar.gz=" + "0" * 64,
                    snap.id], env=env, check=True, capture_output=True)
    capsys.readouterr()
    changed = restic.snapshots()[0].id
    assert job.rehydrate(restic, tmp_path / "back", changed, "2026-01-01-00-00-00") == 1
    out = capsys.readouterr().out
    assert "tags name other checksums than the copy holds (dv_backup_dv_engine.tar.gz)" in out, out
    assert not (tmp_path / "back").exists() or not any((tmp_path / "back").iterdir())


def test_the_hint_for_missing_copies_settings_survives_redaction_whole():
    """Every line dvdoctor prints goes through one redaction pass; the hint that names the settings to
    add must not read as a password's value and come out as <redacted>."""
    from dvdoctor.copies.where import settings_for
    from dvdoctor.core import redact
    from dvdoctor.core.errors import UsageError

    with pytest.raises(UsageError) as caught:
        settings_for(None, lab=True)
    shown = redact.text(str(caught.value))
    assert "<redacted>" not in shown and "password_file" in shown and "secret" in shown, shown


def _inflate_all(data: bytes, step: int) -> bytes:
    from dvdoctor.copies.stream import _Gunzip

    reader, out = _Gunzip(io.BytesIO(data)), []
    while chunk := reader.read(step):
        out.append(chunk)
    return b"".join(out)


@pytest.mark.parametrize("step", [1, 4096, 3 * 1024 * 1024])
def test_component_inflater_reads_what_gzip_reads(step: int) -> None:
    """The packer inflates component tarballs with zlib itself: members one after another and zeros
    at the end read as gzip reads them, in reads of any size."""
    blocks = 40_000 if step > 1 else 1_000  # 32 bytes each, half of them repeated: some compress, some not
    one = b"".join(hashlib.sha256(str(i // 2).encode()).digest() for i in range(blocks))
    two = b"second member " * 5000
    for data, plain in ((gzip.compress(one), one), (gzip.compress(one) + gzip.compress(two), one + two),
                        (gzip.compress(two) + b"\0" * 700, two), (gzip.compress(b""), b"")):
        assert _inflate_all(data, step) == plain == gzip.decompress(data)


@pytest.mark.parametrize("damage, error", [
    (lambda z: z[:-9], EOFError),                                  # cut inside the trailer
    (lambda z: z[: len(z) // 2], EOFError),                        # cut inside the data
    (lambda z: z + b"garbage!", zlib.error),                       # not a member after the last one
    (lambda z: z[:-8] + bytes([z[-8] ^ 1]) + z[-7:], zlib.error),  # the CRC does not match
    (lambda z: b"plain text, not gzip", zlib.error),
])
def test_component_inflater_refuses_damage_as_gzip_would(damage, error) -> None:
    data = damage(gzip.compress(b"component tar bytes " * 4000))
    with pytest.raises(error):
        _inflate_all(data, 65536)
    with pytest.raises((OSError, EOFError, zlib.error)):  # gzip itself refuses the same bytes
        gzip.decompress(data)


def test_unpack_never_writes_through_a_link_at_its_folder(tmp_path):
    """A symbolic link planted at the folder's name (a dangling one too) is refused before any byte
    is written: the copy is never put where the link points."""
    combined = _combined({"dv_backup_dv_engine.tar.gz": _component({"versioned/f": b"x"})})
    stream = io.BytesIO()
    pack(io.BytesIO(combined), stream, {})
    raw = stream.getvalue()
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "planted").symlink_to(outside)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    for name in ("planted", "dangling"):
        with pytest.raises(FileExistsError):
            _unpack(raw, tmp_path / name)
    assert list(outside.iterdir()) == [] and not (tmp_path / "nowhere").exists()


def test_a_damaged_folder_gives_way_to_its_whole_copy_and_nothing_else_does(tmp_path):
    """rehydrate's last step (copies/job.py:_put_in_place): only a real folder dvdoctor found damaged
    is replaced, after the copy is whole; what appeared meanwhile, a link, or a folder an earlier
    replacement left aside stops it, with the damaged folder where it was."""
    from dvdoctor.copies.job import _put_in_place
    from dvdoctor.core.names import DAMAGED_ASIDE

    def made(name: str, text: str) -> Path:
        (tmp_path / name).mkdir()
        (tmp_path / name / "dv_backup.tar.gz").write_text(text)
        return tmp_path / name

    work, final = made(".dvdoctor-rehydrate-2021", "whole"), made("2021", "rotten")
    with pytest.raises(StreamError, match="appeared on the backup volume"):
        _put_in_place(work, final, replace=False)
    aside = made(f"{DAMAGED_ASIDE}2021", "older")
    with pytest.raises(StreamError, match="an earlier replacement left it"):
        _put_in_place(work, final, replace=True)
    assert (final / "dv_backup.tar.gz").read_text() == "rotten" and work.is_dir()
    shutil.rmtree(aside)
    assert _put_in_place(work, final, replace=True) == (True, None)
    assert (final / "dv_backup.tar.gz").read_text() == "whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2021"]
    link_work = made(".dvdoctor-rehydrate-2022", "whole")
    (tmp_path / "2022").symlink_to(tmp_path / "2021")
    with pytest.raises(StreamError, match="appeared"):
        _put_in_place(link_work, tmp_path / "2022", replace=True)
    assert (tmp_path / "2021" / "dv_backup.tar.gz").read_text() == "whole"
    # asked to replace, but the damaged folder is gone meanwhile: put in place, and not said replaced
    assert _put_in_place(link_work, tmp_path / "2023", replace=True) == (False, None)
