"""The copy program's runs that change something (a copy made, copies removed, a copy written back
onto dv-bar-pvc), as actions of a plan: the one executor applies them, so each change lands in the
audit log like a backup's or a prune's, with what, where, before and after.

The repository is named in the log only as the one redaction pass shows it: a URL's password or a
key in it never reaches the file, and in a cluster dvdoctor never sees the location at all (the
site's Secret holds it), so the Secret's name stands for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..copies.where import JobOutcome, Run
from ..core import redact
from ..core.names import CopySettings
from ..core.units import human_bytes
from .audit import Change
from .plan import ActionFailed, Runner


def repository_shown(copies: CopySettings | None) -> str:
    """The repository as the audit log may show it: redacted, or the Secret that holds it."""
    if copies is None:
        return "no repository configured"
    if copies.secret:
        return f"the repository of secret/{copies.secret}"
    return redact.text(copies.repository or "")


@dataclass(eq=False)
class CopyProgramRun:
    """One run of the copy program that changes the repository or the backup volume.

    The outcome is kept on the action (the command renders every record the program printed); the
    changes returned are only what the program says it did, so a run that fails half-way still
    audits the copies it made before the failure.
    """

    program: Run
    args: tuple[str, ...]
    summary: str
    repository: str
    #: The volume is written (rehydrate): the Job mounts it read-write.
    write: bool = False
    #: Snapshot id -> backup timestamp, as listed before the run (what `forget` removes is named by id only).
    known: dict[str, str] = field(default_factory=dict)
    outcome: JobOutcome | None = None

    def describe(self) -> str:
        return self.summary

    def intent(self, run: Runner) -> list[Change]:
        """What this run will change, audited before the program starts: the program (a process
        here, a Job in a cluster) runs on to its end when dvdoctor is killed, so its change must be
        on record before, not only after."""
        action, repo = self.args[0], self.repository
        if action == "copy":
            return [Change(f"restic repository {repo}: copy of backup {ts}", "no copy",
                           "in progress (the copy program is copying it)") for ts in self.args[1:]]
        if action == "forget":
            return [Change(f"restic repository {repo}", f"{len(self.known)} copies of this DV instance listed",
                           f"in progress: restic forget --prune by the policy {' '.join(self.args[1:])}")]
        if action == "rehydrate":
            names = run.facts.names
            sid, ts = self.args[1], self.args[2]
            was = "damaged (read back): replaced once the copy is whole" if "replace-damaged" in self.args[3:] else "absent"
            return [Change(f"persistentvolumeclaims/{names.bar_pvc}:{names.bar_mount}/{ts}", was,
                           f"in progress: being written back from snapshot {sid} of restic repository {repo} "
                           f"(into .dvdoctor-rehydrate-{ts} until whole)")]
        return [Change(f"restic repository {repo}", "", f"in progress: {action}")]

    def apply(self, run: Runner) -> list[Change]:
        self.outcome = out = self.program(list(self.args), self.write)
        changes = self._changes(run, out)
        if out.rc != 0 and not changes:
            why = [str(r.get("why") or r.get("error")) for r in out.records if "failed" in r or "error" in r]
            raise ActionFailed("; ".join(why) or out.reason or "the copy program failed")
        return changes

    def _changes(self, run: Runner, out: JobOutcome) -> list[Change]:
        action = self.args[0]
        repo = self.repository
        if action == "copy":
            made = [r for r in out.records if "copied" in r]
            ids = self._snapshot_ids(made)
            return [Change(f"restic repository {repo}: copy of backup {r['copied']}", "no copy",
                           f"snapshot {ids.get(r['copied'], 'unknown')} ({human_bytes(r.get('added', 0))} of new "
                           "data before compression)") for r in made]
        if action == "forget":
            out_changes = []
            for r in (r for r in out.records if "forgot" in r):
                for sid in r.get("incomplete") or []:
                    out_changes.append(Change(f"restic repository {repo}: snapshot {sid}",
                                              f"incomplete copy of backup {self.known.get(sid, 'unknown')}",
                                              "removed (restic forget --prune)"))
                for sid in r.get("forgot") or []:
                    out_changes.append(Change(f"restic repository {repo}: snapshot {sid}",
                                              f"copy of backup {self.known.get(sid, 'unknown')}",
                                              "removed (restic forget --prune)"))
            return out_changes
        if action == "rehydrate":
            names = run.facts.names
            return [Change(f"persistentvolumeclaims/{names.bar_pvc}:{names.bar_mount}/{r['rehydrated']}",
                           "damaged (read back)" if r.get("replaced") else "absent",
                           f"backup folder written back from snapshot {r.get('snapshot', 'unknown')} of restic "
                           f"repository {repo} ({human_bytes(r.get('bytes', 0))})"
                           + ("" if not r.get("replaced") else f"; the damaged folder left: {r['left']}"
                              if r.get("left") else "; the damaged folder removed"))
                    for r in out.records if "rehydrated" in r]
        return []

    def _snapshot_ids(self, made: list[dict]) -> dict[str, str]:
        """backup -> snapshot id for the copies just made: from their records, which name the id each
        copy has after its tags were added (the one `list --copies` shows); else (a copy Job of an older
        image, or the program could not list after tagging) from the repository's list, one more run of
        the program, only then."""
        ids = {str(r["copied"]): str(r["snapshot"]) for r in made if r.get("snapshot")}
        if made and len(ids) < len(made):
            listed: dict[str, str] = {}
            for r in self.program(["snapshots"], False).records:
                s = r.get("snapshot")
                if isinstance(s, dict) and s.get("complete"):
                    listed[str(s.get("backup"))] = str(s.get("snapshot"))  # oldest first: the newest stays
            ids = {**listed, **ids}
        return ids
