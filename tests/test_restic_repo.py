"""The tests' restic repositories (tests/restic_repo.py): restic itself opens the re-keyed copy with the
test's password and refuses another, the copy keeps `restic init`'s master key and polynomial under a
new id, and its key file asks for the cheap KDF and is named as restic names its files."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

RESTIC = shutil.which("restic")
pytestmark = pytest.mark.skipif(RESTIC is None, reason="restic is not installed (make test installs it as root on "
                                                        "Debian: apt-get install restic)")


def restic(repo: Path, password: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([RESTIC, "--no-cache", *args], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(repo.parent), "RESTIC_REPOSITORY": str(repo),
                               "RESTIC_PASSWORD": password})


def test_restic_opens_the_rekeyed_copy_with_the_tests_password_only(restic_repository, restic_template, tmp_path):
    from restic_repo import TEST_KDF, key_files

    repo = restic_repository(tmp_path / "repo", "pw-of-this-test")
    done = restic(repo, "pw-of-this-test", "cat", "config")
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout)
    assert config["version"] == 2 and len(config["id"]) == 64
    # the master key restic decrypts is the one `restic init` made for the template
    master = json.loads(restic(repo, "pw-of-this-test", "cat", "masterkey").stdout)
    assert master == restic_template.master.master_json()
    wrong = restic(repo, "not-the-password", "cat", "config")
    assert wrong.returncode != 0 and "wrong password" in wrong.stderr
    [key] = key_files(repo)
    doc = json.loads(key.read_bytes())
    assert {k: doc[k] for k in TEST_KDF} == TEST_KDF and doc["kdf"] == "scrypt"
    assert key.name == hashlib.sha256(key.read_bytes()).hexdigest()


def test_two_copies_are_two_repositories_of_one_polynomial(restic_repository, tmp_path):
    one = json.loads(restic(restic_repository(tmp_path / "one", "a"), "a", "cat", "config").stdout)
    two = json.loads(restic(restic_repository(tmp_path / "two", "b"), "b", "cat", "config").stdout)
    assert one["id"] != two["id"]  # restic's cache is kept by id: two tests never share one
    assert one["chunker_polynomial"] == two["chunker_polynomial"]


def test_a_copy_takes_a_snapshot_and_gives_it_back(restic_repository, tmp_path):
    repo = restic_repository(tmp_path / "repo", "pw")
    done = subprocess.run([RESTIC, "--no-cache", "backup", "--stdin", "--stdin-filename", "f", "--json"],
                          input=b"hello restic" * 1000, capture_output=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "RESTIC_REPOSITORY": str(repo),
                               "RESTIC_PASSWORD": "pw"})
    assert done.returncode == 0, done.stderr
    assert restic(repo, "pw", "dump", "latest", "/f").stdout == "hello restic" * 1000
    assert restic(repo, "pw", "check").returncode == 0


def test_a_damaged_file_is_refused_by_the_helper_too(restic_template):
    sealed = bytearray(restic_template.master.seal(b'{"x": 1}'))
    assert restic_template.master.open(bytes(sealed)) == b'{"x": 1}'
    sealed[20] ^= 1
    with pytest.raises(ValueError):
        restic_template.master.open(bytes(sealed))


def _kept_copy(template, cache: Path) -> tuple[Path, str]:
    """`cache` keeping a copy of the run's template, as an earlier run would have kept it."""
    from restic_repo import _keep, kept_folder

    kept, version = kept_folder(cache, RESTIC)
    _keep(cache, kept, version, template)
    return kept, version


def test_the_kept_template_is_copied_not_made_again(restic_template, tmp_path):
    """A template kept from an earlier run (.cache/restic-template) is what the next run copies:
    restic init, which spends seconds calibrating its KDF, does not run again."""
    from restic_repo import cached_template

    cache = tmp_path / "cache"
    kept, _ = _kept_copy(restic_template, cache)
    kept_id = json.loads(restic_template.master.open((kept / "repo" / "config").read_bytes()))["id"]
    made = cached_template(cache, tmp_path / "run" / "repo", RESTIC)
    assert made.master == restic_template.master
    # the very repository kept (a new `restic init` would have made another id)
    assert json.loads(made.master.open((made.path / "config").read_bytes()))["id"] == kept_id
    repo = made.copy_to(tmp_path / "test-repo", "pw")
    assert restic(repo, "pw", "cat", "config").returncode == 0


