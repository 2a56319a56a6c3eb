"""The program a copy runs where the backup volume is: `python -m dvdoctor.copies.job ACTION ...`.

In a cluster it is the command of a one-shot Job with dvdoctor's image, dv-bar-pvc mounted from
DV's template mounts (read-only to copy, read-write to rehydrate) and the repository's settings
from the site's Secret; in the lab the same program runs on this machine. Either way it prints one
JSON record a line on stdout, which `dvdoctor.flows.copies` reads, and nothing else.

Env: DV_BAR (the backup volume's folder), DV_BAR_VOLUME (the whole claim's folder, where this
program sees it: the lab), DVDOCTOR_INSTANCE (dv-engine's StatefulSet uid),
DVDOCTOR_NAMESPACE, and restic's own variables (RESTIC_REPOSITORY, RESTIC_PASSWORD_FILE or
RESTIC_PASSWORD, the backend's credentials).
Actions:
  init                    create the repository (format 2: compressed)
  copy TS [TS ...]        copy these backups (each skipped when a complete copy exists)
  snapshots               this instance's copies, one record each
  rehydrate SNAPSHOT TS [replace-damaged]
                          write a copy back as the backup folder TS (made whole, then renamed; with
                          replace-damaged, over a folder TS dvdoctor read back and found damaged)
  forget daily=N weekly=N monthly=N
                          restic forget + prune of this instance's copies; the newest is always kept,
                          and copies left incomplete by a killed run are removed
  plan-forget daily=N weekly=N monthly=N
                          what forget would remove and keep, and why (restic's own dry run of the
                          same forget); changes nothing
  stats                   the bytes the repository stores
  check                   restic check without reading the data: every pack the index names is there
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from ..core import redact
from ..core.units import is_timestamp
from .restic import COMPLETE_TAG, TAG, Restic, ResticError, Snapshot, explain
from .errors import StreamError

if TYPE_CHECKING:
    from .stream import Packed

PARTIAL = ".dvdoctor-rehydrate-"
MANIFEST = "dvdoctor-manifest.json"


def host(namespace: str) -> str:
    return f"dvdoctor-{namespace}"


def say(**record: object) -> None:
    """One record a line; through the one redaction pass, since restic's messages may quote a location."""
    print(json.dumps(redact.data(record), sort_keys=True), flush=True)


def _when(ts: str) -> datetime:
    return datetime.strptime(ts, "%Y-%m-%d-%H-%M-%S").replace(tzinfo=timezone.utc)


def copy(restic: Restic, bar: Path, instance: str, namespace: str, stamps: list[str]) -> int:
    """Each backup into the repository, then `restic check`; only then is each tagged complete (a
    repository that lost a pack takes new copies without error that cannot be restored)."""
    from .stream import COMBINED, pack  # only the actions that stream a backup load it (errors.py)

    failed = 0
    made: list[tuple[str, str, int, Packed]] = []
    mine = restic.snapshots(f"{TAG},instance={instance}")
    have = {s.backup for s in mine if s.complete}
    if not all(ts in have for ts in stamps):
        marker = _marker(restic, mine)
    for ts in stamps:
        if ts in have:
            say(skipped=ts, why="already copied")
            continue
        if not is_timestamp(ts):
            failed += 1
            say(failed=ts, why="not a backup timestamp (YYYY-MM-DD-HH-MM-SS)")
            continue
        tarball = bar / ts / COMBINED
        manifest = bar / ts / MANIFEST
        recorded = _manifest(manifest)
        # origin: the DV instance the backup's own manifest names (none: taken by dvcli.sh), so a
        # restore from the copy can judge it before anything is written back
        tags = [TAG, f"instance={instance}", f"namespace={namespace}", f"backup={ts}",
                f"origin={_origin(recorded)}", f"{CHUNKER}={marker.hex()}"]
        try:
            with open(tarball, "rb") as src:
                result = {}

                def feed(sink) -> None:
                    extras = {MANIFEST: recorded} if recorded is not None else {}
                    result["packed"] = pack(src, sink, {"backup": ts, "namespace": namespace, "instance": instance},
                                            extras, marker=marker)

                snap, added = restic.backup_stream(feed, host=host(namespace), tags=tags, when=_when(ts))
            made.append((ts, snap, added, result["packed"]))
        except (OSError, StreamError) as exc:
            failed += 1
            say(failed=ts, why=str(exc))
    if made:
        try:
            restic.check()
        except ResticError as exc:  # none is tagged complete: the next copy makes them again
            for ts, *_ in made:
                say(failed=ts, why=f"{exc}; the copy was saved but is not marked complete")
            return 1
    for ts, snap, added, packed in made:
        restic.add_tags(snap, [COMPLETE_TAG, f"added={added}", f"tarball={packed.bytes_in}",
                               *(f"sha256:{m}={h}" for m, h in packed.checksums().items())])
        # tagging wrote the snapshot anew under another id: the record names that one, the id
        # `list --copies` shows and the audit log records (not the id restic backup printed)
        try:
            final: str | None = restic.current_id(snap)
        except ResticError:
            final = None  # the copy is whole all the same; whoever needs its id lists the copies
        say(copied=ts, added=added, read=packed.bytes_in, stream=packed.bytes_out,
            checksums=packed.checksums(), **({"snapshot": final} if final else {}))
    return 1 if failed else 0


