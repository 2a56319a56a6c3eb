"""restic, the engine of copies: its command lines, its errors in one line each, its snapshots.

restic deduplicates by content-defined chunks (about 1 MiB on average), compresses (repository
format 2, zstd) and encrypts, and reaches a local path, `rest:`, `sftp:` and `s3:` (IBM Cloud
Object Storage among the S3-compatible stores). dvdoctor writes no store of its own.

The repository and its password reach restic only through the environment (RESTIC_REPOSITORY,
RESTIC_PASSWORD_FILE or RESTIC_PASSWORD, and the backend's own variables), never argv: a command
line is visible to every user of the host in /proc.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from datetime import datetime, timezone
from typing import BinaryIO, Callable, Mapping, NamedTuple

from ..core import redact, signals
from .errors import SinkError

#: The one file name every copy has inside its snapshot, so restic groups copies of one
#: namespace (host + path) for its retention policies.
STREAM_NAME = "dv-backup.tar"
#: Added after a copy is whole and its checksums are known: a snapshot without it is not a copy.
COMPLETE_TAG = "dvdoctor-copy=complete"
LOCKED = re.compile(r"unable to create lock|repository is already locked", re.I)
TAG = "dvdoctor"
#: Seconds a short restic command (snapshots, cat, tag, stats, forget's dry run, init, unlock) may
#: take before it is stopped. Why: a repository server that accepts connections and never answers
#: would otherwise hang `check`, `list --copies` and `copy` without a word, at 2 a.m. and for good;
#: these commands move little data, so two minutes is a server that is not answering, not a slow one.
#: restic's streaming commands (backup --stdin, dump) and forget --prune get no total bound: a big
#: copy, read-back or prune takes as long as it takes.
ANSWER_TIMEOUT = 120
#: The environment variable that shortens ANSWER_TIMEOUT (seconds), read only by answer_timeout():
#: the tests of a silent server use it so they take seconds; it reaches the copy program too.
ANSWER_TIMEOUT_ENV = "DVDOCTOR_RESTIC_TIMEOUT"


class ResticError(Exception):
    """restic refused or failed; the message is one line a person can act on."""

    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        #: The repository or password given is wrong (the user's to fix): exit 2, not 1.
        self.usage = usage


#: What a damaged repository is said as; `{line}` is restic's own line that names the blob.
DAMAGED = "the repository's data is damaged ({line}); restic check --read-data names the damaged packs"

_KNOWN = (
    # a location restic cannot parse: Go's own message quotes the URL cut where it stopped making
    # sense, so a password holding `#`, `/` or `%` would show in it: never quoted, only named
    (re.compile(r'parse "|invalid port|invalid URL escape|first path segment in URL|missing protocol scheme', re.I),
     True, "the repository's location is not a valid URL (a user or password holding # / % @ : must be %-encoded)"),
    # reaching the repository fails first: restic then also asks "Is there a repository at ...",
    # which must not turn a closed port, a refused login or a failing server into "no repository"
    (re.compile(r"\b401\b|\b403\b|unauthori[sz]ed|forbidden|access denied|invalidaccesskeyid|"
                r"signaturedoesnotmatch", re.I), True,
     "the repository refused the credentials (unauthorized): check the user and password or keys it is given"),
    (re.compile(r"connection refused|no such host|i/o timeout|network is unreachable|dial tcp|"
                r"context deadline exceeded|connection reset|tls:|x509:|could not resolve hostname|"
                r"unable to start the sftp session|error talking HTTP to rclone|didn't find section in config",
                re.I), True,
     "the repository cannot be reached (connection refused, unknown host or timeout)"),
    (re.compile(r"unexpected HTTP response \(5\d\d\)|\b50[0234] (?:Internal Server Error|Bad Gateway|Service Unavailable|"
                r"Gateway Timeout)", re.I), False,
     "the repository's server failed (HTTP 5xx): try again later, or look at the server's own log"),
    (re.compile(r"wrong password|no key found", re.I), True,
     "the repository's password is wrong (no key in the repository opens with it)"),
    (re.compile(r"empty password", re.I), True, "the password file is empty"),
    (re.compile(r"config file already exists", re.I), True, "a restic repository is already there"),
    (re.compile(r"not a directory", re.I), True,
     "the repository's location is a file, not a folder (give a folder, or a rest:, sftp: or s3: location)"),
    (re.compile(r"Is there a repository at|unable to open config file|repository does not exist|"
                r"config file does not exist", re.I), True,
     "there is no restic repository at that location (dvdoctor copy --init creates one)"),
    (re.compile(r"unable to create lock|repository is already locked", re.I), False,
     "the repository is locked by another restic run that is still going"),
    # a pack whose bytes changed (bit rot, a bad disk or copy): restic 0.14's dump and restore say
    # "decrypting blob ID failed: ciphertext verification failed"; `check --read-data` reads every pack
    (re.compile(r"ciphertext verification failed|invalid data returned|checksum mismatch|"
                r"pack file cannot be listed|unexpected EOF|decrypting blob .* failed", re.I), False,
     DAMAGED),
    # `restic check` (Restic.check): a pack the index names is gone, a tree does not load
    (re.compile(r"^pack [0-9a-f]+: does not exist|^error for tree |repository contains errors", re.I | re.M), False,
     "the repository is damaged ({line}): its copies that share those packs do not restore"),
)
#: A Go panic's first line (`panic: ...`) and the header of each goroutine's stack in its trace.
_PANIC = re.compile(r"panic: ")
_GOROUTINE = re.compile(r"goroutine \d+ \[")
#: Terminal control sequences restic writes (progress lines, `\x1b[2K`): not text for a report.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def answer_timeout() -> float:
    """ANSWER_TIMEOUT, or the positive number of seconds ANSWER_TIMEOUT_ENV gives instead."""
    try:
        value = float(os.environ.get(ANSWER_TIMEOUT_ENV, ""))
    except ValueError:
        return ANSWER_TIMEOUT
    return value if value > 0 else ANSWER_TIMEOUT


def no_answer(what: str, seconds: float) -> ResticError:
    """A short restic command stopped after `seconds`: said as an unreachable repository (exit 2)."""
    return ResticError(f"restic {what}: the repository did not answer within {seconds:g} s (it accepts "
                       "connections but never replies): check the repository's server", usage=True)


def location_secrets(repository: str) -> list[str]:
    """What of a repository location must never be shown: the user-info's password and each piece
    of it (an error may quote a URL cut at `#`, `/`, `%`, `@` or `:` inside the password)."""
    scheme, sep, rest = repository.partition("://")
    if not sep and repository.lower().startswith("sftp:"):
        rest = repository[len("sftp:"):]  # restic's scp-like form: sftp:user:password@host:/path
    elif not sep:
        return []
    if "@" not in rest:
        return []
    userinfo = rest.rpartition("@")[0]
    password = userinfo.partition(":")[2]
    pieces = {password, *re.split(r"[#/?%@:]", password)}
    return sorted((p for p in pieces if len(p) >= 3), key=len, reverse=True)


def explain(stderr: str, what: str, secrets: list[str] = ()) -> ResticError:
    """restic's stderr as one line: the known causes in words, else its last meaningful line, with
    what of the repository's location is secret taken out (and the one redaction pass after)."""
    stderr = _ANSI.sub("", stderr)
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    # a Go panic ends in a stack trace whose last line names restic's source, not the cause; its
    # frames may also hold words the known causes match, so it is looked for first
    panic = next((ln for ln in lines if _PANIC.match(ln)), "")
    if panic or any(_GOROUTINE.match(ln) for ln in lines):
        said = _shown((panic or "no panic message")[:200], secrets)
        return ResticError(f"restic {what}: restic crashed reading the repository ({said}); "
                           "restic check tells whether the repository is damaged")
    for pattern, usage, words in _KNOWN:
        if pattern.search(stderr):
            if "{line}" in words:
                said = next((ln for ln in lines if pattern.search(ln)), "")
                words = words.format(line=_shown(said[-200:], secrets) or "restic gave no detail")
            return ResticError(f"restic {what}: {words}", usage=usage)
    return ResticError(f"restic {what} failed: {_shown(lines[-1] if lines else 'no message', secrets)}")


