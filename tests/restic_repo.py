"""A restic repository for tests: made once by the real `restic init`, then re-keyed under a cheap KDF.

Why: restic derives the key that opens a repository from its password with scrypt, and `restic init`
calibrates scrypt to cost about half a second of CPU (here N=32768, r=8, p=3). Every restic command
pays that again, and a copies test runs two dozen of them: most of its time is key derivation,
not the copies under test. restic's own test suite runs with low-security KDF parameters for the
same reason. Here the repository is the one `restic init` made (its config, chunker polynomial,
layout and master key are restic's own); only the key file that wraps the master key is rewritten,
under scrypt N=1024, r=8, p=1, which costs about a millisecond.

The format, from restic's design document ("Keys, Encryption and MAC"):
- a key file in `keys/` is JSON with the scrypt parameters (`N`, `r`, `p`, a 64-byte `salt`) and
  `data`, base64; scrypt(password, salt) gives 64 bytes: 32 for AES-256, then 32 for Poly1305-AES
  as a 16-byte AES key `k` and a 16-byte Poly1305 key `r` (clamped);
- an encrypted file is IV (16 bytes) || AES-256-CTR ciphertext || MAC (16 bytes), where the MAC is
  Poly1305 over the ciphertext with key r || AES-128_k(IV);
- `data` so opened is the master key, JSON: {"mac": {"k": .., "r": ..}, "encrypt": ..};
- every file but the key files is named by the sha256 of its bytes (`config` is named `config`).

Each test gets its own `cp -a` copy with a new key file for its password and a new repository id,
so restic's cache (kept by repository id) never mixes two tests' repositories. The empty repository
they are copied from is made once on a machine and kept between runs, by restic version
(`cached_template`, in .cache/restic-template).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.poly1305 import Poly1305

#: The key derivation a test repository's key file asks for: about a millisecond, not half a second.
TEST_KDF = {"N": 1024, "r": 8, "p": 1}
#: restic refuses a key file whose salt has another length.
SALT_BYTES = 64
#: What scrypt may use: N=32768, r=8 (what `restic init` calibrates to here) needs 32 MiB and a bit more.
_SCRYPT_MAXMEM = 256 * 1024 * 1024


@dataclass(frozen=True)
class Keys:
    """One AES-256 key and one Poly1305-AES key pair: what a password derives, and what the master key is."""

    encrypt: bytes
    mac_k: bytes
    mac_r: bytes

    @classmethod
    def derived(cls, password: str, salt: bytes, n: int, r: int, p: int) -> "Keys":
        raw = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=64)
        return cls(raw[:32], raw[32:48], raw[48:64])

    @classmethod
    def from_master_json(cls, doc: dict) -> "Keys":
        b = base64.b64decode
        return cls(b(doc["encrypt"]), b(doc["mac"]["k"]), b(doc["mac"]["r"]))

    def master_json(self) -> dict:
        e = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
        return {"mac": {"k": e(self.mac_k), "r": e(self.mac_r)}, "encrypt": e(self.encrypt)}

    def _tag(self, iv: bytes, ciphertext: bytes) -> bytes:
        # Poly1305-AES: the one-time part of the Poly1305 key is the nonce (the IV) encrypted with k
        pad = Cipher(algorithms.AES(self.mac_k), modes.ECB()).encryptor().update(iv)
        return Poly1305.generate_tag(self.mac_r + pad, ciphertext)

    def seal(self, plaintext: bytes) -> bytes:
        """IV || AES-256-CTR(plaintext) || Poly1305-AES MAC, with a fresh random IV."""
        iv = os.urandom(16)
        ciphertext = Cipher(algorithms.AES(self.encrypt), modes.CTR(iv)).encryptor().update(plaintext)
        return iv + ciphertext + self._tag(iv, ciphertext)

    def open(self, sealed: bytes) -> bytes:
        """The plaintext of `seal`'s output; ValueError when the MAC does not match (a wrong key, or damage)."""
        if len(sealed) < 32:
            raise ValueError("too short to be an encrypted restic file")
        iv, ciphertext, tag = sealed[:16], sealed[16:-16], sealed[-16:]
        if not hmac.compare_digest(self._tag(iv, ciphertext), tag):
            raise ValueError("the MAC does not match: wrong password or a damaged file")
        return Cipher(algorithms.AES(self.encrypt), modes.CTR(iv)).decryptor().update(ciphertext)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write a file as restic leaves its own (read-only to its owner), never half-written."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o400)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def key_files(repo: Path) -> list[Path]:
    return sorted(p for p in (repo / "keys").iterdir() if not p.name.startswith("."))


