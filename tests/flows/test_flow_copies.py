"""Copies off the backup volume (issue 14), end to end on the lab with a real restic repository:
copy, idempotence, deduplication of a day's churn, restore from a copy after the whole backup
volume is gone, retention that keeps the newest, clear errors, and no secret in any output."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from dvdoctor.cli import run as dvdoctor_run
from labs import copy_lab, made_once_per_run, run_common_folder
from restic_repo import Template, cheap_key


RESTIC = shutil.which("restic")
pytestmark = pytest.mark.skipif(RESTIC is None, reason="restic is not installed (make test installs it as root on "
                                                        "Debian: apt-get install restic)")
PASSWORD = "pw-Rz9!copy-secret"


def copies_config(base: Path) -> Path:
    """base/dvdoctor.yaml with `copies:` set to the repository base/repo (not made here), opened by
    PASSWORD from base/restic-password (0600)."""
    pw = base / "restic-password"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)
    config = base / "dvdoctor.yaml"
    config.write_text(f"copies:\n  repository: {base / 'repo'}\n  password_file: {pw}\n")
    return config


@pytest.fixture
def copies(flow, monkeypatch):
    """The flow's lab with `copies:` set to a local repository (not yet created) and its password file."""
    config = copies_config(flow.base)
    monkeypatch.setenv("DVDOCTOR_CONFIG", str(config))
    flow.repo = flow.base / "repo"  # type: ignore[attr-defined]
    flow.config = config  # type: ignore[attr-defined]
    return flow


@pytest.fixture
def repository(copies, restic_repository):
    """The copies' repository, made: a copy of the session's (tests/restic_repo.py), opened by PASSWORD.
    `copy --init` makes one with restic for real in the tests of init itself."""
    restic_repository(copies.repo, PASSWORD)
    return copies.repo


@pytest.fixture(scope="session")
def copied_template(golden_lab_small, restic_template, tmp_path_factory):
    """A repository holding `copy`'s copy of the run's golden backup, made once per run by dvdoctor
    itself (`dvdoctor copy --yes` on a copy of the golden lab) and only ever copied (`copied`).

    Why: most tests here start from one copy of the lab's backup and go on from there; the copy a
    test made first cost it a gate and the copy program's six restic runs. The copy itself is what
    test_copy_is_idempotent_and_copies_only_good_backups and the others that copy first check."""
    def make(base: Path) -> None:
        config = copies_config(base)
        restic_template.copy_to(base / "repo", PASSWORD)
        copy_lab(golden_lab_small, base / "lab")
        with pytest.MonkeyPatch.context() as env:
            env.setenv("DVDOCTOR_CONFIG", str(config))
            env.setenv("DVDOCTOR_AUDIT", str(base / "audit.jsonl"))
            code = dvdoctor_run(["--lab", str(base / "lab"), "copy", "--yes"])
        assert code == 0, "dvdoctor copy of the golden lab's backup failed"

    yield from made_once_per_run(run_common_folder(tmp_path_factory), "copied-golden", make)


@pytest.fixture
def copied(copies, copied_template, restic_template, request):
    """The copies' repository, holding a copy of the lab's backup as `copy --yes` makes it: a copy of
    the run's (`copied_template`) with a repository id of its own, opened by PASSWORD.

    The repository is as that copy leaves it; this test's lab and audit log are not: the copy was not
    made from them (no `copy` record in the audit log, a lower resource counter in lab.json). A test
    of either makes its own copy. Of the small golden lab only: a `mib_backups` test's lab is another
    DV instance, whose backup this repository does not hold."""
    if request.node.get_closest_marker("mib_backups") is not None:
        pytest.fail("`copied` holds a copy of the small golden lab's backup: a mib_backups test makes its own",
                    pytrace=False)
    return Template(copied_template / "repo", restic_template.master).copy_to(copies.repo, PASSWORD)


def restic(flow, *args: str) -> str:
    """A read-only restic command on the flow's repository, as a test looks: without a lock (restic
    0.14 waits 200 ms after taking one), so it neither slows nor disturbs what dvdoctor runs."""
    done = subprocess.run([RESTIC, "-r", str(flow.repo), "--no-lock", *args], capture_output=True, text=True,
                          env={"RESTIC_PASSWORD": PASSWORD, "PATH": "/usr/bin:/bin", "HOME": str(flow.base)})
    assert done.returncode == 0, done.stderr
    return done.stdout


def snapshots(flow) -> list[dict]:
    return json.loads(restic(flow, "snapshots", "--json")) or []


def component_digests(folder: Path) -> dict[str, str]:
    """sha256 of each component tarball's uncompressed stream: what a copy must bring back."""
    return {p.name: hashlib.sha256(gzip.open(p).read()).hexdigest()
            for p in sorted(folder.glob("dv_backup_dv_*.tar.gz"))}


def test_copy_needs_a_repository_and_init_creates_it(copies):
    code, out, err = copies.dv("copy", "--yes")
    assert code == 2
    assert err.count("\n") == 1 and "no restic repository" in err and "copy --init" in err
    code, out, err = copies.dv("copy", "--init", "--yes")
    assert code == 0, out + err
    snaps = snapshots(copies)
    assert [s["tags"] for s in snaps if "backup=" + copies.current() in s["tags"]], snaps
    tags = set(snaps[0]["tags"])
    assert {"dvdoctor", "namespace=cpd30", "dvdoctor-copy=complete"} <= tags
    assert any(t.startswith("instance=") and len(t) > 20 for t in tags)
    expected = component_digests(copies.bar / copies.current())
    assert {f"sha256:{name}={digest}" for name, digest in expected.items()} <= tags


