"""bar-fix.sh run for real with bash on temporary trees: real symlinks, real permission errors.

The pod's view is reproduced with DV_ROOT: the script sees /mnt/PV/bar under a temporary root.
"""

import os
import subprocess
from pathlib import Path

import pytest

from dvdoctor.facts import probe
from dvdoctor.repair.plan import parse_changes

SUDO_DIR = Path(__file__).resolve().parents[1] / "dvdoctor" / "lab" / "image" / "bin"
BAR_UID = 1000322824
ROOT = os.geteuid() == 0


def make_backup(bar: Path, ts: str, combined: bytes = b"x" * 100) -> None:
    (bar / ts).mkdir()
    (bar / ts / "dv_backup_dv_metastore.tar.gz").write_bytes(b"m" * 10)
    (bar / ts / "dv_backup_dv_engine.tar.gz").write_bytes(b"e" * 20)
    (bar / ts / "dv_backup.tar.gz").write_bytes(combined)


def run(root: Path, *args: str, uid: int | None = None, caps: bool = False, extra_env: dict[str, str] | None = None):
    env = {"PATH": f"{SUDO_DIR}:/usr/bin:/bin", "DV_ROOT": str(root), "BAR_DIR": "/mnt/PV/bar", "SYMLINK": "dv_backup.tar.gz",
           **(extra_env or {})}
    argv = ["bash", "-c", probe.script("bar-fix.sh"), "bar-fix", *args]
    if uid is not None:
        drop = ["setpriv", f"--reuid={uid}", "--regid=0", "--clear-groups"]
        if caps:
            drop += ["--inh-caps=+setuid,+setgid", "--ambient-caps=+setuid,+setgid"]
        argv = drop + ["--"] + argv
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    return proc.returncode, parse_changes(proc.stdout), proc.stdout + proc.stderr


def test_relink_points_at_the_chosen_backup_with_an_absolute_pod_path(root):
    bar = root / "mnt/PV/bar"
    make_backup(bar, "2021-01-21-10-00-00")
    make_backup(bar, "2021-01-22-19-27-31")
    os.symlink("/mnt/PV/bar/2021-01-21-10-00-00/dv_backup.tar.gz", bar / "dv_backup.tar.gz")
    rc, (changes, _, errors, complete), out = run(root, "relink", "2021-01-22-19-27-31")
    assert rc == 0 and complete and not errors, out
    assert os.readlink(bar / "dv_backup.tar.gz") == "/mnt/PV/bar/2021-01-22-19-27-31/dv_backup.tar.gz"
    assert changes[0].before == "/mnt/PV/bar/2021-01-21-10-00-00/dv_backup.tar.gz"
    assert not [p for p in bar.iterdir() if "dvdoctor-new" in p.name]  # the temporary link was renamed, not left


def test_relink_refuses_a_missing_backup_and_keeps_the_old_link(root):
    bar = root / "mnt/PV/bar"
    make_backup(bar, "2021-01-21-10-00-00")
    os.symlink("/mnt/PV/bar/2021-01-21-10-00-00/dv_backup.tar.gz", bar / "dv_backup.tar.gz")
    rc, (_, _, errors, _), _ = run(root, "relink", "2021-01-30-00-00-00")
    assert rc == 1 and "does not exist" in errors[0]
    assert os.readlink(bar / "dv_backup.tar.gz").endswith("2021-01-21-10-00-00/dv_backup.tar.gz")


def test_remove_never_touches_the_link_target(root):
    bar = root / "mnt/PV/bar"
    make_backup(bar, "2021-01-21-10-00-00")
    os.symlink("/mnt/PV/bar/2021-01-21-10-00-00/dv_backup.tar.gz", bar / "dv_backup.tar.gz")
    for rel in ("2021-01-21-10-00-00", "2021-01-21-10-00-00/dv_backup.tar.gz"):
        rc, (_, _, errors, _), _ = run(root, "remove", rel)
        assert rc == 1 and "symlink points into it" in errors[0]
    assert (bar / "2021-01-21-10-00-00/dv_backup.tar.gz").exists()
    # a component of the current backup may go: the combined tarball holds it
    rc, (changes, _, _, _), _ = run(root, "remove", "2021-01-21-10-00-00/dv_backup_dv_engine.tar.gz")
    assert rc == 0 and changes[0].before == "20 bytes"