def open_key_file(path: Path, password: str) -> Keys:
    """The master key a key file wraps, opened with the password and the file's own scrypt parameters."""
    doc = json.loads(path.read_bytes())
    if doc.get("kdf") != "scrypt":
        raise ValueError(f"{path.name}: kdf {doc.get('kdf')!r}, not scrypt")
    user = Keys.derived(password, base64.b64decode(doc["salt"]), doc["N"], doc["r"], doc["p"])
    return Keys.from_master_json(json.loads(user.open(base64.b64decode(doc["data"]))))


def rekey(repo: Path, master: Keys, password: str, kdf: dict[str, int] = TEST_KDF) -> Path:
    """Replace the repository's key files by one that wraps `master` under `password` with `kdf`;
    the new file is named by the sha256 of its bytes, as restic names every file it writes."""
    old = key_files(repo)
    template = json.loads(old[0].read_bytes()) if old else {}
    salt = secrets.token_bytes(SALT_BYTES)
    user = Keys.derived(password, salt, kdf["N"], kdf["r"], kdf["p"])
    doc = {"created": template.get("created", ""), "username": template.get("username", ""),
           "hostname": template.get("hostname", ""), "kdf": "scrypt", **kdf,
           "salt": base64.b64encode(salt).decode(),
           "data": base64.b64encode(user.seal(json.dumps(master.master_json()).encode())).decode()}
    raw = json.dumps(doc).encode()
    new = repo / "keys" / hashlib.sha256(raw).hexdigest()
    _write_atomically(new, raw)
    for p in old:
        if p != new:
            p.unlink()
    return new


def cheap_key(repo: Path, password: str) -> Path:
    """Re-key a repository that `restic init` (dvdoctor's `copy --init`) made just now under the cheap KDF,
    same password: what runs on it next costs a millisecond a restic command, not half a second."""
    [key] = key_files(repo)
    return rekey(repo, open_key_file(key, password), password)


def new_repository_id(repo: Path, master: Keys) -> str:
    """Give the repository a new random id (its `config`, re-encrypted): restic keeps its cache by
    repository id, and two copies of one template are two repositories."""
    plain = master.open((repo / "config").read_bytes())
    if not plain.startswith(b"{"):  # restic stores its config as plain JSON, never compressed
        raise ValueError("the repository's config is not JSON: a format this helper does not know")
    config = json.loads(plain)
    config["id"] = secrets.token_hex(32)
    _write_atomically(repo / "config", master.seal(json.dumps(config, separators=(",", ":")).encode()))
    return config["id"]