#: The tag that carries the frame marker a copy was made with: the next copy into the repository
#: reuses it instead of asking restic for the chunker polynomial again (one repository open fewer).
CHUNKER = "chunker-marker"


def _marker(restic: Restic, snapshots: list) -> bytes:
    """The stream's frame marker for this repository: made from its chunker polynomial (restic is
    asked once per repository), then taken from the tag an earlier copy carries. A tag can be
    wrong: a wrong marker costs space, never data (unpack removes the recorded one)."""
    from .stream import chunk_marker

    for snap in reversed(snapshots):
        try:
            marker = bytes.fromhex(snap.tags.get(CHUNKER, ""))
        except ValueError:
            continue
        if len(marker) == 64:
            return marker
    return chunk_marker(restic.polynomial())


def _manifest(path: Path) -> bytes | None:
    """The backup's dvdoctor-manifest.json as it is (small), or None when there is none."""
    from .stream import EXTRA_LIMIT

    try:
        if path.is_file() and not path.is_symlink() and path.stat().st_size <= EXTRA_LIMIT:
            return path.read_bytes()
    except OSError:
        pass
    return None


def _origin(manifest: bytes | None) -> str:
    """The instance uid a manifest names, `none` without one, `unknown` when it cannot be read."""
    if manifest is None:
        return "none"
    try:
        uid = json.loads(manifest)["instance"]["uid"]
    except (ValueError, KeyError, TypeError):
        return "unknown"
    return uid if isinstance(uid, str) and re.fullmatch(r"[0-9A-Za-z-]{1,64}", uid) else "unknown"


def _tags_differ(tags: list[str], meta: dict) -> str:
    """The members whose `sha256:<member>=` tag (what list --copies shows) is not the checksum the
    stream itself recorded (what rehydrate verifies against): a copy must agree with its own listing."""
    recorded = {p["meta"]["member"]: p["sha256"] for p in meta.get("parts", [])}
    tagged = Snapshot.from_json({"tags": tags}).to_json()["checksums"]  # as list --copies reads them
    return ", ".join(sorted(m for m in set(recorded) | set(tagged) if tagged.get(m) != recorded.get(m)))


def _clear_partial(work: Path) -> None:
    """Remove what sits at the partial folder's name without ever following a link there.

    Anyone who can write the backup volume can plant a symlink at `.dvdoctor-rehydrate-TS`; writing
    through it would put a backup (as root, in a Job) wherever it points. A link is unlinked itself,
    a real folder removed with its files (rmtree never follows links inside it), and a removal that
    fails is raised, not ignored: the folder is then made afresh by `unpack`, which refuses any name
    that exists."""
    if work.is_symlink():
        os.unlink(work)
    elif os.path.lexists(work):
        if work.is_dir():
            shutil.rmtree(work)
        else:
            os.unlink(work)