def test_remove_takes_a_half_written_rehydrate_folder_and_no_other_hidden_name(root):
    """The one hidden name remove accepts is the folder a killed restore from a copy leaves; every
    other dot name (the volume's own, a planted `..` path) is refused as before."""
    bar = root / "mnt/PV/bar"
    partial = bar / ".dvdoctor-rehydrate-2021-01-21-10-00-00"
    partial.mkdir()
    (partial / "dv_backup_dv_engine.tar.gz").write_bytes(b"e" * 30)
    (bar / ".hidden").mkdir()
    for rel in (".hidden", ".dvdoctor-rehydrate-x", ".dvdoctor-rehydrate-2021-01-21-10-00-00/../.hidden"):
        rc, (_, _, errors, _), _ = run(root, "remove", rel)
        assert rc == 1 and "not a backup folder or file" in errors[0], rel
    assert (bar / ".hidden").is_dir()
    rc, (changes, _, errors, _), out = run(root, "remove", partial.name)
    assert rc == 0 and not errors and not partial.exists(), out
    assert changes[0].what == f"/mnt/PV/bar/{partial.name}" and changes[0].after == "removed"


def test_remove_takes_names_as_data_not_code(root, tmp_path):
    canary = tmp_path / "pwned"
    rc, (_, notes, errors, complete), out = run(root, "remove", f"x; touch {canary}", f"$(touch {canary})")
    assert complete and not errors, out
    assert not canary.exists()
    assert len(notes) == 2  # both reported as already gone: they were only ever path names


@pytest.mark.skipif(not ROOT, reason="needs root to drop to the BAR uid and get a real permission error")
def test_grant_gives_owner_write_to_the_bar_uid_not_0777(root):
    bar = root / "mnt/PV/bar"
    bar.chmod(0o755)  # root-owned, as the runbook's storage class leaves it
    rc, (_, _, errors, _), _ = run(root, "grant", uid=BAR_UID)  # without sudo rights it cannot
    assert rc == 1 and "still cannot write" in errors[0]
    rc, (changes, _, errors, complete), out = run(root, "grant", uid=BAR_UID, caps=True)
    assert rc == 0 and complete and not errors, out
    st = bar.stat()
    assert st.st_uid == BAR_UID and st.st_mode & 0o777 == 0o755  # owner write, nothing for the world
    assert changes[0].before == "755 0:0" and changes[0].after == f"755 {BAR_UID}:0"


@pytest.mark.skipif(not ROOT, reason="needs root to drop to the BAR uid and get a real permission error")
def test_grant_on_an_owned_read_only_folder_only_adds_owner_write(root):
    bar = root / "mnt/PV/bar"
    os.chown(bar, BAR_UID, 0)
    bar.chmod(0o555)
    rc, (changes, _, _, _), out = run(root, "grant", uid=BAR_UID)
    assert rc == 0, out
    assert bar.stat().st_mode & 0o777 == 0o755


def test_grant_on_a_writable_folder_changes_nothing(root):
    rc, (changes, notes, errors, complete), _ = run(root, "grant")
    assert rc == 0 and complete and not changes and "already writable" in notes[0]


TS = "2021-01-22-19-27-31"