def _damage(kept: Path, how: str, template) -> None:
    repo = kept / "repo"
    if how == "config":
        config = repo / "config"
        damaged = bytearray(config.read_bytes())
        damaged[20] ^= 1
        config.chmod(0o600)
        config.write_bytes(bytes(damaged))
    elif how == "master":
        (kept / "master.json").chmod(0o600)
        (kept / "master.json").write_text("{")
    elif how == "no master":
        (kept / "master.json").unlink()
    elif how == "version":
        (kept / "restic-version").write_text("restic 0.0.1\n")
    elif how == "no keys":
        subprocess.run(["rm", "-rf", str(repo / "keys")], check=True)
    elif how == "garbage key":
        [key] = (repo / "keys").iterdir()
        key.chmod(0o600)
        key.write_text("not json")
    elif how == "two keys":
        [key] = (repo / "keys").iterdir()
        shutil.copy(key, repo / "keys" / ("0" * 64))
    elif how == "a snapshot":
        (repo / "snapshots" / ("1" * 64)).write_bytes(template.master.seal(b'{"time": "2026-01-01T00:00:00Z"}'))
    elif how == "a pack":
        (repo / "data" / "ab" / ("ab" * 32)).write_bytes(b"x")
    elif how == "a lock":
        (repo / "locks" / ("2" * 64)).write_bytes(b"x")
    elif how == "a hidden key":
        (repo / "keys" / ".zzz").write_text("{}")
    elif how == "snapshots a link":
        outside = kept.parent / "elsewhere"
        outside.mkdir()
        subprocess.run(["rm", "-rf", str(repo / "snapshots")], check=True)
        (repo / "snapshots").symlink_to(outside)
    elif how == "a data folder a link":
        subprocess.run(["rm", "-rf", str(repo / "data" / "00")], check=True)
        (repo / "data" / "00").symlink_to(repo / "data" / "01")
    elif how == "another master key":
        doc = json.loads((kept / "master.json").read_text())
        raw = bytearray(base64.b64decode(doc["encrypt"]))
        raw[0] ^= 1  # the MAC key is the same, so the config opens, but to bytes that are not JSON
        doc["encrypt"] = base64.b64encode(bytes(raw)).decode()
        (kept / "master.json").chmod(0o600)
        (kept / "master.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("how", ["config", "master", "no master", "version", "no keys", "garbage key", "two keys",
                                 "a snapshot", "a pack", "a lock", "a hidden key", "snapshots a link",
                                 "a data folder a link", "another master key"])
def test_a_kept_template_that_is_not_an_empty_repository_of_this_restic_is_not_used(restic_template, tmp_path, how):
    """Break-it review (session 21): a kept template whose key files were lost, or which held a
    snapshot, was copied all the same, and the copies' tests failed far from the cause."""
    from restic_repo import kept_master

    kept, version = _kept_copy(restic_template, tmp_path / "cache")
    assert kept_master(kept, version) == restic_template.master
    _damage(kept, how, restic_template)
    assert kept_master(kept, version) is None


def test_an_unsound_kept_template_is_replaced_and_what_killed_runs_left_goes(restic_template, tmp_path):
    import os
    import time

    from restic_repo import _keep, kept_master

    cache = tmp_path / "cache"
    kept, version = _kept_copy(restic_template, cache)
    _damage(kept, "a snapshot", restic_template)
    other_version = cache / "0123456789abcdef"  # another restic version's
    other_version.mkdir()
    stale, recent = cache / ".making-stale", cache / ".making-now"
    stale.mkdir()
    recent.mkdir()
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    mine = cache / "notes.txt"  # RESTIC_TEMPLATE_CACHE may name a folder that holds other things
    mine.write_text("precious\n")
    (cache / "kube").mkdir()
    _keep(cache, kept, version, restic_template)  # what a run does with the template it made
    assert kept_master(kept, version) == restic_template.master
    assert sorted(p.name for p in cache.iterdir()) == sorted([kept.name, recent.name, "notes.txt", "kube"])
    assert mine.read_text() == "precious\n"