def _shown(line: str, secrets: list[str]) -> str:
    """One of restic's lines as a report may show it: the location's secrets out, then the one pass."""
    for secret in secrets:
        line = line.replace(secret, "<redacted>")
    return redact.text(line)


def binary() -> str:
    found = shutil.which("restic")
    if not found:
        raise ResticError("restic is not installed here (Debian: apt-get install restic; dvdoctor's image has it)",
                          usage=True)
    return found


class Snapshot(NamedTuple):
    """One copy as restic lists it. A NamedTuple, not a dataclass: the copy program starts once per
    listing (every `check` of a namespace with copies), and `dataclasses` imports `inspect`, a sixth
    of what the program loads before it runs restic."""

    id: str
    time: str
    tags: Mapping[str, str]
    #: The full id the snapshot had when restic made it; set once its tags were changed (restic writes
    #: a retagged snapshot anew, under another id), empty before.
    original: str = ""
    #: The full id (64 hex characters): `restore --from-copy` takes it, or a prefix of it, as well.
    full_id: str = ""

    @property
    def backup(self) -> str:
        return self.tags.get("backup", "")

    @property
    def complete(self) -> bool:
        return self.tags.get("dvdoctor-copy") == "complete"

    @classmethod
    def from_json(cls, raw: dict) -> "Snapshot":
        """A snapshot as restic prints it in JSON (`snapshots`, `forget`), its id the short one."""
        return cls(raw.get("short_id") or str(raw.get("id", ""))[:8], raw.get("time", ""),
                   _tags(raw.get("tags") or []), raw.get("original") or "", str(raw.get("id") or ""))

    def to_json(self) -> dict:
        return {"snapshot": self.id, "id": self.full_id or self.id, "time": self.time, "backup": self.backup,
                "instance": self.tags.get("instance", ""), "namespace": self.tags.get("namespace", ""),
                "added": _int(self.tags.get("added")), "tarball": _int(self.tags.get("tarball")),
                "complete": self.complete, "origin": self.tags.get("origin", "unknown"),
                "checksums": {k[len("sha256:"):]: v for k, v in self.tags.items() if k.startswith("sha256:")}}