def _put_in_place(work: Path, final: Path, replace: bool) -> tuple[bool, str | None]:
    """Rename the whole, verified copy to its backup's name. With `replace`, a folder of that name
    (which dvdoctor read back and found damaged) is first renamed aside, then removed: the copy in its
    place is proven by sha256. Returns whether a folder was replaced, and what could not be removed."""
    if not os.path.lexists(final):
        os.rename(work, final)
        return False, None
    if not replace or final.is_symlink() or not final.is_dir():  # appeared meanwhile, or not a folder
        raise StreamError(f"{final.name} appeared on the backup volume while the copy was written back")
    from ..core.names import DAMAGED_ASIDE  # only a write-back over a damaged folder needs DV's names

    aside = final.parent / f"{DAMAGED_ASIDE}{final.name}"
    if os.path.lexists(aside):
        raise StreamError(f"{aside.name} is on the backup volume (an earlier replacement left it): remove it first")
    os.rename(final, aside)
    try:
        os.rename(work, final)
    except OSError:
        os.rename(aside, final)  # the damaged folder back where it was, as it was found
        raise
    try:
        shutil.rmtree(aside)
    except OSError as exc:
        return True, f"{aside.name} (the damaged folder, set aside: {exc.strerror}); remove it by hand"
    return True, None


def rehydrate(restic: Restic, bar: Path, snapshot: str, ts: str, replace: bool = False) -> int:
    """Write a copy back as backup folder `ts`. `replace`: a folder of that name is on the volume and
    dvdoctor found it damaged (read back): it is replaced once the copy is whole and verified."""
    from .stream import meta_from_tail, meta_need, unpack

    if not is_timestamp(ts) or not re.fullmatch(r"[0-9a-f]{8,64}", snapshot):
        say(failed=ts, why="give a snapshot id and a backup timestamp (YYYY-MM-DD-HH-MM-SS)")
        return 1
    final = bar / ts
    # a link there, even a dangling one, is something a rename would replace
    if os.path.lexists(final) and not (replace and final.is_dir() and not final.is_symlink()):
        say(failed=ts, why=f"{ts} is already on the backup volume")
        return 1
    work = bar / f"{PARTIAL}{ts}"
    if work.is_symlink():  # planted (dvdoctor never makes one): removed, never written through
        target = os.readlink(work)
        try:
            os.unlink(work)
            done = "the link was removed and nothing written through it; run the restore again"
        except OSError as exc:
            done = f"nothing was written through it, and the link could not be removed ({exc.strerror})"
        say(failed=ts, why=f"{work.name} on the backup volume was a symbolic link to {target}, which dvdoctor "
                           f"never makes: {done}")
        return 1
    try:
        _clear_partial(work)
    except OSError as exc:
        say(failed=ts, why=f"cannot remove the half-written {work.name} an earlier restore left: {exc}")
        return 1
    try:
        last, tags = restic.tail(snapshot, meta_need)
        meta = meta_from_tail(last)
    except (ResticError, StreamError, ValueError) as exc:
        say(failed=ts, why=f"the copy's metadata does not read back: {exc}")
        return 1
    if meta.get("backup") != ts:  # a tag can be changed by anyone with the password; the stream cannot
        say(failed=ts, why=f"snapshot {snapshot} holds a copy of backup {meta.get('backup')!r}, not of {ts}")
        return 1
    differ = _tags_differ(tags, meta)
    if differ:
        say(failed=ts, why=f"snapshot {snapshot}'s tags name other checksums than the copy holds ({differ}): "
                           "its tags were changed or the copy is damaged; list --copies shows the tags, so "
                           "neither is written back")
        return 1
    proc = restic.dump(snapshot)
    assert proc.stdout is not None
    try:
        result = unpack(proc.stdout, work, meta)
        proc.stdout.read()
        proc.wait()
        if proc.returncode != 0:
            stderr = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
            raise StreamError(str(explain(stderr, "dump", restic.secrets)))
        replaced, left = _put_in_place(work, final, replace)  # never renamed over what appeared meanwhile
    except (OSError, StreamError, ValueError) as exc:
        why = _dump_failed(restic, proc) or str(exc)
        proc.kill()
        try:
            _clear_partial(work)
        except OSError:
            pass  # the failure said first is the one that matters; check names what is left
        say(failed=ts, why=why)
        return 1
    say(rehydrated=ts, snapshot=snapshot, checksums=result.checksums(),
        bytes=sum(p.stat().st_size for p in final.iterdir() if p.is_file()),
        **({"replaced": "damaged"} if replaced else {}), **({"left": left} if left else {}))
    return 0