def test_manifest_writes_the_json_from_its_env_atomically(root):
    bar = root / "mnt/PV/bar"
    make_backup(bar, TS)
    text = '{"instance": {"uid": "7caac0dc"}, "note": "tab\\t and \\u00e9"}'
    rc, (changes, _, errors, complete), out = run(root, "manifest", TS, extra_env={"MANIFEST": text})
    assert rc == 0 and complete and not errors, out
    target = bar / TS / "dvdoctor-manifest.json"
    assert target.read_text() == text + "\n"
    assert target.stat().st_mode & 0o777 == 0o644
    assert (changes[0].what, changes[0].before) == (f"/mnt/PV/bar/{TS}/dvdoctor-manifest.json", "(none)")
    first_inode = target.stat().st_ino
    rc, (changes, _, _, _), out = run(root, "manifest", TS, extra_env={"MANIFEST": "{}"})
    assert rc == 0, out
    assert target.read_text() == "{}\n" and changes[0].before == f"{len(text) + 1} bytes"
    assert target.stat().st_ino != first_inode  # renamed over the old one, never rewritten in place
    assert sorted(p.name for p in (bar / TS).iterdir()) == sorted(
        ["dv_backup.tar.gz", "dv_backup_dv_engine.tar.gz", "dv_backup_dv_metastore.tar.gz", "dvdoctor-manifest.json"])


def test_manifest_refuses_what_is_not_a_backup_folder(root, tmp_path):
    bar = root / "mnt/PV/bar"
    make_backup(bar, TS)
    (bar / "2021-01-23-00-00-00").write_text("a file, not a folder")
    (bar / "2021-01-24-00-00-00").symlink_to(tmp_path)  # a link out of the volume
    before = sorted(str(p) for p in root.rglob("*")) + sorted(str(p) for p in tmp_path.rglob("*"))
    for ts in ("", "..", f"{TS}/..", f"../{TS}", "dv_backup.tar.gz", "2021-01-30-00-00-00",
               "2021-01-23-00-00-00", "2021-01-24-00-00-00"):
        rc, (_, _, errors, complete), out = run(root, "manifest", ts, extra_env={"MANIFEST": "{}"})
        assert rc == 1 and complete and errors, (ts, out)
        assert "not a backup folder" in errors[0], (ts, errors)
    rc, (_, _, errors, _), _ = run(root, "manifest", TS, extra_env={"MANIFEST": ""})
    assert rc == 1 and "MANIFEST is empty" in errors[0]
    assert sorted(str(p) for p in root.rglob("*")) + sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_manifest_takes_names_and_content_as_data_not_code(root, tmp_path):
    bar = root / "mnt/PV/bar"
    make_backup(bar, TS)
    canary = tmp_path / "pwned"
    for ts in (f"{TS}; touch {canary}", f"{TS}$(touch {canary})", f"{TS}'\"; touch {canary}; \"'"):
        rc, (_, _, errors, _), _ = run(root, "manifest", ts, extra_env={"MANIFEST": "{}"})
        assert rc == 1 and "not a backup folder name" in errors[0]
    hostile = f'{{"x": "\'; touch {canary}; $(touch {canary}) `touch {canary}` %s %n"}}'
    rc, (_, _, errors, complete), out = run(root, "manifest", TS, extra_env={"MANIFEST": hostile})
    assert rc == 0 and complete and not errors, out
    assert (bar / TS / "dvdoctor-manifest.json").read_text() == hostile + "\n"  # written verbatim
    assert not canary.exists()


def test_the_probe_reads_back_what_manifest_wrote_and_reports_a_bad_one(root):
    from builders import run_bar_probe
    from dvdoctor.facts.backups import backups
    from dvdoctor.core.names import DEFAULT

    bar = root / "mnt/PV/bar"
    make_backup(bar, TS)
    make_backup(bar, "2021-01-23-00-00-00")
    make_backup(bar, "2021-01-24-00-00-00")
    assert run(root, "manifest", TS, extra_env={"MANIFEST": '{"instance": {"uid": "u1"}}'})[0] == 0
    (bar / "2021-01-23-00-00-00" / "dvdoctor-manifest.json").write_text("not json\n\tat all")
    by_ts = {b.timestamp: b for b in backups(run_bar_probe(root), DEFAULT.names)}
    assert by_ts[TS].manifest == {"instance": {"uid": "u1"}}
    assert by_ts["2021-01-23-00-00-00"].manifest is None
    assert by_ts["2021-01-23-00-00-00"].manifest_error.startswith("not JSON: ")
    assert (by_ts["2021-01-24-00-00-00"].manifest, by_ts["2021-01-24-00-00-00"].manifest_error) == (None, "")
