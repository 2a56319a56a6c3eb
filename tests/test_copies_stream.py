"""The copy stream without restic: a backup packs to a tar that deduplicates and unpacks byte for byte;
odd, cut or hostile input is a StreamError naming the member, never a wrong backup. Also the copy
Job's manifest (Kubernetes' schemas), the copies settings, and the lab's database-shaped data."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
import zlib
from pathlib import Path

import kubernetes_validate
import pytest

from dvdoctor.copies.stream import StreamError, pack, unpack
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
    unpacked = unpack(io.BytesIO(stream.getvalue()), folder)
    return packed, unpacked, folder, stream.getvalue()


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
    data = bytes(range(256)) * 4000
    a = _combined({"dv_backup_dv_engine.tar.gz": _component({"versioned/t1": data, "versioned/t2": b"day 1"})})
    b = _combined({"dv_backup_dv_engine.tar.gz": _component({"versioned/t1": data, "versioned/t2": b"day 2"})})
    out_a, out_b = io.BytesIO(), io.BytesIO()
    pack(io.BytesIO(a), out_a, {})
    pack(io.BytesIO(b), out_b, {})
    assert data in out_a.getvalue() and data in out_b.getvalue()  # gzip'd, the two would share nothing
    tarfile.open(fileobj=io.BytesIO(out_a.getvalue())).getnames()  # a tar any tool reads


@pytest.mark.parametrize("damage, words", [
    (lambda c: c[: len(c) // 2], "does not read back"),
    (lambda c: b"not gzip at all", "does not read back"),
    (lambda c: _combined({"dv_backup_dv_engine.tar.gz": _component({"f": b"x" * 5000})[:-30]}), "does not read back"),
    (lambda c: _combined({"notes.txt": b"no component"}), "no component tarball"),
    (lambda c: _combined({".dvdoctor/index.json": b"{}"}), "reserves"),
    (lambda c: _combined({"dv_backup_dv_engine.tar.gz": _component({".dvdoctor/x": b"1"})}), "reserves"),
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
    with pytest.raises(StreamError):
        unpack(io.BytesIO(raw[: len(raw) // 2]), tmp_path / "cut")
    at = raw.index(bytes(range(256)))
    altered = raw[:at] + b"\xff" + raw[at + 1:]
    with pytest.raises(StreamError, match="checksum"):
        unpack(io.BytesIO(altered), tmp_path / "altered")


def test_member_names_cannot_leave_the_folder(tmp_path):
    meta = {"member": "../../etc/evil.tar.gz", "mode": 0o644, "mtime": 0, "uid": 0, "gid": 0, "uname": "",
            "gname": "", "type": "0"}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        body = json.dumps(meta).encode()
        info = tarfile.TarInfo(".dvdoctor/component/0.json")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    with pytest.raises(StreamError, match="outside the backup folder"):
        unpack(io.BytesIO(raw.getvalue()), tmp_path / "f")
    assert not (tmp_path.parent / "etc").exists()


@pytest.mark.parametrize("version", VERSIONS)
def test_the_copy_job_is_valid_and_takes_the_repository_only_from_the_secret(version):
    from dvdoctor.copies.where import copy_job
    from dvdoctor.facts import Facts
    from dvdoctor.names import CopySettings, DEFAULT

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


def test_copies_settings_are_one_or_the_other(tmp_path):
    from dvdoctor.config import parse
    from dvdoctor.errors import UsageError

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


@pytest.mark.parametrize("how", ["plain", "pax", "gnu-long"])
def test_an_inner_entry_named_like_the_streams_own_is_refused_however_it_is_named(how):
    """pack and unpack read an entry's name the same way: a pax path or a GNU long name counts too."""
    raw = io.BytesIO()
    fmt = tarfile.GNU_FORMAT if how == "gnu-long" else tarfile.PAX_FORMAT
    with tarfile.open(fileobj=raw, mode="w", format=fmt) as tar:
        info = tarfile.TarInfo({"plain": ".dvdoctor/evil", "pax": "versioned/innocent",
                                "gnu-long": ".dvdoctor/file/" + "x" * 120}[how])
        if how == "pax":
            info.pax_headers = {"path": ".dvdoctor/file/dvdoctor-manifest.json"}
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    combined = _combined({"dv_backup_dv_engine.tar.gz": gzip.compress(raw.getvalue())})
    with pytest.raises(StreamError, match="reserves"):
        pack(io.BytesIO(combined), io.BytesIO(), {})


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
])
def test_restics_errors_become_one_line_that_says_what_to_do(stderr, words, usage):
    from dvdoctor.copies.restic import explain

    err = explain(stderr, "snapshots")
    assert words in str(err) and err.usage is usage and "\n" not in str(err)