def test_copy_is_idempotent_and_copies_only_good_backups(copies, repository):
    assert copies.dv("copy", "--yes")[0] == 0
    code, out, err = copies.dv("list", "--copies", "--verify")
    assert code == 0 and "✓ restic check: every pack the repository's index names is there" in out, out + err
    # restic check lists every pack: check runs it with --verify only, and says so without it
    code, out, err = copies.dv("check", "--only", "copies-damaged", "-o", "json")
    [result] = json.loads(out)["results"]
    # asked for by name and not run: the answer is unknown (exit 3), never a clean verdict
    assert code == 3 and result["status"] == "skip" and "--verify" in result["reason"], out + err
    code, out, err = copies.dv("check", "--only", "copies-damaged", "--verify")
    assert code == 0 and "✓ copies-damaged" in out, out + err
    code, out, err = copies.dv("copy", "--yes")
    assert code == 0 and "already copied" in out and "nothing to copy" in out
    assert len(snapshots(copies)) == 1
    # a second backup, then one cut short: --all-new copies the good one only
    assert copies.backup("--yes")[0] == 0
    newest = copies.timestamps()[-1]
    broken = copies.bar / "2020-01-01-00-00-00"
    broken.mkdir()
    whole = (copies.bar / newest / "dv_backup.tar.gz").read_bytes()
    (broken / "dv_backup.tar.gz").write_bytes(whole[: len(whole) // 2])
    code, out, err = copies.dv("copy", "--all-new", "--yes", "-o", "json")
    assert code == 0, out + err
    result = json.loads(out)
    assert [r["copied"] for r in result["copied"]] == [newest]
    assert {t for s in snapshots(copies) for t in s["tags"] if t.startswith("backup=")} == {
        f"backup={ts}" for ts in copies.timestamps() if ts != broken.name}
    code, out, err = copies.dv("copy", "--from", broken.name, "--yes")
    assert code == 2 and "not a good backup" in err


def test_a_day_of_churn_adds_a_fraction_of_a_backup(copies, repository):
    """Deduplication works on the stream: after 2% churn of database-shaped data, the second copy adds far
    less than a whole backup to the repository (restic's stored bytes, compressed)."""
    from dvdoctor.lab import create_lab, destroy_lab

    destroy_lab(copies.lab)
    create_lab(copies.lab, data_size=24 * 1024 * 1024)
    assert copies.dv("copy", "--yes")[0] == 0
    one = (copies.bar / copies.current() / "dv_backup.tar.gz").stat().st_size
    before = json.loads(restic(copies, "stats", "--json", "--mode", "raw-data"))["total_size"]
    code, out, err = copies.dv("lab", "churn", str(copies.lab), "--percent", "2", "--scattered", "0", "--seed", "3")
    assert code == 0 and "changed" in out, out + err
    assert copies.dv("prune", "--keep", "1", "--yes")[0] == 0
    assert copies.backup("--yes")[0] == 0
    assert copies.dv("copy", "--yes")[0] == 0
    after = json.loads(restic(copies, "stats", "--json", "--mode", "raw-data"))["total_size"]
    # without deduplication the second copy would add a whole backup (gzip'd bytes share nothing day to day);
    # restic's chunk boundaries depend on its repository's random polynomial, so the bound leaves room
    assert after - before < 0.6 * one, (before, after, one)


@pytest.mark.mib_backups  # DV files large enough to travel framed (stream.py): the whole round trip
def test_restore_from_a_copy_after_the_backup_volume_is_lost(copies, repository):
    assert copies.backup("--yes")[0] == 0  # dvdoctor's backup: its manifest names this DV instance
    assert copies.dv("copy", "--yes")[0] == 0
    ts = copies.current()
    expected = component_digests(copies.bar / ts)
    data_before = copies.data_digest()
    lab = copies.cluster()
    pvc = lab.get("persistentvolumeclaims", "dv-bar-pvc")
    lab.patch("persistentvolumes", pvc["spec"]["volumeName"], {"spec": {"persistentVolumeReclaimPolicy": "Delete"}})
    lab.delete("persistentvolumeclaims", "dv-bar-pvc")
    assert not copies.bar.exists()
    victim = next(p for p in sorted(copies.data.rglob("*.LRG")))
    victim.write_bytes(b"damaged after the backup volume was lost")
    code, out, err = copies.restore("--from-copy", ts, "--yes")
    assert code == 0, out + err
    assert component_digests(copies.bar / ts) == expected
    assert copies.data_digest() == data_before
    assert copies.current() == ts
    code, out, err = copies.dv("list", "-o", "json")
    assert [b["timestamp"] for b in json.loads(out)["backups"]] == [ts]


def test_restore_from_copy_refuses_a_backup_still_on_the_volume(copies, copied):
    before = copies.snapshot()
    code, out, err = copies.restore("--from-copy", copies.current(), "--yes")
    assert code == 2 and f"restore --from {copies.current()}" in err
    assert copies.snapshot() == before


@pytest.mark.mib_backups  # DV files large enough to travel framed (stream.py): the whole round trip
def test_restore_from_copy_replaces_a_folder_of_that_name_found_damaged(copies, repository):
    """Break-it review (medium): the restore point's folder rotted on the volume, a good copy of it
    exists, and `restore --from-copy` refused ("still on dv-bar-pvc: restore --from"), which refused
    too (damaged), with no repair that may remove the restore point's folder. The copy is written
    back whole and verified, then takes the damaged folder's place; the restore runs from it."""
    assert copies.backup("--yes")[0] == 0
    assert copies.dv("copy", "--yes")[0] == 0
    ts = copies.current()
    expected = component_digests(copies.bar / ts)
    data_before = copies.data_digest()
    combined = copies.bar / ts / "dv_backup.tar.gz"
    combined.write_bytes(combined.read_bytes()[:2000])  # bit rot: cut short
    victim = next(p for p in sorted(copies.data.rglob("*.LRG")))
    victim.write_bytes(b"damaged after the backup")
    code, out, err = copies.restore("--from-copy", ts, "--yes")
    flat = " ".join((out + err).split())
    assert code == 0, out + err
    assert f"{ts} is back on dv-bar-pvc, in place of the damaged folder" in flat, out
    assert component_digests(copies.bar / ts) == expected
    assert copies.data_digest() == data_before and copies.current() == ts
    assert not [p.name for p in copies.bar.iterdir() if p.name.startswith(".dvdoctor-")]
    entries = [c for e in copies.audit_entries() for c in e["changes"] if c["what"].endswith(f"/{ts}")]
    assert any(c["before"].startswith("damaged (read back)") for c in entries), entries


@pytest.mark.mib_backups  # DV files large enough to travel framed (stream.py): the whole round trip
def test_restore_from_copy_takes_restics_full_snapshot_id(copies, repository):
    """The full id restic prints (and list --copies -o json shows as "id") names the copy, as its
    short id does."""
    assert copies.dv("copy", "--yes")[0] == 0
    ts = copies.current()
    expected = component_digests(copies.bar / ts)
    [full] = [s["id"] for s in snapshots(copies) if f"backup={ts}" in s["tags"]
              and "dvdoctor-copy=complete" in s["tags"]]
    listed = json.loads(copies.dv("list", "--copies", "-o", "json")[1])
    assert full in json.dumps(listed) and len(full) == 64
    shutil.move(str(copies.bar / ts), str(copies.base / "moved-off"))
    code, out, err = copies.restore("--from-copy", full, "--yes", "--accept-unverified-origin")
    assert code == 0, out + err
    assert component_digests(copies.bar / ts) == expected


def test_restore_from_copy_never_writes_through_a_link_planted_at_its_folder(copies, copied):
    """A symbolic link at `.dvdoctor-rehydrate-TS` (anyone who writes the volume can plant one) is
    removed, nothing is written where it points, and the restore stops on one line; check names such
    a link while it is there, without following it."""
    ts = copies.current()
    shutil.move(str(copies.bar / ts), str(copies.base / "moved-off"))
    outside = copies.base / "outside"
    outside.mkdir()
    link = copies.bar / f".dvdoctor-rehydrate-{ts}"
    link.symlink_to(outside)
    code, out, err = copies.dv("check", "--only", "incomplete-backups")
    text = " ".join(out.split())
    assert f"/mnt/PV/bar/{link.name} is a symbolic link to {outside}" in text, out + err
    code, out, err = copies.restore("--from-copy", ts, "--yes", "--accept-unverified-origin")
    assert code in (1, 2), out + err
    assert list(outside.iterdir()) == []
    assert not link.is_symlink(), out + err
    assert not (copies.bar / ts).exists() and not (copies.bar / ts).is_symlink()
    failed = [line for line in (out + err).splitlines() if "symbolic link" in line]
    assert len(failed) == 1 and "nothing written through it" in failed[0], out + err
    assert "back on" not in out
    # a dangling link at such a name is named too, and its fix removes the link itself
    other = copies.bar / ".dvdoctor-rehydrate-2020-01-02-03-04-05"
    other.symlink_to(copies.base / "nowhere")
    code, out, err = copies.dv("fix", "--issue", "incomplete-backups", "--yes")
    assert code == 0 and not other.is_symlink(), out + err
    assert not (copies.base / "nowhere").exists() and list(outside.iterdir()) == []


def test_prune_of_copies_keeps_the_newest(copies, copied):
    for _ in range(2):
        assert copies.backup("--yes")[0] == 0
        assert copies.dv("copy", "--yes")[0] == 0
        assert copies.dv("prune", "--keep", "1", "--yes")[0] == 0
    assert len(snapshots(copies)) == 3
    newest = max(t for s in snapshots(copies) for t in s["tags"] if t.startswith("backup="))
    code, out, err = copies.dv("prune", "--copies", "--keep-daily", "1", "--yes")
    assert code == 0, out + err
    left = snapshots(copies)
    assert [t for s in left for t in s["tags"] if t.startswith("backup=")] == [newest]
    code, out, err = copies.dv("prune", "--copies", "--yes")
    assert code == 2 and "--keep-daily" in err


def test_a_copy_killed_midway_is_no_copy(copies, copied, monkeypatch):
    """A stream that fails half-way never becomes a snapshot: restic is stopped before its input ends."""
    from dvdoctor.copies import restic as restic_mod
    from dvdoctor.copies.stream import StreamError

    assert copies.backup("--yes")[0] == 0
    r = restic_mod.Restic({"RESTIC_REPOSITORY": str(copies.repo), "RESTIC_PASSWORD": PASSWORD,
                           "HOME": str(copies.base), "PATH": "/usr/bin:/bin"})

    def feed(sink):
        sink.write(b"x" * 1024 * 1024)
        raise StreamError("cut")

    from datetime import datetime, timezone

    with pytest.raises(StreamError):
        r.backup_stream(feed, host="dvdoctor-cpd30", tags=["dvdoctor"], when=datetime.now(timezone.utc))
    assert len(snapshots(copies)) == 1


def test_wrong_password_and_unreachable_repository_are_one_line_exit_2(copies, copied):
    pw = copies.base / "restic-password"
    pw.write_text("not the password\n")
    code, out, err = copies.dv("list", "--copies")
    assert code == 2 and err.count("\n") == 1 and "password is wrong" in err
    copies.config.write_text(f"copies:\n  repository: rest:http://127.0.0.1:9/repo\n  password_file: {pw}\n")
    code, out, err = copies.dv("list", "--copies")
    assert code == 2 and err.count("\n") == 1, err
    assert "Traceback" not in out + err


@pytest.fixture
def silent_server():
    """A port on 127.0.0.1 that accepts connections and never answers (a hung repository server)."""
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:  # the listener closed: the test is over
                return

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()
    for conn in held:
        conn.close()


@pytest.mark.long_wait
def test_a_repository_that_never_answers_is_unreachable_not_a_hang(copies, silent_server, monkeypatch):
    """restic's short commands are stopped after a bound (shortened here to 2 s, 120 s by default):
    `list --copies` and `copy` end with one line, exit 2; `check` finishes and says the copies
    cannot be used."""
    from dvdoctor.copies import restic as restic_mod

    monkeypatch.setenv(restic_mod.ANSWER_TIMEOUT_ENV, "2")
    pw = copies.base / "restic-password"
    copies.config.write_text(f"copies:\n  repository: rest:http://127.0.0.1:{silent_server}/dv\n"
                             f"  password_file: {pw}\n")
    for args in (("list", "--copies"), ("copy", "--yes")):
        started = time.monotonic()
        code, out, err = copies.dv(*args)
        assert code == 2 and err.count("\n") == 1, (args, out, err)
        assert "did not answer within 2 s" in err, err
        assert time.monotonic() - started < 60
    started = time.monotonic()
    code, out, err = copies.dv("check", "--only", "copies-unusable,no-recent-copy")
    assert time.monotonic() - started < 60  # bounded, not a hang
    text = " ".join(out.split())
    assert code == 1, out + err
    assert "copies are configured, but their repository cannot be used" in text, text
    assert "did not answer within 2 s" in text and "could not be listed" in text, text


def test_a_repository_whose_config_makes_restic_crash_is_said_as_a_crash(copies, repository):
    """Garbage in the repository's `config` makes restic 0.14 panic: the one line names the crash and
    its panic message, not the last line of Go's stack trace, and points at restic check."""
    (copies.repo / "config").write_bytes(b"garbage")
    code, out, err = copies.dv("list", "--copies")
    assert code != 0 and err.count("\n") == 1, out + err
    assert "restic crashed reading the repository (panic: " in err and "restic check" in err, err
    assert "main.go" not in err and "Traceback" not in out + err


def test_no_secret_in_any_output(copies):
    outputs = []
    for args in (("copy", "--init", "--yes"), ("copy", "--yes"), ("list", "--copies"), ("list", "--copies", "-o", "json"),
                 ("collect", "-o", str(copies.base / "facts.json"))):
        code, out, err = copies.dv(*args)
        outputs.append(out + err)
        if args[1] == "--init":
            cheap_key(copies.repo, PASSWORD)  # restic's calibrated KDF is what init is for, not the rest
    outputs.append((copies.base / "facts.json").read_text())
    for text in outputs:
        assert PASSWORD not in text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("rclone") is None, reason="rclone is not installed (make test installs it as root "
                                                            "on Debian: apt-get install rclone)")
@pytest.mark.mib_backups  # DV files large enough to travel framed (stream.py): the whole round trip
def test_copy_and_restore_over_restics_rest_protocol(copies, restic_repository, tmp_path):
    """A real REST server (rclone serve restic) on 127.0.0.1: copy, list and bring back through it."""
    port = _free_port()
    store = tmp_path / "rest-store"
    restic_repository(store / "dv", PASSWORD)  # the repository the server serves as /dv
    server = subprocess.Popen(["rclone", "serve", "restic", "--addr", f"127.0.0.1:{port}", str(store)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        pw = copies.base / "restic-password"
        copies.config.write_text(f"copies:\n  repository: rest:http://127.0.0.1:{port}/dv\n  password_file: {pw}\n")
        assert copies.backup("--yes")[0] == 0
        assert copies.dv("copy", "--yes")[0] == 0
        ts = copies.current()
        expected = component_digests(copies.bar / ts)
        code, out, err = copies.dv("list", "--copies", "-o", "json")
        assert [c["backup"] for c in json.loads(out)["copies"]] == [ts]
        assert any((store / "dv" / "snapshots").iterdir())
        shutil.rmtree(copies.bar / ts)
        code, out, err = copies.restore("--from-copy", ts, "--yes")
        assert code == 0, out + err
        assert component_digests(copies.bar / ts) == expected
    finally:
        server.terminate()
        server.wait(10)


def test_no_recent_copy_names_the_uncopied_backup_and_its_fix_copies_it(copies, copied):
    code, out, err = copies.dv("check", "--only", "no-recent-copy")
    assert code == 0 and "✓ no-recent-copy" in out
    assert copies.backup("--yes")[0] == 0
    newest = copies.timestamps()[-1]
    code, out, err = copies.dv("check", "--only", "no-recent-copy")
    assert "no-recent-copy" in out and f"{newest}, has no copy" in out, out
    code, out, err = copies.dv("fix", "--issue", "no-recent-copy", "--yes")
    assert code == 0 and "verified" in out, out + err
    assert f"backup={newest}" in {t for s in snapshots(copies) for t in s["tags"]}
    [made] = [c for e in copies.audit_entries() if e["fix"] == "no-recent-copy" for c in e["changes"]]
    assert made["what"] == f"restic repository {copies.repo}: copy of backup {newest}"  # as `copy` audits it
    assert made["after"].startswith("snapshot ") and "unknown" not in made["after"]
    code, out, err = copies.dv("check", "--only", "no-recent-copy")
    assert code == 0 and "✓ no-recent-copy" in out


def test_no_recent_copy_is_skipped_with_its_reason_when_copies_are_not_configured(flow):
    code, out, err = flow.dv("check", "--only", "no-recent-copy")
    assert "copies are not configured" in " ".join(out.split()), out
    assert code == 3, out  # asked for by name, it could not run: not a clean verdict about nothing
    code, out, err = flow.dv("check")
    assert code == 0 and "skipped: copies: copies are not configured" in " ".join(out.split()), out


def test_copies_unusable_is_a_finding_and_no_recent_copy_says_it_cannot_tell(copies, copied):
    (copies.base / "restic-password").write_text("not the password\n")
    code, out, err = copies.dv("check", "--only", "copies-unusable,no-recent-copy")
    text = " ".join(out.split())
    assert code == 1, out + err
    assert "copies are configured, but their repository cannot be used" in text and "password is wrong" in text
    assert "could not be listed" in text


def test_a_killed_copy_leaves_no_lock_that_stops_the_next(copies, copied):
    """restic is interrupted, not killed, when a copy stops half-way: the next copy and prune go through."""
    from datetime import datetime, timezone

    from dvdoctor.copies import restic as restic_mod
    from dvdoctor.copies.stream import StreamError

    assert copies.backup("--yes")[0] == 0
    r = restic_mod.Restic({"RESTIC_REPOSITORY": str(copies.repo), "RESTIC_PASSWORD": PASSWORD,
                           "HOME": str(copies.base), "PATH": "/usr/bin:/bin"})

    def feed(sink):
        sink.write(b"x" * 4 * 1024 * 1024)
        raise StreamError("cut")

    with pytest.raises(StreamError):
        r.backup_stream(feed, host="dvdoctor-cpd30", tags=["dvdoctor"], when=datetime.now(timezone.utc))
    assert not any((copies.repo / "locks").iterdir())
    code, out, err = copies.dv("copy", "--yes")
    assert code == 0, out + err
    assert copies.dv("prune", "--copies", "--keep-daily", "1", "--yes")[0] == 0


def test_restore_from_copy_judges_the_origin_before_writing(copies, copied):
    """The lab's first backup has no manifest (DV's own job took it): with --yes alone nothing is written."""
    ts = copies.current()
    shutil.rmtree(copies.bar / ts)
    before = copies.snapshot()
    code, out, err = copies.restore("--from-copy", ts, "--yes")
    assert code == 2 and "--accept-unverified-origin" in err
    assert copies.snapshot() == before
    code, out, err = copies.restore("--from-copy", ts, "--yes", "--accept-unverified-origin")
    assert code == 0, out + err
    assert copies.current() == ts


def test_copy_json_names_what_was_skipped(copies, copied):
    code, out, err = copies.dv("copy", "--yes", "-o", "json")
    assert code == 0 and json.loads(out)["skipped"] == [copies.current()]


def test_copies_made_removed_and_written_back_are_audited_without_the_password(copies, repository):
    """copy, prune --copies and restore --from-copy each record what they changed (the snapshot, the
    backup, the repository shown redacted) in the audit log, and the password is nowhere in it."""
    assert copies.dv("copy", "--yes")[0] == 0
    first = copies.current()
    # each run of the copy program is on record twice: its intent before it starts, then its outcome
    done = [e for e in copies.audit_entries() if "state" not in e]
    assert [e["action"] for e in copies.audit_entries() if e.get("state") == "in progress"] == [
        e["action"] for e in done]
    made = [e for e in done if e["fix"] == "copy"]
    assert len(made) == 1 and not made[0].get("error"), made
    [change] = made[0]["changes"]
    ids = {s["short_id"]: s["tags"] for s in snapshots(copies)}
    snap = next(i for i, tags in ids.items() if f"backup={first}" in tags)
    assert change["what"] == f"restic repository {copies.repo}: copy of backup {first}"
    assert change["before"] == "no copy" and change["after"].startswith(f"snapshot {snap} ")
    assert made[0]["namespace"] == "cpd30"
    # a second backup and its copy, then a policy that keeps only the newest copy
    assert copies.backup("--yes")[0] == 0
    assert copies.dv("copy", "--yes")[0] == 0
    code, out, err = copies.dv("prune", "--copies", "--keep-daily", "1", "--yes")
    assert code == 0, out + err
    [removed] = [e for e in copies.audit_entries() if e["fix"] == "prune" and "state" not in e]
    assert [c["before"] for c in removed["changes"]] == [f"copy of backup {first}"]
    assert removed["changes"][0]["what"] == f"restic repository {copies.repo}: snapshot {snap}"
    assert removed["changes"][0]["after"].startswith("removed")
    # the newest backup is lost from the volume and written back from its copy
    newest = copies.current()
    shutil.rmtree(copies.bar / newest)
    code, out, err = copies.restore("--from-copy", newest, "--yes")
    assert code == 0, out + err
    [back] = [e for e in copies.audit_entries() if e["fix"] == "restore" and "write copy" in e["action"]
              and "state" not in e]
    [change] = back["changes"]
    assert change["what"] == f"persistentvolumeclaims/dv-bar-pvc:/mnt/PV/bar/{newest}"
    assert change["before"] == "absent" and f"restic repository {copies.repo}" in change["after"]
    assert PASSWORD not in copies.audit.read_text()


def test_a_repository_url_is_audited_without_its_credentials(copies):
    from dvdoctor.core.names import CopySettings
    from dvdoctor.repair.copying import repository_shown

    shown = repository_shown(CopySettings(repository=f"rest:https://dv:{PASSWORD}@backup.example:8000/dv"))
    assert PASSWORD not in shown and "backup.example:8000/dv" in shown
    assert repository_shown(CopySettings(secret="dv-copies")) == "the repository of secret/dv-copies"


def _left_by_a_killed_rehydrate(flow, ts: str, size: int) -> Path:
    """The hidden folder a `copies.job rehydrate` killed with -9 leaves: a component tarball cut short,
    owned as the copy program's files are (the BAR uid, the volume's owner)."""
    import os

    work = flow.bar / f".dvdoctor-rehydrate-{ts}"
    work.mkdir()
    (work / "dv_backup_dv_engine.tar.gz").write_bytes(b"\x1f\x8b" + b"x" * (size - 2))
    owner = flow.bar.stat()
    for p in (work, *work.iterdir()):
        os.chown(p, owner.st_uid, owner.st_gid)
    return work


def test_a_killed_restore_from_copy_leaves_a_folder_check_names_and_its_fix_removes(copies):
    work = _left_by_a_killed_rehydrate(copies, "2020-01-02-03-04-05", 3 * 1024 * 1024)
    code, out, err = copies.dv("check", "--only", "incomplete-backups")
    text = " ".join(out.split())
    assert code == 0, out + err  # a warning: the verdict stays clean unless --fail-on warn
    assert f"/mnt/PV/bar/{work.name} is backup 2020-01-02-03-04-05 half-written back" in text, text
    assert "3.0 MiB" in text and "dvdoctor fix --issue incomplete-backups removes it" in text
    assert copies.dv("check", "--only", "incomplete-backups", "--fail-on", "warn")[0] == 1
    # the backups themselves are untouched; only the half-written folder goes, and the removal is audited
    before = copies.timestamps()
    code, out, err = copies.dv("fix", "--issue", "incomplete-backups", "--yes")
    assert code == 0 and "verified" in out, out + err
    assert not work.exists() and copies.timestamps() == before
    [entry] = [e for e in copies.audit_entries() if e["fix"] == "incomplete-backups"]
    assert entry["changes"][0]["what"] == f"/mnt/PV/bar/{work.name}" and entry["changes"][0]["after"] == "removed"
    assert copies.dv("check", "--only", "incomplete-backups", "--fail-on", "warn")[0] == 0


def test_a_folder_a_running_restore_from_copy_writes_is_left_alone(copies):
    """While `restore --from-copy` holds dvdoctor's lock its folder is in progress: not reported, and a
    fix (which would wait for the lock anyway) plans nothing for it."""
    from dvdoctor.cluster.lock import Lock

    _left_by_a_killed_rehydrate(copies, "2020-01-02-03-04-05", 1024)
    with Lock(copies.cluster(), "dvdoctor restore --from-copy 2020-01-02-03-04-05").acquire():
        code, out, err = copies.dv("check", "--only", "incomplete-backups", "--fail-on", "warn")
    assert code == 0 and ".dvdoctor-rehydrate-" not in out, out + err


def test_a_copy_is_audited_under_the_snapshot_id_list_copies_shows(copies, repository, program_runs):
    """Tagging a copy complete writes its snapshot anew under another id: copy's own record and the
    audit log name that final id, the one `list --copies -o json` shows (not the id restic backup
    printed), and the copy program is not run again after the copy to find it."""
    actions = program_runs
    code, out, err = copies.dv("copy", "--yes", "-o", "json")
    assert code == 0, out + err
    assert actions[-1] == "copy", actions  # nothing run after the copy: the id came with its record
    [record] = json.loads(out)["copied"]
    code, out, err = copies.dv("list", "--copies", "-o", "json")
    assert code == 0, out + err
    [listed] = json.loads(out)["copies"]
    assert record["copied"] == listed["backup"] == copies.current()
    assert record["snapshot"] == listed["snapshot"]
    [change] = [c for e in copies.audit_entries() if e["fix"] == "copy" for c in e["changes"]]
    assert change["after"].startswith(f"snapshot {listed['snapshot']} ("), change
    # the id restic backup printed is another one: the snapshot was written anew by tagging
    [snap] = snapshots(copies)
    assert snap["short_id"] == listed["snapshot"]
    assert snap["original"] and not snap["original"].startswith(listed["snapshot"])
    assert snap["original"][:8] not in json.dumps(copies.audit_entries())


def _repository_files(repo: Path) -> dict[str, str]:
    """Every file of a restic repository and its sha256: any write, a lock left behind included, shows."""
    return {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(repo.rglob("*")) if p.is_file()}


def _plan_rows(table: str) -> set[tuple[str, str, str, str]]:
    """(backup, snapshot, plan, why) of each row of prune --copies' plain table."""
    rows = set()
    for line in table.splitlines():
        cells = line.split(None, 3)
        if len(cells) == 4 and cells[2] in ("remove", "keep") and cells[0][:2] == "20":
            rows.add((cells[0], cells[1], cells[2], cells[3].strip()))
    return rows


def test_prune_of_copies_dry_run_lists_what_the_real_prune_then_removes(copies, repository):
    """`prune --copies --dry-run` names each copy it would remove and each it keeps with restic's
    reason (newest, daily, weekly, monthly), as a table and as JSON; it changes nothing in the
    repository; and the real prune then removes exactly the copies it named, keeping the others. A
    copy left incomplete by a killed run is removed first and never counts as the newest."""
    current = copies.current()
    # good backups of other days, months and weeks: the lab's backup, as it would be on those days
    # (the 5th and the 7th of May 2025 are one ISO week; April 2nd and 28th one month)
    older = ["2025-03-14-10-00-00", "2025-04-02-10-00-00", "2025-04-28-10-00-00", "2025-05-05-10-00-00",
             "2025-05-07-10-00-00"]
    for ts in older:
        shutil.copytree(copies.bar / current, copies.bar / ts, symlinks=True)
    code, out, err = copies.dv("copy", "--all-new", "--yes")
    assert code == 0, out + err
    code, out, err = copies.dv("list", "--copies", "-o", "json")
    listed = {c["backup"]: c["snapshot"] for c in json.loads(out)["copies"]}
    assert sorted(listed) == sorted(older + [current])
    instance = json.loads(out)["copies"][0]["instance"]
    # a copy killed after restic saved it but before it was tagged complete: the newest snapshot of all
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    done = subprocess.run([RESTIC, "-r", str(copies.repo), "backup", "--stdin", "--stdin-filename", "dv-backup.tar",
                           "--host", "dvdoctor-cpd30", "--time", stamp, "--tag",
                           f"dvdoctor,instance={instance},namespace=cpd30,backup={current}"],
                          input=b"cut short", capture_output=True,
                          env={"RESTIC_PASSWORD": PASSWORD, "PATH": "/usr/bin:/bin", "HOME": str(copies.base)})
    assert done.returncode == 0, done.stderr
    [killed] = [s["short_id"] for s in snapshots(copies) if "dvdoctor-copy=complete" not in s["tags"]]

    policy = ("--keep-daily", "2", "--keep-weekly", "2", "--keep-monthly", "3")
    before = _repository_files(copies.repo)
    code, out, err = copies.dv("prune", "--copies", *policy, "--dry-run", "-o", "json")
    assert code == 0, out + err
    plan = json.loads(out)
    assert plan["dry_run"] is True and plan["namespace"] == "cpd30"
    kept = {e["backup"]: e["why"] for e in plan["keep"]}
    assert kept == {current: ["newest", "daily", "weekly", "monthly"], "2025-05-07-10-00-00": ["daily", "weekly", "monthly"],
                    "2025-04-28-10-00-00": ["monthly"]}
    removed = {e["snapshot"]: (e["backup"], e["why"]) for e in plan["remove"]}
    assert removed == {listed["2025-03-14-10-00-00"]: ("2025-03-14-10-00-00", ["outside the policy"]),
                       listed["2025-04-02-10-00-00"]: ("2025-04-02-10-00-00", ["outside the policy"]),
                       listed["2025-05-05-10-00-00"]: ("2025-05-05-10-00-00", ["outside the policy"]),
                       killed: (current, ["incomplete (stopped, or restic check failed)"])}
    assert {e["snapshot"] for e in plan["keep"]} == {listed[t] for t in kept}
    # the table says the same, row for row
    code, table, err = copies.dv("prune", "--copies", *policy, "--dry-run")
    assert code == 0, table + err
    assert _plan_rows(table) == ({(e["backup"], e["snapshot"], "remove", ", ".join(e["why"])) for e in plan["remove"]}
                                 | {(e["backup"], e["snapshot"], "keep", ", ".join(e["why"])) for e in plan["keep"]})
    assert "--dry-run: nothing was changed; 4 copies would be removed, 3 kept." in table
    assert _repository_files(copies.repo) == before, "a dry run wrote to the repository"

    # the real prune removes exactly what the dry run listed
    ids_before = {s["short_id"] for s in snapshots(copies)}
    code, out, err = copies.dv("prune", "--copies", *policy, "--yes", "-o", "json")
    assert code == 0, out + err
    ids_after = {s["short_id"] for s in snapshots(copies)}
    assert ids_before - ids_after == set(removed)
    assert ids_after == {e["snapshot"] for e in plan["keep"]}
    assert sorted(json.loads(out)["removed"]) == sorted(removed)
    assert "as planned" in err


@pytest.fixture
def program_runs(monkeypatch) -> list[str]:
    """The actions of each run of the copy program on this machine, in order (each run opens the
    repository; in a cluster each is a Job)."""
    from dvdoctor.copies import where

    actions: list[str] = []
    made = where.local_run

    def counted(*args, **kwargs):
        run = made(*args, **kwargs)

        def wrapper(argv: list[str], write: bool):
            actions.append(argv[0])
            return run(argv, write)
        return wrapper

    monkeypatch.setattr(where, "local_run", counted)
    return actions


def test_copy_and_list_copies_use_the_copies_the_facts_listed(copies, repository, program_runs):
    """The facts already list the copies (one run of the copy program); copy and list --copies use
    that list, not another."""
    for args, expected in ((("copy", "--yes"), ["snapshots", "copy"]),
                           (("list", "--copies"), ["snapshots"])):
        program_runs.clear()
        code, out, err = copies.dv(*args)
        assert code == 0, out + err
        assert program_runs == expected, (args, program_runs)
    assert "1 copy of this DV instance" in copies.dv("list", "--copies")[1]


def test_a_flow_lists_the_copies_for_its_gate_only(copies, copied, program_runs):
    """backup, prune and restore list the copies once, for the gate's checks (no-recent-copy,
    copies-unusable); what they collect again mid-run (DV's pods, the new backup, the pruned
    volume) reads no copy, so it lists none."""
    for run, expected in ((lambda: copies.backup("--yes"), ["snapshots"]),
                          (lambda: copies.dv("prune", "--keep", "1", "--yes"), ["snapshots"]),
                          (lambda: copies.restore("--yes"), ["snapshots"])):
        program_runs.clear()
        code, out, err = run()
        assert code == 0, out + err
        assert program_runs == expected, program_runs
    code, out, err = copies.dv("check", "--only", "no-recent-copy")
    assert "no-recent-copy" in out and "has no copy" in out, out  # the gate still sees the copies


def test_a_damaged_pack_is_said_as_damage_not_as_a_short_copy(copies, copied):
    """Bytes flipped inside a pack of the repository (bit rot): restic cannot decrypt a blob of the
    copy, and restore --from-copy says the repository's data is damaged, in restic's own words,
    with the command that finds every damaged pack; nothing is left on the volume."""
    ts = copies.current()
    shutil.rmtree(copies.bar / ts)
    before = copies.snapshot()
    pack = max((p for p in (copies.repo / "data").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    pack.chmod(0o600)
    data = bytearray(pack.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 64):
        data[i] ^= 0xFF
    pack.write_bytes(bytes(data))
    code, out, err = copies.restore("--from-copy", ts, "--yes", "--accept-unverified-origin")
    text = out + err
    assert code == 1, text
    assert "the repository's data is damaged" in text and "ciphertext verification failed" in text, text
    assert "restic check --read-data" in text and "cut short" not in text, text
    assert copies.snapshot() == before


def _volume_state(flow) -> dict[str, tuple[int, int, int]]:
    """Every entry of the backup volume with its mtime, size and mode: a folder made and removed at
    once (a write probe) still changes its parent's mtime."""
    volume = flow.lab / "volumes" / "dv-bar-pvc"
    return {str(p.relative_to(volume)): (p.lstat().st_mtime_ns, p.lstat().st_size, p.lstat().st_mode)
            for p in [volume, *sorted(volume.rglob("*"))]}


def test_copy_leaves_the_backup_volume_as_it_found_it(copies, repository):
    """A copy only reads the volume (its Job mounts it read-only): the inspection it starts with tries
    no write either, so no entry is made, removed or touched; bar-permissions, judged on such facts,
    says writes were not tried instead of passing."""
    before = _volume_state(copies)
    code, out, err = copies.dv("copy", "--yes")
    assert code == 0 and "copied" in out, out + err
    assert _volume_state(copies) == before
    from dvdoctor.facts.collect import collect
    from dvdoctor.verdicts.registry import Run, run_checks

    facts = collect(copies.cluster(), probe_writes=False)
    [result] = run_checks(facts, Run(), only=["bar-permissions"])
    assert result.status == "skip" and not result.incomplete and "writes were not tried" in str(result.reason), result
    assert _volume_state(copies) == before


def _copy_programs(flow) -> list[int]:
    """The copy programs running on this flow's lab (each has its backup volume folder as DV_BAR)."""
    import os

    mine = f"DV_BAR={flow.bar}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read()
        except OSError:
            continue
        if mine in env and b"dvdoctor.copies.job" in argv:
            pids.append(int(entry))
    return pids


def test_dvdoctor_killed_while_the_copy_program_runs_leaves_the_copy_on_record(copies, repository):
    """kill -9 of dvdoctor once the copy program has started: the program runs on to a complete copy
    (as a Job would), and the audit log already names it, in progress: the backup, the repository
    (as redaction shows it), written before the program started."""
    import os
    import signal
    import sys

    child = Path(__file__).with_name("child_signalled_at_step.py")
    ts = copies.current()
    proc = subprocess.run([sys.executable, str(child), "copy-program", "SIGKILL", "--lab", str(copies.lab), "copy",
                           "--yes"], capture_output=True, text=True, env=dict(os.environ, COLUMNS="200"), timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    deadline = time.monotonic() + 90
    while _copy_programs(copies) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _copy_programs(copies)
    assert [s for s in snapshots(copies) if "dvdoctor-copy=complete" in s["tags"] and f"backup={ts}" in s["tags"]]
    [entry] = [e for e in copies.audit_entries() if e["fix"] == "copy"]
    assert entry["state"] == "in progress" and entry["changes"] == [], entry
    assert entry["action"] == f"copy {ts} into the restic repository"
    [planned] = entry["planned"]
    assert planned["what"] == f"restic repository {copies.repo}: copy of backup {ts}"
    assert planned["before"] == "no copy" and planned["after"].startswith("in progress")
    assert PASSWORD not in copies.audit.read_text()


def test_a_tag_that_looks_like_markup_is_listed_literally(copies, copied):
    """A copy's restic tag is the repository's data: `list --copies` and `prune --copies` show it as it
    is (table and JSON), never parse it as rich markup."""
    (snap,) = snapshots(copies)
    done = subprocess.run([RESTIC, "-r", str(copies.repo), "tag", "--add", "backup=[/]", "--add", "[bold]x", snap["id"]],
                          capture_output=True, text=True,
                          env={"RESTIC_PASSWORD": PASSWORD, "PATH": "/usr/bin:/bin", "HOME": str(copies.base)})
    assert done.returncode == 0, done.stderr
    for args in (("list", "--copies"), ("list", "--copies", "-o", "json"),
                 ("prune", "--copies", "--keep-daily", "1", "--dry-run")):
        code, out, err = copies.dv(*args)
        assert code == 0, out + err
        assert "Traceback" not in err and "MarkupError" not in out + err
    code, out, err = copies.dv("list", "--copies", "-o", "json")
    shown = [c["backup"] for c in json.loads(out)["copies"]]
    code, table, err = copies.dv("list", "--copies")
    for name in shown:
        assert name in table


def test_dvdoctor_terminated_while_the_copy_program_runs_stops_it_and_says_so(copies, repository):
    """SIGTERM to dvdoctor alone once the copy program runs (a Job's deadline, `kill`): as Ctrl-C, the
    program is stopped (restic saves no snapshot of a stream it never finished), the lock is
    released, one line says so, exit 130; never a half-made snapshot, never the lock left behind."""
    import os
    import sys

    from dvdoctor.cluster.lock import LEASE_NAME

    child = Path(__file__).with_name("child_signalled_at_step.py")
    ts = copies.current()
    proc = subprocess.run([sys.executable, str(child), "copy-program", "SIGTERM", "--lab", str(copies.lab), "copy",
                           "--yes"], capture_output=True, text=True, env=dict(os.environ, COLUMNS="200"), timeout=120)
    assert proc.returncode == 130, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines()[-1:] == ["dvdoctor: interrupted"], proc.stdout + "//" + proc.stderr
    # what it left, and what clears it, is said first (break-it review, low)
    assert f"dvdoctor: stopped copying {ts}: a copy not finished stays incomplete" in proc.stderr, proc.stderr
    assert not _copy_programs(copies)  # stopped, not left running
    assert copies.cluster().get("leases", LEASE_NAME) is None
    # stopped by SIGINT, restic saves nothing; a program killed outright would leave restic a cut
    # stream's snapshot, untagged (the copy may also have ended just before the signal: then whole)
    mine = [s for s in snapshots(copies) if f"backup={ts}" in s["tags"]]
    assert all("dvdoctor-copy=complete" in s["tags"] for s in mine), mine


def test_a_copy_into_a_repository_that_lost_a_pack_is_not_called_complete(copies, copied):
    """Break-it review (high): restic deduplicates against its index, so after pack files were lost a
    new copy was saved without error, tagged complete and listed as such, and its restore failed.
    `copy` runs `restic check` before it calls any copy complete: the repository's damage is the
    one line, exit 1, and no-recent-copy keeps naming the backup."""
    # the packs of data blobs (restic retries a lost tree's pack for a minute and a half before check
    # says so); the second copy shares their chunks
    indexes = [json.loads(restic(copies, "cat", "index", i)) for i in restic(copies, "list", "index").split()]
    data_packs = {p["id"] for doc in indexes for p in doc["packs"] if all(b["type"] == "data" for b in p["blobs"])}
    assert data_packs
    for pack in data_packs:
        path = copies.repo / "data" / pack[:2] / pack
        path.chmod(0o600)
        path.unlink()
    assert copies.backup("--yes")[0] == 0
    new = copies.current()
    code, out, err = copies.dv("copy", "--yes")
    flat = " ".join((out + err).split())
    assert code == 1, out + err
    assert f"{new}" in flat and "the repository is damaged (pack " in flat and ": does not exist)" in flat, out + err
    assert "the copy was saved but is not marked complete" in flat, out + err
    tagged = [s["tags"] for s in snapshots(copies) if f"backup={new}" in s["tags"]]
    assert tagged and not any("dvdoctor-copy=complete" in t for t in tagged), tagged
    code, out, _ = copies.dv("check", "--only", "no-recent-copy")
    assert f"the newest good backup, {new}, has no copy off dv-bar-pvc" in " ".join(out.split()), out
    # `list --copies` still lists the first copy complete; --verify runs the same check and says so
    code, out, err = copies.dv("list", "--copies", "--verify")
    flat = " ".join((out + err).split())
    assert code == 1 and "✗ restic check: the repository is damaged (pack " in flat, out + err
    code, out, err = copies.dv("list", "--copies", "--verify", "-o", "json")
    check = json.loads(out)["repository_check"]
    assert code == 1 and check["ok"] is False and "does not exist" in check["error"], out + err
    # and `check --verify` names it (copies-damaged); without --verify it cannot know, and says so
    code, out, err = copies.dv("check", "--verify", "--only", "copies-damaged")
    flat = " ".join((out + err).split())
    assert code == 1 and "the repository of copies is damaged: a copy listed complete may not restore" in flat, out + err
    assert "restic check: the repository is damaged (pack " in flat and "listed complete" in flat, out + err
    assert "restic check: restic check" not in flat, out  # named once
    code, out, err = copies.dv("check", "--only", "copies-damaged")
    assert code == 3 and "could not run" in out and "--verify" in out, out + err
    # nor does a prune of the copies remove any from it: those left may be the only ones that restore
    before = snapshots(copies)
    code, out, err = copies.dv("prune", "--copies", "--keep-daily", "1", "--yes")
    assert code == 1 and "the repository is damaged (pack " in " ".join((out + err).split()), out + err
    assert snapshots(copies) == before


def test_copy_and_prune_of_copies_refuse_while_dvs_job_runs(copies, copied):
    """Break-it review (low): `copy` and `prune --copies` ran beside DV's running backup while `fix
    --issue no-recent-copy`, which runs the same copy, refused. In a cluster each is a Job in DV's
    namespace, which DV's own job owns while it runs: both refuse, changing nothing."""
    from dvdoctor.lab import break_lab

    break_lab(copies.lab, "bar-job-unattended")
    before = snapshots(copies)
    for args in (("copy", "--all-new", "--yes"), ("prune", "--copies", "--keep-daily", "1", "--yes")):
        code, out, err = copies.dv(*args)
        assert code == 2 and "DV's own job owns namespace cpd30 while it runs" in err, (args, out, err)
    assert snapshots(copies) == before
    code, out, err = copies.dv("prune", "--copies", "--keep-daily", "1", "--dry-run")
    assert code == 0, out + err  # a dry run changes nothing: it may look


def test_init_never_writes_a_config_into_a_folder_that_holds_a_repository(copies, repository):
    """Break-it review (low): with its config file lost, a repository was "not there" and `copy
    --init` (what the message advised) wrote a new config beside the old keys and data, which then
    opened with neither. --init refuses a folder that holds files, changing nothing."""
    (copies.repo / "config").chmod(0o600)
    (copies.repo / "config").unlink()
    before = _repository_files(copies.repo)
    code, out, err = copies.dv("copy", "--init", "--yes")
    assert code == 2 and "already holds files (a repository that lost its config?)" in err, out + err
    assert _repository_files(copies.repo) == before


def test_dvdoctor_terminated_while_writing_a_copy_back_says_what_it_left(copies, copied):
    """Break-it review (low): SIGTERM during `restore --from-copy` printed only "interrupted"; the
    half-written folder it may leave, and the repair that removes it, are said first."""
    import os
    import sys

    child = Path(__file__).with_name("child_signalled_at_step.py")
    ts = copies.current()
    assert copies.backup("--yes")[0] == 0 and copies.dv("prune", "--keep", "1", "--yes")[0] == 0
    assert ts not in copies.timestamps()
    proc = subprocess.run([sys.executable, str(child), "copy-program", "SIGTERM", "--lab", str(copies.lab), "restore",
                           "--from-copy", ts, "--yes", "--accept-unverified-origin"], capture_output=True, text=True,
                          env=dict(os.environ, COLUMNS="200"), timeout=120)
    assert proc.returncode == 130 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    assert f"dvdoctor: stopped writing backup {ts} back: what was written is in .dvdoctor-rehydrate-{ts}" in \
        proc.stderr and "`dvdoctor fix --issue incomplete-backups` removes" in proc.stderr, proc.stderr
    assert ts not in copies.timestamps()  # never half a backup under its own name


def test_a_copy_beside_another_instances_copy_into_the_same_repository_is_complete(copies, repository):
    """Each DV instance's schedule copies into one shared repository, often at the same hour. restic's
    check took an exclusive lock, which the other copy's lock held off: the copy was saved and not
    marked complete (exit 1), night after night. The check runs without a lock now."""
    other = subprocess.Popen([RESTIC, "-r", str(copies.repo), "backup", "--stdin", "--stdin-filename", "other",
                              "--host", "another-instance", "--quiet"],
                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={"RESTIC_PASSWORD": PASSWORD, "PATH": "/usr/bin:/bin", "HOME": str(copies.base)})
    try:
        deadline = time.monotonic() + 30
        while not any((copies.repo / "locks").iterdir()):  # the other copy holds its lock
            assert other.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        code, out, err = copies.dv("copy", "--yes")
        assert code == 0, out + err
        assert other.poll() is None  # it was still copying all along
    finally:
        other.stdin.close()
        other.wait(timeout=60)
    ts = copies.current()
    assert [s["tags"] for s in snapshots(copies) if f"backup={ts}" in s["tags"]] and all(
        "dvdoctor-copy=complete" in s["tags"] for s in snapshots(copies) if f"backup={ts}" in s["tags"])
