"""Plans of typed actions, and the one executor that applies any plan and records every change.

A repair, a prune and the steps of a backup are all plans: a list of actions that can be printed
in plain words before anything happens, applied one by one, and written to the audit log with what
changed, where, before and after. In-pod work runs the shipped scripts with values in argv/env.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Protocol

from ..facts import dv_templates, probe
from ..cluster import k8s, oneshot
from .audit import AuditLog, Change
from ..cluster.port import Cluster
from ..core.errors import Conflict, DvdoctorError
from ..facts.model import Facts
from ..core.files import write_atomic
from ..core.names import REPLICAS_ANNOTATION


#: Read-patch rounds a Scale tries when the deployment keeps changing between them (409).
SCALE_TRIES = 3


class ActionFailed(DvdoctorError):
    """An action could not be applied; earlier actions of the plan stay applied and audited."""


class Action(Protocol):
    def describe(self) -> str: ...

    def apply(self, run: "Runner") -> list[Change]: ...


@dataclass
class Plan:
    #: Whose plan it is, the name the audit log files its changes under: a fix's id (the fixer sets
    #: it from the fix's module), or the flow's ("backup", "prune").
    fix: str = ""
    actions: list[Action] = field(default_factory=list)
    #: Lines printed with the plan: why these actions, what each frees, what is left alone.
    notes: list[str] = field(default_factory=list)
    #: Steps dvdoctor will not do itself (no safe automatic repair); printed, nothing changes.
    manual: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.actions


@dataclass
class Runner:
    """What actions need to act: the cluster port, the facts the plan was made from, the audit log."""

    cluster: Cluster
    facts: Facts
    audit: AuditLog
    progress: Callable[[str], None] = lambda _msg: None

    def on(self, facts: Facts) -> "Runner":
        """The same executor (port, audit log, progress) acting on facts collected since."""
        return replace(self, facts=facts)


# ---- actions on API objects ----------------------------------------------------------------


def scale_back_count(dep: dict) -> int:
    """The count a deployment left at 0 goes back to: the one recorded, else 1 (the runbook's value).

    A recorded 0 is no count to go back to (DV's API or console would stay down): 1, as with none.
    Every repair that scales the side deployments back up asks here, so they agree.
    """
    return k8s.recorded_replicas(dep) or 1


@dataclass(frozen=True)
class Scale:
    """Scale a deployment; going to 0 records the original count so it can be put back."""

    deployment: str
    replicas: int

    def describe(self) -> str:
        from ..core.words import plural

        return f"scale deployment/{self.deployment} to {plural(self.replicas, 'replica')}"

    def apply(self, run: Runner) -> list[Change]:
        """Patch against the version read, so a count someone changed meanwhile is never recorded wrong.

        A 409 (the deployment changed between our read and our patch: an HPA, `oc scale`, the
        operator) re-reads and tries again, a few times.
        """
        for _ in range(SCALE_TRIES):
            obj = run.cluster.get("deployments", self.deployment)
            if obj is None:
                raise ActionFailed(f"deployment {self.deployment} does not exist")
            before = k8s.spec_replicas(obj)
            if self.replicas == 0 and before > 0:
                annotations: dict[str, str | None] = {REPLICAS_ANNOTATION: str(before)}
            elif self.replicas > 0:
                annotations = {REPLICAS_ANNOTATION: None}
            else:
                annotations = {}
            meta: dict = {"annotations": annotations} if annotations else {}
            if obj["metadata"].get("resourceVersion"):
                meta["resourceVersion"] = obj["metadata"]["resourceVersion"]
            patch: dict = {"spec": {"replicas": self.replicas}}
            if meta:
                patch["metadata"] = meta
            try:
                run.cluster.patch("deployments", self.deployment, patch)
            except Conflict:
                continue
            return [Change(f"deployment/{self.deployment} replicas", str(before), str(self.replicas))]
        raise ActionFailed(f"deployment {self.deployment} kept changing under dvdoctor ({SCALE_TRIES} conflicts in a row)")


@dataclass(frozen=True)
class Patch:
    kind: str
    name: str
    patch: dict
    summary: str
    #: What the patched fields held, as the plan read them, for the audit log (so it can be undone).
    before: str = ""
    #: The change in words, when the patch's fields do not say it (a field cleared, a precondition):
    #: (what changed, what it is now), e.g. ("claimRef", "cpd30/dv-bar-pvc, uid cleared").
    words: tuple[str, str] | None = None

    def describe(self) -> str:
        return self.summary

    def apply(self, run: Runner) -> list[Change]:
        from ..core.words import leaves, value

        run.cluster.patch(self.kind, self.name, self.patch)
        if self.words:
            return [Change(f"{self.kind}/{self.name} {self.words[0]}", self.before, self.words[1])]
        fields = leaves(self.patch)
        if len(fields) == 1:
            path, new = fields[0]
            return [Change(f"{self.kind}/{self.name} {path}", self.before, value(new))]
        return [Change(f"{self.kind}/{self.name}", self.before, "; ".join(f"{path} {value(v)}" for path, v in fields))]

    def dry_run(self, run: Runner) -> None:
        run.cluster.patch(self.kind, self.name, self.patch, dry_run=True)

    def undo(self, run: Runner) -> "Action":
        """The patch that puts back what this one changes, read before it is applied."""
        before = run.cluster.get(self.kind, self.name) or {}
        back = inverse_patch(before, self.patch)
        return Patch(self.kind, self.name, back, f"put {self.kind}/{self.name} back as it was")


@dataclass(frozen=True)
class Create:
    kind: str
    body: dict
    summary: str

    def describe(self) -> str:
        return self.summary

    def apply(self, run: Runner) -> list[Change]:
        run.cluster.create(self.kind, self.body)
        return [Change(f"{self.kind}/{self.body['metadata']['name']}", "absent", "created")]

    def dry_run(self, run: Runner) -> None:
        run.cluster.create(self.kind, self.body, dry_run=True)

    def undo(self, run: Runner) -> "Action":
        name = self.body["metadata"]["name"]
        return Delete(self.kind, name, f"delete {self.kind}/{name} again")


@dataclass(frozen=True)
class AwaitBound:
    """Wait until a claim is Bound (the volume binder's work after a create), so the next action and
    the fix's verification see it bound; a claim still Pending at the bound is a failed action."""

    claim: str
    volume: str
    timeout: float = 60.0

    def describe(self) -> str:
        return f"wait for claim {self.claim} to be bound to persistentvolume/{self.volume}"

    def apply(self, run: Runner) -> list[Change]:
        def bound(obj: dict | None) -> bool:
            return obj is not None and (obj.get("status") or {}).get("phase") == "Bound"

        first: list[str] = []

        def seen(obj: dict | None) -> None:
            if not first:
                first.append(((obj or {}).get("status") or {}).get("phase", "absent"))

        obj = run.cluster.wait("persistentvolumeclaims", self.claim, bound, self.timeout, on_change=seen)
        if not bound(obj):
            phase = ((obj or {}).get("status") or {}).get("phase", "gone")
            raise ActionFailed(f"claim {self.claim} is {phase}, not Bound, after {self.timeout:.0f} s "
                               f"(`oc describe pvc {self.claim}` says why)")
        got = (obj.get("spec") or {}).get("volumeName")  # type: ignore[union-attr]
        if got != self.volume:
            raise ActionFailed(f"claim {self.claim} was bound to {got}, not to {self.volume}")
        return [Change(f"persistentvolumeclaims/{self.claim} phase", first[0] if first else "", f"Bound to {got}")]


@dataclass(frozen=True)
class AwaitGrown:
    """Wait until a claim's growth took effect, so what a plan does after it (freeing space) only runs
    when the room it counts on is there. Done when status.capacity reached the size, or when the
    volume is grown and only its file system waits for the next pod to mount it (FileSystemResizePending)."""

    claim: str
    size: str
    timeout: float = 300.0
    #: The claim's size when the plan was made: the growth's before (by the first look the grow is done).
    before: str = ""

    def describe(self) -> str:
        return f"wait for claim {self.claim} to reach {self.size}"

    def apply(self, run: Runner) -> list[Change]:
        from ..core.units import parse_quantity

        want = parse_quantity(self.size)

        def grown(obj: dict | None) -> bool:
            st = (obj or {}).get("status") or {}
            capacity = (st.get("capacity") or {}).get("storage")
            pending = any(c.get("type") == "FileSystemResizePending" and c.get("status") == "True"
                          for c in st.get("conditions") or [])
            return pending or (capacity is not None and parse_quantity(capacity) >= want)

        first: list[str] = []

        def capacity_of(obj: dict | None) -> str:
            return (((obj or {}).get("status") or {}).get("capacity") or {}).get("storage", "unknown")

        def seen(obj: dict | None) -> None:
            if not first:
                first.append(capacity_of(obj))

        obj = run.cluster.wait("persistentvolumeclaims", self.claim, grown, self.timeout, on_change=seen)
        capacity = capacity_of(obj)
        if not grown(obj):
            raise ActionFailed(f"claim {self.claim} still has {capacity} after {self.timeout:.0f} s: its storage "
                               f"driver has not grown it to {self.size} (`oc describe pvc {self.claim}` says why); "
                               "nothing after the growth was done")
        grown_to = capacity if parse_quantity(capacity if capacity != "unknown" else "0") >= want else \
            f"{self.size} (its file system grows when a pod next mounts it)"
        return [Change(f"persistentvolumeclaims/{self.claim} capacity", self.before or (first[0] if first else ""), grown_to)]


@dataclass(frozen=True)
class Delete:
    kind: str
    name: str
    summary: str

    def describe(self) -> str:
        return self.summary

    def apply(self, run: Runner) -> list[Change]:
        existed = run.cluster.delete(self.kind, self.name)
        return [Change(f"{self.kind}/{self.name}", "present" if existed else "absent", "deleted")]


@dataclass(frozen=True)
class StopJob:
    """Delete a running job with its pods (background propagation), then wait until its pods are gone;
    or, given `pod`, the job's pod still at work after its Job object was deleted, then wait for it.

    What follows a stop (removing the folder and the marker the job wrote, scaling DV's deployments
    back up) must never run while one of its pods may still be writing: the wait is what makes those
    steps safe, and a pod that outlives the timeout stops the plan there.
    """

    name: str
    summary: str
    timeout: float = 180.0
    interval: float = 1.0
    #: A pod of job `name` at work without its Job object: the one thing deleted and waited for.
    pod: str | None = None
    #: The uid of the Job (or pod) the plan was made for. DV reuses its jobs' names: a plan shown,
    #: then consented to a minute later, must not stop the next run of the name, one that someone
    #: started with dvcli.sh meanwhile and attends.
    uid: str | None = None

    def describe(self) -> str:
        return self.summary

    def apply(self, run: Runner) -> list[Change]:
        kind, name = ("pods", self.pod) if self.pod is not None else ("jobs", self.name)
        found = run.cluster.get(kind, name)  # what it was, for the audit: a Job may have completed meanwhile
        if found is not None and self.uid is not None and k8s.uid(found) != self.uid:
            raise ActionFailed(f"{kind[:-1]} {name} is another run than the one this plan was made for "
                               f"(uid {k8s.uid(found)}, planned for {self.uid}): it was not stopped; "
                               "run the command again to see what it finds now")
        before = ("absent" if found is None else k8s.pod_phase(found) if self.pod is not None else
                  {"active": "running"}.get(k8s.job_state(found), k8s.job_state(found)))
        run.cluster.delete(kind, name)

        def left() -> list[dict]:
            if self.pod is not None:
                return [p for p in [run.cluster.get("pods", self.pod)] if p is not None]
            return run.cluster.list("pods", label_selector=f"job-name={self.name}")

        target = f"{kind}/{name}"
        deadline = time.monotonic() + self.timeout
        while True:
            pods = left()
            if not pods:
                return [Change(target, before, "deleted, its pods ended" if self.pod is None else "deleted, ended")]
            if time.monotonic() >= deadline:
                still = (f"pod {self.pod} is deleted but still there" if self.pod else
                         f"job {self.name} is deleted but its pods {', '.join(k8s.name(p) for p in pods)} are still there")
                raise ActionFailed(f"{still} after {self.timeout:.0f} s")
            time.sleep(min(self.interval, max(0.0, deadline - time.monotonic())))


@dataclass(frozen=True)
class WriteLocalFile:
    """Write a file on this machine (never over an existing original), e.g. a repaired dvcli.sh copy."""

    path: str
    content: str
    summary: str
    mode: int = 0o755

    def describe(self) -> str:
        return self.summary

    def apply(self, run: Runner) -> list[Change]:
        target = Path(self.path)
        before = "absent" if not target.exists() else f"{target.stat().st_size} bytes"
        write_atomic(target, self.content, self.mode, what="repaired copy")
        return [Change(str(target), before, f"{len(self.content.encode())} bytes")]


# ---- actions through the in-pod scripts ----------------------------------------------------


def parse_changes(text: str) -> tuple[list[Change], list[str], list[str], bool]:
    """Read the changed/note/error/end lines the fix scripts print."""
    changes, notes, errors, complete = [], [], [], False
    for line in text.splitlines():
        parts = line.split("\t")
        if parts[0] == "changed" and len(parts) >= 4:
            changes.append(Change(parts[1], parts[2], parts[3]))
        elif parts[0] == "note" and len(parts) >= 2:
            notes.append(parts[1])
        elif parts[0] == "error" and len(parts) >= 2:
            errors.append(parts[1])
        elif parts[0] == "end":
            complete = True
    return changes, notes, errors, complete


@dataclass(frozen=True)
class BarScript:
    """Run bar-fix.sh with these arguments from a short-lived pod that mounts the backup volume."""

    args: tuple[str, ...]
    summary: str
    allow_world_writable: bool = False
    #: Values too long or too free-form for argv (a manifest's JSON), passed in the pod's environment:
    #: (name, value) pairs, never pasted into the script's text.
    env: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        return self.summary

    def apply(self, run: Runner) -> list[Change]:
        names = run.facts.names
        if dv_templates.bar_image(run.facts) is None:
            raise ActionFailed(f"cannot start a pod on {names.bar_pvc}: job {names.init_volume_job} is missing")
        manifest = dv_templates.bar_job(run.facts, "fix", "bar-fix.sh", list(self.args),
                                        {**dict(self.env), "ALLOW_WORLD": "1" if self.allow_world_writable else "0"})
        result = oneshot.run_job(run.cluster, manifest, progress=run.progress)
        return _script_changes(result.log, f"pod {result.pod or result.job}: {result.outcome} {result.reason}".strip())


@dataclass(frozen=True)
class EngineScript:
    """Run engine-fix.sh with these arguments inside dv-engine-0 (the runbook's `oc rsh` steps)."""

    args: tuple[str, ...]
    summary: str

    def describe(self) -> str:
        return self.summary

    def apply(self, run: Runner) -> list[Change]:
        names = run.facts.names
        argv = ["bash", "-c", probe.script("engine-fix.sh"), "dvdoctor-engine-fix", *self.args]
        result = run.cluster.exec(names.engine_pod, argv, container=dv_templates.engine_container(run.facts))
        return _script_changes(result.stdout, f"exec in {names.engine_pod} exited {result.rc}: {result.stderr.strip()[:200]}")


def remove_marker(facts: Facts, marker: str, why: str) -> EngineScript:
    """Remove a BAR marker from dv-engine-0 (engine-fix.sh refuses any other file name)."""
    names = facts.names
    return EngineScript(("remove-marker", names.marker_dir, marker), f"remove {names.marker_dir}/{marker} {why}")


def _script_changes(text: str, failure: str) -> list[Change]:
    changes, _notes, errors, complete = parse_changes(text)
    if errors:
        raise ActionFailed(errors[0])
    if not complete:
        raise ActionFailed(f"the repair script did not finish ({failure})")
    return changes


#: Server-side dry run (dryRun=All) is on by default from Kubernetes 1.13 (GA in 1.18); an older
#: server ignores the parameter and would really create what it was only asked to check.
DRY_RUN_SINCE = (1, 13)


def inverse_patch(before: dict, patch: dict) -> dict:
    """The merge patch that undoes `patch` on `before`: old values back, added keys removed (null)."""
    out: dict = {}
    for key, value in patch.items():
        old = before.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            out[key] = inverse_patch(old, value)
        else:
            out[key] = old
    return out


def _not_yet_there(message: str, plan: Plan) -> bool:
    """A dry run refused only because another object of the same plan is not created yet (a
    RoleBinding's Role): the real create comes after it, and is undone with the rest if refused."""
    created = {a.body["metadata"]["name"] for a in plan.actions if isinstance(a, Create)}
    return "not found" in message and any(f'"{name}" not found' in message for name in created)


def execute_all_or_nothing(plan: Plan, run: Runner) -> list[Change]:
    """Apply a plan of API objects as one: every object is first sent with dryRun=All, and none is
    created when the server refuses any; a failure half-way undoes what was done, and says so.

    Used where a partial result is worse than none (`schedule --apply`: a Role and RoleBinding
    without the CronJob they were for). Each undo is audited like any change.
    """
    version = run.cluster.server_version()
    if version is not None and version < DRY_RUN_SINCE:
        raise ActionFailed(f"the API server is Kubernetes {version[0]}.{version[1]}, which has no server-side dry run "
                           f"(from {DRY_RUN_SINCE[0]}.{DRY_RUN_SINCE[1]}): nothing was changed; apply the printed "
                           "manifests by hand (`oc apply -f -`)")
    refused = []
    for action in plan.actions:
        dry = getattr(action, "dry_run", None)
        if dry is None:
            continue
        try:
            dry(run)
        except DvdoctorError as exc:
            if not _not_yet_there(str(exc), plan):
                refused.append(f"{action.describe()}: {exc}")
    if refused:
        raise ActionFailed(f"the server refused {len(refused)} of {len(plan.actions)} object(s) in a dry run, "
                           f"so nothing was changed: {'; '.join(refused)}")
    undos: list[Action] = []
    done: list[Change] = []
    for action in plan.actions:
        try:
            undo = action.undo(run) if hasattr(action, "undo") else None
            done.extend(_apply_one(plan, run, action))
        except DvdoctorError as exc:
            raise ActionFailed(f"{action.describe()}: {exc}; {_roll_back(plan, run, undos)}") from exc
        if undo is not None:
            undos.append(undo)
    return done


def _roll_back(plan: Plan, run: Runner, undos: list[Action]) -> str:
    """Undo what an all-or-nothing plan did, newest first; the sentence that says what was undone."""
    if not undos:
        return "nothing had been changed"
    undone, left = [], []
    for undo in reversed(undos):
        run.progress(f"undo: {undo.describe()}")
        try:
            changes = undo.apply(run)
        except DvdoctorError as exc:
            run.audit.record(plan.fix, f"undo: {undo.describe()}", run.facts.namespace, [], error=str(exc))
            left.append(f"{undo.describe()} ({exc})")
            continue
        run.audit.record(plan.fix, f"undo: {undo.describe()}", run.facts.namespace, changes)
        undone.append(undo.describe())
    said = f"undone: {', '.join(undone)}" if undone else "nothing could be undone"
    return said + (f"; NOT undone, do it by hand: {', '.join(left)}" if left else "")


def execute(plan: Plan, run: Runner) -> list[Change]:
    """Apply every action in order, auditing each change as it happens; stop at the first failure."""
    done: list[Change] = []
    for action in plan.actions:
        try:
            done.extend(_apply_one(plan, run, action))
        except DvdoctorError as exc:
            raise ActionFailed(f"{action.describe()}: {exc}") from exc
    return done


def _apply_one(plan: Plan, run: Runner, action: Action) -> list[Change]:
    """Apply one action and audit what it changed, or the error that stopped it (re-raised).

    An action that sets going something that runs on without dvdoctor (the copy program) says what it
    will change (`intent`): that is audited before it starts, so killing dvdoctor meanwhile leaves the
    change recorded, as in progress."""
    run.progress(action.describe())
    intent = getattr(action, "intent", None)
    if intent is not None:
        run.audit.started(plan.fix, action.describe(), run.facts.namespace, intent(run))
    try:
        changes = action.apply(run)
    except DvdoctorError as exc:
        run.audit.record(plan.fix, action.describe(), run.facts.namespace, [], error=str(exc))
        raise
    run.audit.record(plan.fix, action.describe(), run.facts.namespace, changes)
    return changes
