"""Where the copy program runs, and how its records come back.

The copy program (`dvdoctor.copies.job`) runs where the backup volume is:
- in a cluster, as a one-shot Job with dvdoctor's image (`copies.image`), dv-bar-pvc mounted from
  DV's own backup template (read-only to copy), and the repository's settings from the site's
  Secret (`copies.secret`, by envFrom: they never reach dvdoctor, a command line or a log);
- in the lab, as the same program on this machine, against the lab's backup volume folder, with
  `copies.repository` and `copies.password_file`.
Either way it prints one JSON record a line, read here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..cluster import k8s, oneshot
from ..cluster.port import Cluster
from ..core import signals
from ..core.errors import UsageError
from ..facts.model import Facts
from ..core.names import CopySettings
from ..facts.origin import live_identity
from .restic import stop_with_sigint

#: A copy of a 3 GB backup reads and compresses it once; the Job is stopped well after that.
COPY_DEADLINE = 4 * 3600


@dataclass
class JobOutcome:
    rc: int
    records: list[dict] = field(default_factory=list)
    reason: str = ""

    def errors(self) -> list[str]:
        return [str(r["error"]) for r in self.records if "error" in r]

    @property
    def usage(self) -> bool:
        return any(r.get("usage") for r in self.records if "error" in r)


def records(text: str) -> list[dict]:
    """The program's JSON records; any other line (a shell's, restic's) is not one and is left out."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                out.append(value)
    return out


Run = Callable[[list[str], bool], JobOutcome]


def repository_damage(run: Run) -> str | None:
    """`restic check` through the copy program, without reading the data: None when every pack the
    index names is there and every copy's trees load, else the one line that says what is not. A
    listing alone cannot tell: restic lists a copy whose packs were lost as it lists a whole one."""
    outcome = run(["check"], False)
    if outcome.rc == 0:
        return None
    return (outcome.errors() or [outcome.reason or "the copy program failed"])[0]


def settings_for(copies: CopySettings | None, *, lab: bool) -> CopySettings:
    """The copies settings, checked against where this run is; UsageError says what to add."""
    if copies is None:
        # worded so that the one redaction pass leaves it whole (`password_file: PATH` reads as a value)
        raise UsageError("no copies are configured: add `copies:` to dvdoctor.yaml, with `repository` (a restic "
                         "location) and `password_file` (a file holding its password) for this machine (the "
                         "lab), or with `secret` (a Secret's name) in a cluster")
    if lab and not copies.local:
        raise UsageError("the lab runs copies on this machine: give copies.repository and copies.password_file")
    if not lab and copies.local:
        raise UsageError("in a cluster the copy runs as a Job: give copies.secret (a Secret with RESTIC_REPOSITORY "
                         "and RESTIC_PASSWORD) and copies.image (dvdoctor's image)")
    if not lab and not copies.image:
        raise UsageError("copies.image: name dvdoctor's image (built from the Containerfile, with restic) "
                         "for the copy Job")
    if copies.local:
        pw = Path(copies.password_file or "")
        if not pw.is_file() or not os.access(pw, os.R_OK):
            raise UsageError(f"the file that copies: names for the repository's password ({str(pw)!r}) is not a "
                             "readable file")
    return copies


def local_run(bar_dir: Path, copies: CopySettings, instance: str, namespace: str,
              owner: int | None = None, volume: Path | None = None) -> Run:
    """The copy program on this machine (the lab): the lab's backup volume folder as DV_BAR, and the
    whole volume's folder (`volume`, the claim's root above DV's subPath) as DV_BAR_VOLUME, so a
    repository anywhere on the claim is refused, not only under DV's folder."""

    def run(args: list[str], write: bool) -> JobOutcome:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RESTIC_")}
        env.update({"DV_BAR": str(bar_dir), "DV_BAR_VOLUME": str(volume or bar_dir),
                    "DVDOCTOR_INSTANCE": instance, "DVDOCTOR_NAMESPACE": namespace,
                    "RESTIC_REPOSITORY": copies.repository or "",
                    "RESTIC_PASSWORD_FILE": str(Path(copies.password_file or "").resolve()),
                    # never the dvdoctor of the current folder (another checkout): this one's, from sys.path
                    "PYTHONSAFEPATH": "1"})
        done = _run_program([sys.executable, "-m", "dvdoctor.copies.job", *args], env)
        if write and owner is not None and os.geteuid() == 0:
            _give(bar_dir, owner)
        out = JobOutcome(done.returncode, records(done.stdout))
        if done.returncode != 0 and not out.records:
            out.reason = (done.stderr.strip().splitlines() or ["the copy program failed"])[-1]
        return out

    return run