@dataclass(frozen=True)
class Template:
    """An empty repository `restic init` made, re-keyed: copied, never used itself."""

    path: Path
    master: Keys

    def copy_to(self, dest: Path, password: str) -> Path:
        """A repository of the test's own at `dest` (which must not exist), opened by `password`."""
        if dest.exists():
            raise FileExistsError(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-a", "--", str(self.path), str(dest)], check=True)
        rekey(dest, self.master, password)
        new_repository_id(dest, self.master)
        return dest


def cached_template(cache: Path, where: Path, restic: str) -> Template:
    """The template at `where` (which must not exist): a copy of the one kept in `cache` for this
    restic's version when that one is sound (`kept_master`); else one made now, copied to `where` and
    kept in place of the unsound one. Where the cache cannot be written (another user's, read-only),
    the template is made at `where` alone.

    Why: `restic init` calibrates its KDF by the clock, at 2.3 to 3.9 CPU-seconds a run (session 21,
    process accounting; the less busy the machine, the more it spends), and the template's calibrated
    key is thrown away all the same (re-keyed). Like the control plane's build (.cache/kube), it is
    made once on a machine and kept. What it holds is what `restic init` made (config, layout, chunker
    polynomial, master key), and only that: a kept one that holds anything else (a snapshot, a pack,
    a lock, a key file that is not one) is not used. Another restic version makes its own. The tests
    of `copy --init` still run restic's own init, calibration included."""
    kept, version = kept_folder(cache, restic)
    if kept.is_dir() and not kept.is_symlink():
        where.parent.mkdir(parents=True, exist_ok=True)
        copied = subprocess.run(["cp", "-a", "--", str(kept / "repo"), str(where)], capture_output=True)
        # judged as copied, not before: another run may replace the kept one in between
        master = kept_master(kept, version, repo=where) if copied.returncode == 0 else None
        if master is not None:
            return Template(where, master)
        subprocess.run(["rm", "-rf", "--", str(where)], check=False)
    made = make_template(where, restic)
    try:
        _keep(cache, kept, version, made)
    except OSError:  # a cache this run may not write: the next run makes its own again
        pass
    return made


def kept_folder(cache: Path, restic: str) -> tuple[Path, str]:
    """Where `cache` keeps the template of this restic's version, and that version."""
    version = subprocess.run([restic, "version"], capture_output=True, text=True, check=True).stdout.strip()
    return cache / hashlib.sha256(version.encode()).hexdigest()[:16], version


#: A kept template's folder being written (left by a run killed meanwhile: removed after an hour).
_MAKING = ".making-"


def _keep(cache: Path, kept: Path, version: str, made: Template) -> None:
    """Keep a copy of `made` at `kept`, whole: written aside, then renamed over what was there. The
    other versions' templates and what killed runs left half-written go."""
    cache.mkdir(parents=True, exist_ok=True, mode=0o700)  # a master key, if only a test's
    fresh = Path(tempfile.mkdtemp(dir=cache, prefix=_MAKING))
    try:
        subprocess.run(["cp", "-a", "--", str(made.path), str(fresh / "repo")], check=True)
        _write_atomically(fresh / "master.json", json.dumps(made.master.master_json()).encode())
        (fresh / "restic-version").write_text(version + "\n")
        for old in cache.iterdir():
            # only what this module makes there: a version's folder (16 hex digits) and a half-made one
            # left by a killed run; anything else in a folder someone named (RESTIC_TEMPLATE_CACHE) stays
            stale = old.name.startswith(_MAKING) and time.time() - old.lstat().st_mtime > 3600
            ours = re.fullmatch(r"[0-9a-f]{16}", old.name) is not None
            if old != fresh and (stale or ours):
                subprocess.run(["rm", "-rf", "--", str(old)], check=False)  # the unsound one at `kept` too
        try:
            os.rename(fresh, kept)
        except OSError:  # a run at the same moment kept its own
            pass
    finally:
        subprocess.run(["rm", "-rf", "--", str(fresh)], check=False)


def kept_master(kept: Path, version: str, repo: Path | None = None) -> Keys | None:
    """The master key kept at `kept`, when the repository (`repo`, default the kept one) is sound:
    made by restic `version`, its config opening with that key to restic's JSON, and empty as
    `restic init` leaves one: one key file, the data folder's 256 empty subfolders, no index,
    snapshot or lock, and no link anywhere in it (a link would make every copy share its target);
    else None."""
    repo = repo or kept / "repo"
    try:
        if repo.is_symlink():
            return None
        if (kept / "restic-version").read_text() != version + "\n":
            return None
        master = Keys.from_master_json(json.loads((kept / "master.json").read_bytes()))
        if not isinstance(json.loads(master.open((repo / "config").read_bytes())), dict):
            return None
        for top, dirs, files in os.walk(repo):
            if any(Path(top, n).is_symlink() for n in (*dirs, *files)):
                return None
        keys = os.listdir(repo / "keys")
        if len(keys) != 1 or json.loads((repo / "keys" / keys[0]).read_bytes()).get("kdf") != "scrypt":
            return None
        data = sorted(os.listdir(repo / "data"))
        if data != [f"{i:02x}" for i in range(256)] or any(os.listdir(repo / "data" / d) for d in data):
            return None
        if any(os.listdir(repo / d) for d in ("index", "snapshots", "locks")):
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return master


def make_template(where: Path, restic: str) -> Template:
    """`restic init` (format 2, as dvdoctor creates repositories) at `where`, then re-keyed cheaply."""
    password = secrets.token_urlsafe(24)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(where.parent),
           "RESTIC_REPOSITORY": str(where), "RESTIC_PASSWORD": password}
    done = subprocess.run([restic, "--no-cache", "init", "--repository-version", "2"], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"restic init failed: {done.stderr.strip()}")
    [key] = key_files(where)
    master = open_key_file(key, password)
    rekey(where, master, secrets.token_urlsafe(24))
    return Template(where, master)
