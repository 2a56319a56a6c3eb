"""The tests' restic repositories (tests/restic_repo.py): restic itself opens the re-keyed copy with the
test's password and refuses another, the copy keeps `restic init`'s master key and polynomial under a
new id, and its key file asks for the cheap KDF and is named as restic names its files."""

from __future__ import annotations

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


def test_the_kept_template_is_copied_not_made_again(restic_template, tmp_path):
    """A template kept from an earlier run (.cache/restic-template) is what the next run copies:
    restic init, which spends seconds calibrating its KDF, does not run again."""
    from restic_repo import cached_template, kept_folder

    cache = tmp_path / "cache"
    kept, _ = kept_folder(cache, RESTIC)
    kept.mkdir(parents=True)
    shutil.copytree(restic_template.path, kept / "repo", symlinks=True)
    (kept / "master.json").write_text(json.dumps(restic_template.master.master_json()))
    kept_id = json.loads(restic_template.master.open((kept / "repo" / "config").read_bytes()))["id"]
    made = cached_template(cache, tmp_path / "run" / "repo", RESTIC)
    assert made.master == restic_template.master
    # the very repository kept (a new `restic init` would have made another id)
    assert json.loads(made.master.open((made.path / "config").read_bytes()))["id"] == kept_id
    repo = made.copy_to(tmp_path / "test-repo", "pw")
    assert restic(repo, "pw", "cat", "config").returncode == 0


def test_a_kept_template_that_does_not_open_is_not_used(restic_template, tmp_path):
    from restic_repo import kept_master

    kept = tmp_path / "kept"
    shutil.copytree(restic_template.path, kept / "repo", symlinks=True)
    assert kept_master(kept) is None  # no master key beside it
    (kept / "master.json").write_text(json.dumps(restic_template.master.master_json()))
    assert kept_master(kept) == restic_template.master
    config = kept / "repo" / "config"
    damaged = bytearray(config.read_bytes())
    damaged[20] ^= 1
    config.chmod(0o600)
    config.write_bytes(bytes(damaged))
    assert kept_master(kept) is None
    (kept / "master.json").write_text("{")
    assert kept_master(kept) is None
