"""Files are written safely: every write goes to a mkstemp file in the target's folder and is renamed
over the target, so a symlink planted at the target's name or at a predictable temp name is never
written through; the audit log is never appended through a symlink; `lab destroy` removes only a
folder its own `lab create` made."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import builders as b
from dvdoctor.core.errors import UsageError
from dvdoctor.core.files import append_line, write_atomic
from dvdoctor.repair.fixer import FixOptions, load_all
from fixes_support import minimal_facts
from test_fix_dvcli import SCRIPT

VICTIM_TEXT = "root:x:0:0:root:/root:/bin/bash\n"


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file elsewhere that a planted symlink points at: it must keep its content."""
    path = tmp_path / "elsewhere" / "passwd"
    path.parent.mkdir()
    path.write_text(VICTIM_TEXT)
    return path


def test_a_symlink_planted_at_the_target_is_replaced_not_followed(tmp_path: Path, victim: Path):
    target = tmp_path / "report.json"
    target.symlink_to(victim)
    write_atomic(target, "{}\n", 0o640, what="--output-file json")
    assert victim.read_text() == VICTIM_TEXT
    assert not target.is_symlink() and target.read_text() == "{}\n"
    assert (target.stat().st_mode & 0o777) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "report.json"]  # no temp file left


def test_the_repaired_dvcli_copy_never_writes_through_a_planted_symlink(tmp_path: Path, victim: Path):
    """`fix --issue init-volume-pod-missing --dvcli`: links planted at the copy's name and at the temp
    name the old code used (.dvcli.dvdoctor.sh.tmp) leave their targets alone."""
    (tmp_path / "dvcli.sh").write_text(SCRIPT)
    other = tmp_path / "elsewhere" / "other"
    other.write_text(VICTIM_TEXT)
    (tmp_path / ".dvcli.dvdoctor.sh.tmp").symlink_to(victim)
    (tmp_path / "dvcli.dvdoctor.sh").symlink_to(other)
    fx = load_all()["init-volume-pod-missing"]
    options = FixOptions(dvcli=tmp_path / "dvcli.sh")
    plan = b.fix_plan("init-volume-pod-missing", minimal_facts(), options)
    assert len(plan.actions) == 1
    plan.actions[0].apply(None)
    assert victim.read_text() == VICTIM_TEXT and other.read_text() == VICTIM_TEXT
    fixed = tmp_path / "dvcli.dvdoctor.sh"
    assert not fixed.is_symlink() and "get job dv-init-volume" in fixed.read_text()
    assert (fixed.stat().st_mode & 0o777) == 0o755
    assert fx.verify(options)[0]


@pytest.mark.parametrize("make, named", [
    (lambda tmp: tmp / "a-folder", "is a folder"),
    (lambda tmp: tmp / "missing" / "facts.json", "does not exist"),
])
def test_an_output_path_that_cannot_be_a_file_is_one_line(tmp_path: Path, make, named: str):
    (tmp_path / "a-folder").mkdir()
    with pytest.raises(UsageError, match=named):
        write_atomic(make(tmp_path), "x", what="-o")


def test_the_audit_log_is_never_appended_through_a_symlink(tmp_path: Path, victim: Path):
    log = tmp_path / "audit.jsonl"
    log.symlink_to(victim)
    with pytest.raises(UsageError, match="symbolic link"):
        append_line(log, '{"fix": "x"}')
    assert victim.read_text() == VICTIM_TEXT
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match="not a regular file"):
        append_line(fifo, '{"fix": "x"}')
    append_line(tmp_path / "real.jsonl", '{"fix": "a"}')
    append_line(tmp_path / "real.jsonl", '{"fix": "b"}\n')
    assert (tmp_path / "real.jsonl").read_text() == '{"fix": "a"}\n{"fix": "b"}\n'
    assert ((tmp_path / "real.jsonl").stat().st_mode & 0o777) == 0o600


# ---- lab destroy -------------------------------------------------------------------------------

def _fake_lab(path: Path, lab_id: str = "abc123", meta_id: str | None = "abc123") -> Path:
    """A folder laid out as `lab create` lays one out, without its processes (destroy must not care)."""
    for d in ("objects", "volumes", "pods"):
        (path / d).mkdir(parents=True)
    (path / ".dvdoctor-lab").write_text(json.dumps({"lab_id": lab_id}))
    (path / "lab.json").write_text(json.dumps({"namespace": "cpd30", "lab_id": meta_id, "rules": []}))
    return path