#: How long a stream that stopped early waits for `restic dump` to say why it ended.
DUMP_EXIT_SECONDS = 5


def _dump_failed(restic: Restic, proc: subprocess.Popen) -> str | None:
    """restic's own error, when `restic dump` ended on one: a stream cut short because restic could
    not read the repository (a pack whose bytes changed) is damage in the repository, said as
    restic says it, not a copy that was written short. None while restic still writes (the stream's
    own error stands: the caller stops it) or when it ended well."""
    try:
        proc.wait(timeout=DUMP_EXIT_SECONDS)
    except subprocess.TimeoutExpired:
        return None
    if proc.returncode == 0:
        return None
    stderr = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    return str(explain(stderr, "dump", restic.secrets))


def snapshots(restic: Restic, instance: str) -> int:
    for snap in restic.snapshots(f"{TAG},instance={instance}"):
        say(snapshot=snap.to_json())
    return 0


def _scope(instance: str) -> str:
    """The copies a retention policy weighs: this instance's complete ones. Incomplete ones (a killed
    copy) are removed by id before it, so they never count as the newest, in a plan or a real run."""
    return f"{TAG},instance={instance},{COMPLETE_TAG}"


#: restic's words for why `forget` keeps a snapshot, as prune --copies says them.
KEPT_FOR = {"last snapshot": "newest", "daily snapshot": "daily", "weekly snapshot": "weekly",
            "monthly snapshot": "monthly"}


def _entry(snap: Snapshot, why: list[str]) -> dict:
    return {"snapshot": snap.id, "backup": snap.backup, "time": snap.time, "why": why}


def _reason_key(raw: dict) -> tuple:
    """What ties a reason of restic's dry run to its kept snapshot (restic 0.14 prints no id in a reason)."""
    return raw.get("time"), raw.get("tree"), tuple(raw.get("tags") or ())


def _oldest_first(entry: dict) -> tuple:
    return entry["backup"], entry["time"], entry["snapshot"]


def plan_forget(restic: Restic, instance: str, namespace: str, policy: dict[str, int]) -> int:
    """What `forget` with this policy would remove and keep, and why: restic's own dry run of the very
    forget that `forget` runs, plus the incomplete copies `forget` removes first. Changes nothing."""
    mine = restic.snapshots(f"{TAG},instance={instance}")
    groups = restic.forget_plan(policy=policy, tags=[_scope(instance)], host=host(namespace))
    remove = [_entry(s, ["incomplete (stopped, or restic check failed)"]) for s in mine if not s.complete]
    keep: list[dict] = []
    for group in groups:
        reasons: dict[tuple, list[list[str]]] = {}
        for r in group.get("reasons") or []:
            reasons.setdefault(_reason_key(r.get("snapshot") or {}), []).append(list(r.get("matches") or []))
        for raw in group.get("keep") or []:
            matches = reasons.get(_reason_key(raw)) or [[]]
            keep.append(_entry(Snapshot.from_json(raw), [KEPT_FOR.get(m, m) for m in matches.pop(0)]))
        remove += [_entry(Snapshot.from_json(raw), ["outside the policy"]) for raw in group.get("remove") or []]
    decided = {e["snapshot"] for e in remove + keep}
    # a complete copy outside the forget's selection (another namespace's host) is left alone
    keep += [_entry(s, [f"left alone: copied from namespace {s.tags.get('namespace', '?')}"]) for s in mine
             if s.id not in decided]
    say(plan={"remove": sorted(remove, key=_oldest_first), "keep": sorted(keep, key=_oldest_first)})
    return 0


def forget(restic: Restic, instance: str, namespace: str, policy: dict[str, int]) -> int:
    """restic forget + prune of this instance's copies, after `restic check`: in a repository that lost
    packs, the copies the policy would remove may be the only ones that still restore."""
    restic.check()
    mine = restic.snapshots(f"{TAG},instance={instance}")
    broken = [s.id for s in mine if not s.complete]
    if broken:
        restic.forget(broken)
    before = {s.id for s in mine if s.complete}
    restic.forget(policy=policy, tags=[_scope(instance)], host=host(namespace))
    after = {s.id for s in restic.snapshots(f"{TAG},instance={instance}")}
    say(forgot=sorted(before - after), incomplete=broken, kept=sorted(after))
    return 0