def _run_program(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """The copy program to its end. Interrupted, it gets SIGINT and a moment to stop restic itself,
    which then saves no snapshot of a stream it never finished, and removes its lock; only a program
    that does not stop is killed. After Ctrl-C it is first given two seconds to stop on its own (a
    terminal's Ctrl-C reaches the whole process group, the program too); after SIGTERM or SIGHUP
    (to dvdoctor alone) it gets SIGINT at once. The signals are held while it starts and while it is
    stopped (core.signals): one landing inside Popen, or a second Ctrl-C during the stop, never
    leaves it running unseen."""

    def start() -> subprocess.Popen:
        return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    with signals.owned(start, _stop_program) as proc:
        out, err = proc.communicate()
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _stop_program(proc: subprocess.Popen, why: BaseException) -> None:
    if isinstance(why, KeyboardInterrupt):
        try:  # a Ctrl-C at a terminal reached the program too: it is stopping already
            proc.communicate(timeout=2)
            return
        except subprocess.TimeoutExpired:
            pass
    stop_with_sigint(proc, lambda t: proc.communicate(timeout=t))


def _give(bar_dir: Path, uid: int) -> None:
    """Rehydrated folders belong to the BAR uid, as DV's own backups do (root labs only)."""
    for top in bar_dir.iterdir():
        if top.is_dir() and not top.is_symlink() and top.stat().st_uid == 0:
            for dirpath, _, files in os.walk(top):  # never through a link: it may point off the volume
                os.chown(dirpath, uid, 0, follow_symlinks=False)
                for f in files:
                    os.chown(os.path.join(dirpath, f), uid, 0, follow_symlinks=False)


#: Where the copy Job mounts `copies.claim`, the claim a repository path lives on.
REPOSITORY_MOUNT = "/mnt/copies"


def copy_job(facts: Facts, copies: CopySettings, args: list[str], *, write: bool) -> dict:
    """The Job that runs the copy program in the cluster: dvdoctor's image, the BAR volume as DV's
    backup template mounts it (read-only unless the action writes), the Secret by envFrom, and the
    repository's own claim (`copies.claim`) at `REPOSITORY_MOUNT` for every action: restic writes
    its locks there even to list."""
    from ..facts.dv_templates import bar_uid, bar_volume_spec

    names = facts.names
    volumes, mounts = bar_volume_spec(facts)
    # only copy and rehydrate read the volume: listing and pruning copies work with the claim gone
    needs_volume = bool(args) and args[0] in ("copy", "rehydrate")
    bar_mounts = [dict(m, readOnly=not write) for m in mounts if m.get("mountPath") == names.bar_mount
                  and needs_volume]
    used = {m["name"] for m in bar_mounts}
    if copies.claim == names.bar_pvc:
        raise UsageError(f"copies.claim: {names.bar_pvc} is the backup volume itself; copies there are lost with "
                         "it: name another claim")
    repo_volumes, repo_mounts = [], []
    if copies.claim:
        repo_volumes = [{"name": "dvdoctor-copies", "persistentVolumeClaim": {"claimName": copies.claim}}]
        repo_mounts = [{"name": "dvdoctor-copies", "mountPath": REPOSITORY_MOUNT}]
    identity = live_identity(facts)
    manifest = oneshot.script_job(
        name=oneshot.job_name("copy"), purpose="copy", image=copies.image or "", service_account=names.bar_sa,
        uid=bar_uid(facts), script_text="", args=[],
        env={"DV_BAR": names.bar_mount, "DVDOCTOR_INSTANCE": identity.uid if identity else "",
             "DVDOCTOR_NAMESPACE": facts.namespace, "HOME": "/tmp", "RESTIC_CACHE_DIR": "/tmp/restic-cache"},
        volumes=[v for v in volumes if v["name"] in used] + repo_volumes, mounts=bar_mounts + repo_mounts,
        deadline_seconds=COPY_DEADLINE, ttl_seconds=3600)
    container = k8s.job_pod_spec(manifest)["containers"][0]
    container["command"] = ["python3", "-m", "dvdoctor.copies.job", *args]
    container["envFrom"] = [{"secretRef": {"name": copies.secret}}]
    container["resources"] = {"requests": {"cpu": "500m", "memory": "512Mi"},
                              "limits": {"cpu": "2", "memory": "1Gi"}}
    return manifest


def job_run(cluster: Cluster, facts: Facts, copies: CopySettings,
            progress: Callable[[str], None] | None = None) -> Run:
    def run(args: list[str], write: bool) -> JobOutcome:
        manifest = copy_job(facts, copies, args, write=write)
        result = oneshot.run_job(cluster, manifest, timeout=COPY_DEADLINE, progress=progress)
        out = JobOutcome(0 if result.ok else 1, records(result.log))
        if not result.ok:
            out.reason = result.reason or result.outcome
            if out.usage:
                out.rc = 2
        return out

    return run


def runner(cluster: Cluster, facts: Facts, copies: CopySettings | None,
           progress: Callable[[str], None] | None = None) -> Run:
    """Where the copy program runs for this port: on this machine for the lab, in a Job otherwise."""
    store = getattr(cluster, "store", None)
    checked = settings_for(copies, lab=store is not None)
    if store is not None:
        identity = live_identity(facts)
        volume = store.volume_dir(facts.names.bar_pvc)
        return local_run(volume / bar_sub_path(facts), checked, identity.uid if identity else "", facts.namespace,
                         owner=store.meta().get("bar_uid"), volume=volume)
    return job_run(cluster, facts, checked, progress)


def bar_sub_path(facts: Facts) -> str:
    """The subPath DV's backup template mounts dv-bar-pvc with (1.5.0 in DV 1.5.0)."""
    from ..facts.dv_templates import bar_volume_spec

    _, mounts = bar_volume_spec(facts)
    for m in mounts:
        if m.get("mountPath") == facts.names.bar_mount:
            return m.get("subPath", "")
    return ""