def _widen_pipe(stream: BinaryIO) -> None:
    """Give the pipe into restic room for two whole frames (1 MiB, the most an unprivileged process
    may ask by default) instead of 64 KiB: the packer then hands restic a frame at a time and goes
    on unpacking while restic chunks it, instead of waking restic sixteen times a frame. Where the
    kernel says no, the pipe stays as it is (only slower)."""
    try:
        import fcntl

        fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, 1024 * 1024)  # Linux only: elsewhere no such name
    except (ImportError, AttributeError, OSError, ValueError):
        pass


def stop_with_sigint(proc: subprocess.Popen, finish: Callable[[float | None], object], grace: float = 30) -> None:
    """Stop a program as Ctrl-C would (restic, or the copy program that runs it): SIGINT, then
    `finish` (its wait or its communicate) for up to `grace` seconds; killed only when it does not stop."""
    proc.send_signal(signal.SIGINT)
    try:
        finish(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        finish(None)


def _int(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 0


def _policy_args(policy: dict[str, int], tags: list[str], host: str) -> list[str]:
    """The selection and policy of a forget: the snapshots carrying all of a `tags` entry's tags, on
    `host`, grouped by host and path; the newest always kept (`--keep-last 1`), then the policy."""
    args: list[str] = []
    for t in tags:
        args += ["--tag", t]
    if host:
        args += ["--host", host]
    args += ["--group-by", "host,paths", "--keep-last", "1"]
    for key, n in policy.items():
        if n:
            args += [f"--keep-{key}", str(n)]
    return args


def _tags(raw: list[str]) -> dict[str, str]:
    out = {}
    for t in raw or []:
        key, _, value = t.partition("=")
        out[key] = value
    return out


class Restic:
    """One repository, reached with the environment given (the repository and its password)."""

    def __init__(self, env: Mapping[str, str], run: Callable[..., subprocess.CompletedProcess] = subprocess.run):
        self.env = dict(env)
        self.exe = binary()
        self.secrets = location_secrets(self.env.get("RESTIC_REPOSITORY", ""))
        self._run = run

    def call(self, what: str, *args: str, stdin: bytes | None = None, bounded: bool = True) -> str:
        """One restic command; a lock left by a restic run that is gone is removed once, then retried.
        A `bounded` command is stopped after answer_timeout() seconds (a repository that never answers)."""
        return self.call_bytes(what, *args, stdin=stdin, bounded=bounded).decode("utf-8", "replace")

    def call_bytes(self, what: str, *args: str, stdin: bytes | None = None, bounded: bool = True) -> bytes:
        """`call`, its output as the bytes restic wrote (a blob's data)."""
        done = self._bounded(what, [self.exe, *args], stdin, bounded)
        if done.returncode != 0 and LOCKED.search(done.stderr.decode("utf-8", "replace")):
            self.unlock()
            done = self._bounded(what, [self.exe, *args], stdin, bounded)
        if done.returncode != 0:
            raise explain(done.stderr.decode("utf-8", "replace"), what, self.secrets)
        return done.stdout

    def _bounded(self, what: str, argv: list[str], stdin: bytes | None,
                 bounded: bool) -> subprocess.CompletedProcess:
        """restic run to its end, or, when `bounded`, stopped (killed) after answer_timeout() seconds."""
        seconds = answer_timeout() if bounded else None
        try:
            return self._run(argv, input=stdin, capture_output=True, env=self.env, timeout=seconds)
        except subprocess.TimeoutExpired:
            raise no_answer(what, seconds or 0) from None

    def polynomial(self) -> int | None:
        """The repository's chunker polynomial (`restic cat config`), which the stream's frame
        markers are made for; None when restic does not say."""
        raw = json.loads(self.call("cat config", "cat", "config", "--no-lock") or "{}")
        try:
            return int(raw["chunker_polynomial"], 16)
        except (KeyError, TypeError, ValueError):
            return None

    def tail(self, snapshot: str, need: Callable[[bytes], int]) -> tuple[bytes, list[str]]:
        """The last bytes of a copy's stream, read chunk by chunk from its end without the rest
        (`restic cat` of the snapshot, its tree, then its last blobs), until `need(bytes so far)`
        is no more than what was read; and the snapshot's tags, read on the way."""
        snap = json.loads(self.call("cat snapshot", "cat", "--no-lock", "snapshot", snapshot))
        tree = json.loads(self.call("cat blob", "cat", "--no-lock", "blob", str(snap["tree"])))
        nodes = [n for n in tree.get("nodes") or [] if n.get("name") == STREAM_NAME]
        if not nodes:
            raise ResticError(f"snapshot {snapshot} holds no {STREAM_NAME}: not a copy dvdoctor made")
        blobs = list(nodes[0].get("content") or [])
        data = b""
        while blobs and len(data) < need(data):
            data = self.call_bytes("cat blob", "cat", "--no-lock", "blob", blobs.pop()) + data
        return data, [str(t) for t in snap.get("tags") or []]

    def unlock(self) -> None:
        """`restic unlock`: removes only stale locks (a dead process on this host, or 30 minutes without
        renewal); a live run's lock stays, so its copy is never disturbed."""
        self._bounded("unlock", [self.exe, "unlock"], None, True)

    def check(self) -> None:
        """`restic check`, without reading the data: every pack the index names is there, and every
        snapshot's trees load. restic deduplicates against its index, so after a pack is lost a new
        copy whose chunks it held is saved without error and cannot be restored: no copy is called
        complete until this passes. Not bounded: it lists every pack, which takes as long as the
        repository is large. Without a lock: restic's check takes an exclusive one, which another DV
        instance's copy into the same repository at the same hour (each namespace's schedule) holds
        off, and then both copies failed; the check only reads, and a pack a concurrent prune
        removed under it is said as damage, which leaves the copy incomplete, as the lock did."""
        self.call("check", "check", "--no-lock", bounded=False)

    def init(self) -> None:
        self.call("init", "init", "--repository-version", "2")

    def snapshots(self, *tag_filters: str) -> list[Snapshot]:
        args = ["snapshots", "--json", "--no-lock"]
        for t in tag_filters:
            args += ["--tag", t]
        raw = json.loads(self.call("snapshots", *args) or "[]") or []
        snaps = [Snapshot.from_json(s) for s in raw]
        return sorted(snaps, key=lambda s: (s.backup, s.time))

    def backup_stream(self, feed: Callable[[BinaryIO], object], *, host: str, tags: list[str],
                      when: datetime) -> tuple[str, int]:
        """Run `restic backup --stdin`, feeding it with `feed(stdin)`; the snapshot id and bytes added.

        If `feed` raises, restic is stopped before its input ends: a cut stream must never become a
        snapshot (restic would save whatever it read as a whole file)."""
        args = [self.exe, "backup", "--stdin", "--stdin-filename", STREAM_NAME, "--host", host, "--json",
                "--compression", "auto", "--time", when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")]
        for t in tags:
            args += ["--tag", t]
        import threading

        out: list[bytes] = []
        err: list[bytes] = []
        readers: list[threading.Thread] = []

        def start() -> subprocess.Popen:
            """restic with its readers running: all of it while signals are held, so none comes in between."""
            proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=self.env)
            assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
            _widen_pipe(proc.stdin)
            readers.extend([threading.Thread(target=lambda s=proc.stdout: out.append(s.read()), daemon=True),
                            threading.Thread(target=lambda s=proc.stderr: err.append(s.read()), daemon=True)])
            for r in readers:
                r.start()
            return proc

        def stop(proc: subprocess.Popen, why: BaseException) -> None:
            # SIGINT, not SIGKILL: restic removes its lock and saves no snapshot of a stream it never
            # finished (a restic that stopped reading on its own has ended already: nothing to stop)
            if proc.returncode is None:
                stop_with_sigint(proc, lambda t: proc.wait(timeout=t))

        with signals.owned(start, stop) as proc:
            try:
                feed(proc.stdin)
            except SinkError:
                # restic stopped reading: its own error is the one to report, not the backup's
                proc.wait()
                for r in readers:
                    r.join()
                raise explain(b"".join(err).decode("utf-8", "replace"), "backup", self.secrets) from None
            # the stream's end, only once fed whole: stdin closed on a failure would let restic save
            # the cut stream as a snapshot (there `owned` stops it with SIGINT instead)
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass
        proc.wait()
        for r in readers:
            r.join()
        if proc.returncode != 0:
            raise explain(b"".join(err).decode("utf-8", "replace"), "backup", self.secrets)
        summary = {}
        for line in b"".join(out).decode("utf-8", "replace").splitlines():
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict) and msg.get("message_type") == "summary":
                summary = msg
        if not summary.get("snapshot_id"):
            raise ResticError("restic backup ended without naming its snapshot")
        return summary["snapshot_id"][:8], int(summary.get("data_added") or 0)

    def add_tags(self, snapshot: str, tags: list[str]) -> None:
        """Tags added to a snapshot this run made. Without a lock, as `check`: restic's tag takes an
        exclusive one, which another instance's copy into the same repository holds off. Nothing else
        writes this snapshot (another instance's forget picks its own; this instance's prune waits
        for dvdoctor's lock), and restic writes the tagged snapshot before it removes the first."""
        args = ["tag", "--no-lock"]
        for t in tags:
            args += ["--add", t]
        self.call("tag", *args, snapshot)

    def current_id(self, made: str) -> str:
        """The id a snapshot restic made as `made` (an id or its prefix) has now: a snapshot's id is the
        hash of its content, tags included, so `tag` writes it anew under another id and keeps the first
        in `original`. That id is the one `snapshots` (and so `list --copies`) shows."""
        every = self.snapshots()
        for snap in every:
            if snap.original.startswith(made):
                return snap.id
        for snap in every:  # never retagged (the tags were already there)
            if made.startswith(snap.id):
                return snap.id
        raise ResticError(f"restic snapshots: snapshot {made[:8]} is not in the repository's list")

    def dump(self, snapshot: str) -> subprocess.Popen:
        """`restic dump` of a copy's stream, as a process whose stdout the caller reads."""
        return subprocess.Popen([self.exe, "dump", "--no-lock", snapshot, "/" + STREAM_NAME], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.env)

    def forget(self, ids: list[str] | None = None, *, policy: dict[str, int] | None = None,
               tags: list[str] = (), host: str = "") -> str:
        args = ["forget", "--prune"]
        # --prune rewrites packs: as long as the repository is big, so no total bound
        if ids:
            return self.call("forget", *args, *ids, bounded=False)
        return self.call("forget", *args, *_policy_args(policy or {}, tags, host), bounded=False)

    def forget_plan(self, *, policy: dict[str, int], tags: list[str], host: str) -> list[dict]:
        """What `forget` with this policy would remove and keep, as restic decides it: its own dry run
        (`forget --dry-run --json`) with the very selection and policy arguments the real run is given,
        so the plan cannot drift from what happens. One group per host and path, each with `keep`,
        `remove` and `reasons` (why each kept snapshot is kept). It takes no lock and writes nothing."""
        raw = self.call("forget --dry-run", "forget", "--dry-run", "--json", "--no-lock",
                        *_policy_args(policy, tags, host))
        groups = json.loads(raw or "[]") or []
        if not isinstance(groups, list):
            raise ResticError("restic forget --dry-run --json: not a list of groups")
        return groups

    def stats(self) -> int:
        """Bytes the repository stores (after deduplication and compression)."""
        raw = json.loads(self.call("stats", "stats", "--json", "--no-lock", "--mode", "raw-data") or "{}")
        return int(raw.get("total_size") or 0)