def _repository_on(bar: Path, repository: str) -> str | None:
    """Why a repository on this machine's disk cannot hold copies: it is on the backup volume (or
    holds it), and would be lost with it, which is what copies are for."""
    if re.match(r"^[a-z0-9]+:", repository) and not repository.startswith("local:"):
        return None  # rest:, sftp:, s3:, ...: elsewhere by construction
    path = repository[len("local:"):] if repository.startswith("local:") else repository
    if not path:
        return None
    repo, volume = Path(path).resolve(), bar.resolve()
    if repo == volume or volume in repo.parents or repo in volume.parents:
        return ("the repository is on the backup volume itself (or holds it): copies there are lost with it; "
                "put the repository on another volume or host")
    return None


def _local_not_empty(repository: str) -> str | None:
    """Why a repository on this machine's disk may not be created: its folder already holds files.
    restic refuses only where a `config` is; a repository that lost its config would be given a new
    one beside its old keys and data, which then open with neither."""
    if re.match(r"^[a-z0-9]+:", repository) and not repository.startswith("local:"):
        return None  # rest:, sftp:, s3:, ...: restic's own refusal
    path = Path(repository[len("local:"):] if repository.startswith("local:") else repository)
    try:
        held = path.is_dir() and any(path.iterdir())
    except OSError:
        return None  # restic says what is wrong with it
    if not held:
        return None
    what = "a restic repository" if (path / "config").exists() else "files (a repository that lost its config?)"
    return (f"the repository's folder already holds {what}: nothing was created; give an empty or new folder, "
            "or, for a repository that is there, leave out --init")


ACTIONS = ("init", "copy", "snapshots", "rehydrate", "forget", "plan-forget", "stats", "check")


def main(argv: list[str]) -> int:
    # Started with SIGINT ignored (a script's `dvdoctor copy &` passes that on), this program could not
    # be stopped the way dvdoctor stops it, by SIGINT: Ctrl-C's default handler comes back first.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if not argv or argv[0] not in ACTIONS:
        say(error=f"usage: python -m dvdoctor.copies.job {'|'.join(ACTIONS)} ...")
        return 2
    bar = Path(os.environ.get("DV_ROOT", "") + os.environ.get("DV_BAR", "/mnt/PV/bar"))
    instance = os.environ.get("DVDOCTOR_INSTANCE", "")
    namespace = os.environ.get("DVDOCTOR_NAMESPACE", "")
    # the claim's root where this program sees it (the lab); a Job mounts only DV's subPath of it
    volume = Path(os.environ.get("DV_ROOT", "") + os.environ["DV_BAR_VOLUME"]) if os.environ.get("DV_BAR_VOLUME") else bar
    inside = _repository_on(volume, os.environ.get("RESTIC_REPOSITORY", ""))
    if inside:
        say(error=inside, usage=True)
        return 2
    try:
        restic = Restic(os.environ)
        action, args = argv[0], argv[1:]
        if action == "init":
            held = _local_not_empty(os.environ.get("RESTIC_REPOSITORY", ""))
            if held:
                say(error=held, usage=True)
                return 2
            restic.init()
            say(initialized=True)
            return 0
        if not instance:
            say(error="DVDOCTOR_INSTANCE is not set: copies are kept per DV instance", usage=True)
            return 2
        if action == "copy":
            return copy(restic, bar, instance, namespace, args)
        if action == "snapshots":
            return snapshots(restic, instance)
        if action in ("forget", "plan-forget"):
            policy = {k: int(v) for k, _, v in (a.partition("=") for a in args)}
            return (forget if action == "forget" else plan_forget)(restic, instance, namespace, policy)
        if action == "stats":
            say(stored=restic.stats())
            return 0
        if action == "check":
            restic.check()
            say(checked=True)
            return 0
        return rehydrate(restic, bar, args[0], args[1], replace=args[2:] == ["replace-damaged"])
    except ResticError as exc:
        say(error=str(exc), usage=exc.usage)
        return 2 if exc.usage else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