@pytest.mark.parametrize("spoil, named", [
    (lambda p: (p / ".dvdoctor-lab").unlink(), "no .dvdoctor-lab marker"),
    (lambda p: (p / "notes.txt").write_text("mine"), "'notes.txt'"),
    (lambda p: (p / "lab.json").write_text(json.dumps({"namespace": "cpd30", "lab_id": "other"})), "names lab 'other'"),
    (lambda p: (p / ".dvdoctor-lab").write_text("{}"), "names no lab id"),
    (lambda p: (p / "pods").rmdir(), "pods/ is not a folder"),
])
def test_lab_destroy_refuses_a_folder_lab_create_did_not_make(tmp_path: Path, capsys, spoil, named: str):
    from dvdoctor.cli import run

    lab = _fake_lab(tmp_path / "lab")
    spoil(lab)
    before = sorted(str(p) for p in lab.rglob("*"))
    assert run(["lab", "destroy", str(lab)]) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1 and named in lines[0] and "refusing to remove it" in lines[0], lines
    assert sorted(str(p) for p in lab.rglob("*")) == before  # nothing removed


def test_lab_destroy_refuses_a_folder_that_only_holds_a_lab_json(tmp_path: Path, capsys):
    from dvdoctor.cli import run

    home = tmp_path / "home"
    home.mkdir()
    (home / "lab.json").write_text("{}")
    (home / "thesis.tex").write_text("years of work")
    assert run(["lab", "destroy", str(home)]) == 2
    assert (home / "thesis.tex").read_text() == "years of work"
    assert run(["lab", "create", "--force", str(home)]) == 2  # --force replaces only a lab, by the same rule
    assert (home / "thesis.tex").read_text() == "years of work"


def test_lab_destroy_removes_a_lab_whose_state_is_damaged(tmp_path: Path):
    """A damaged lab.json is a reason to remove the lab, not to keep it: the marker says what it is."""
    from dvdoctor.cli import run

    lab = _fake_lab(tmp_path / "lab")
    (lab / "lab.json").write_text('{"namespace": "cpd30", "lab_id": "abc1')
    assert run(["lab", "destroy", str(lab)]) == 0
    assert not lab.exists()


def test_an_output_that_is_a_stream_is_written_through_never_replaced(tmp_path: Path):
    """`-o /dev/stdout`, `-o /dev/null`, a named pipe: as root, the rename used for files would have put
    a regular file where the device was (break-it review: /dev/full became an 11 KB file)."""
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    write_atomic(fifo, "one report\n", 0o600, what="-o")
    reader.join(10)
    assert got == [b"one report\n"] and fifo.is_fifo()
    link = tmp_path / "stdout"
    link.symlink_to("/dev/null")
    write_atomic(link, "x" * 100_000, 0o600, what="-o")
    assert link.is_symlink() and Path("/dev/null").is_char_device()
    with pytest.raises(UsageError, match="-o /dev/full: cannot write: No space left on device"):
        write_atomic("/dev/full", "x", 0o600, what="-o")
    assert Path("/dev/full").is_char_device()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe", "stdout"]  # no temp file left


@pytest.mark.skipif(os.geteuid() != 0, reason="making a block device node needs root (CI runs as root)")
def test_an_output_that_is_a_block_device_is_refused(tmp_path: Path):
    import stat

    disk = tmp_path / "disk"
    os.mknod(disk, stat.S_IFBLK | 0o600, os.makedev(7, 200))  # a loop device number; never opened
    with pytest.raises(UsageError, match="is not a regular file \\(a block device\\)"):
        write_atomic(disk, "x", 0o600, what="--bundle")
    assert disk.is_block_device()


def test_an_output_named_by_this_processs_descriptor_is_written_on_it(tmp_path: Path):
    """Break-it review: `--output-file json=/dev/stdout > report.txt` made /dev/stdout (a link to
    /proc/self/fd/1, here to a regular file) a regular file in /dev, for every process, as root. A path
    that names one of this process's descriptors is written on that descriptor, after what it holds."""
    report = tmp_path / "report.txt"
    fd = os.open(report, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, b"the table\n")
        link = tmp_path / "stdout"
        link.symlink_to(f"/proc/self/fd/{fd}")  # as /dev/stdout is a link to /proc/self/fd/1
        write_atomic(link, "the json\n", 0o600, what="--output-file json")
        write_atomic(f"/dev/fd/{fd}", "the junit\n", 0o600, what="--output-file junit")
        os.write(fd, b"the summary\n")
    finally:
        os.close(fd)
    assert link.is_symlink() and os.readlink(link) == f"/proc/self/fd/{fd}"
    assert report.read_text() == "the table\nthe json\nthe junit\nthe summary\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.txt", "stdout"]


def test_two_outputs_of_one_command_may_not_name_one_file(tmp_path: Path):
    from dvdoctor.core.files import distinct_targets

    a = tmp_path / "a.xml"
    (tmp_path / "link").symlink_to(tmp_path)
    with pytest.raises(UsageError, match="the same file as --output-file junit"):
        distinct_targets([("--output-file junit", a), ("--output-file sarif", tmp_path / "link" / "a.xml")])
    distinct_targets([("-o", a), ("--bundle", tmp_path / "b.tgz"), ("--output-file json", Path("/dev/null")),
                      ("--output-file junit", Path("/dev/null"))])  # a stream takes several
