"""`dvdoctor backup`: the runbook's backup, with the manual steps done and DV never left down silently.

Gate -> consent -> scale the side deployments to 0 (recording their counts) -> DV's backup job from
DV's template -> watch -> save its log -> postflight -> scale back, in every case, errors included.
Ctrl-C, SIGTERM or SIGHUP while DV's job runs abort the backup: the job is stopped and waited for,
its partial folder and marker removed, and only then do the deployments come back. Every change
goes through the plan executor, so it is audited and can be undone.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from rich.console import Console
from rich.markup import escape

from ..cluster import k8s
from ..facts import origin, trust
from ..facts.backups import Backup, backups, link_timestamp, not_future
from ..core.units import human_bytes
from ..core.errors import DvdoctorError, Forbidden, Invalid
from ..facts.probe import ReadBack
from ..facts.model import Facts
from ..core.names import NEWEST_BEFORE_ANNOTATION
from ..facts.bar_jobs import BarJob
from ..repair.owner import cleanup_after_stop, refuse_while_active, refuse_while_active_live
from ..repair.plan import (
    ActionFailed,
    BarScript,
    Create,
    Delete,
    Plan,
    Runner,
    StopJob,
    execute,
)
from ..core.signals import interrupted_by_signals
from . import checkpoints, jobs
from .common import (
    FlowOptions,
    Interrupted,
    dv_ready,
    run_dv_job,
    show_dry_run,
)
from ..repair.quiesce import quiesce_plan, unquiesce_plan
from ..facts.dv_templates import pvc_from_template


def original_replicas(dep: dict, facts: Facts | None = None) -> int:
    """The count to scale back to after the backup: what runs now, else what was recorded, else 1.

    A deployment found at 0 with no backup running was left down: by an earlier run (dvdoctor
    recorded its count: that count) or by a person following the runbook (1, the runbook's value),
    unless the site accepted it at 0 with a suppression of side-deployments-left-down, which wins
    over a count an earlier run recorded (second break-it, session 21: the backup scaled such a
    deployment up from the count the fix, rightly, had left in place). So a backup never ends with
    DV's API or console down, whoever left them so, but where the site keeps one down.
    """
    replicas = k8s.spec_replicas(dep)
    if replicas > 0:
        return replicas
    if facts is not None and _accepted_at_zero(facts, k8s.name(dep)):
        return 0
    recorded = k8s.recorded_replicas(dep)
    if recorded:  # a recorded 0 is no count to go back to (the fixes scale it to 1 too)
        return recorded
    return 1


def _accepted_at_zero(facts: Facts, name: str) -> bool:
    """Whether the site's dvdoctor.yaml suppresses side-deployments-left-down for this deployment."""
    from ..verdicts.registry import Problem

    probe = Problem("", object=f"deployment/{name}")
    return any(s.matches(LEFT_DOWN, probe) for s in getattr(facts.settings, "suppressions", ()))


#: The check whose finding the backup repairs on its way out (see original_replicas).
LEFT_DOWN = "side-deployments-left-down"


def start_plan(facts: Facts, job: dict, opts: FlowOptions) -> Plan:
    """Create dv-bar-pvc if missing, remove a finished old dv-backup-job, create the new one."""
    names = facts.names
    plan = Plan("backup")
    if facts.get("persistentvolumeclaims", names.bar_pvc) is None:
        pvc = pvc_from_template(facts, opts.storage_class, opts.bar_size)
        plan.actions.append(Create("persistentvolumeclaims", pvc,
                                   f"create claim {names.bar_pvc} ({pvc['spec']['storageClassName']}, "
                                   f"{pvc['spec']['resources']['requests']['storage']}) from DV's template"))
    old = facts.get("jobs", job["metadata"]["name"])
    if old is not None:
        if k8s.job_state(old) == "active":  # never deleted as "finished": it is DV's job at work
            refuse_while_active(facts, "dvdoctor backup")
        plan.actions.append(Delete("jobs", k8s.name(old), f"delete the finished job {k8s.name(old)} and its pods"))
    if facts.bar is not None:  # which folders are this job's, should it have to be stopped
        items = not_future(backups(facts.bar, names), facts.now)  # a future-dated folder is no newest
        job["metadata"].setdefault("annotations", {})[NEWEST_BEFORE_ANNOTATION] = items[-1].timestamp if items else ""
    plan.actions.append(Create("jobs", job, f"create job {job['metadata']['name']} from DV's template "
                                            f"(image {k8s.pod_image(k8s.job_pod_spec(job))})"))
    return plan


def report_partial(console: Console, after: Facts, started: datetime, existing: frozenset[str] = frozenset()) -> None:
    """After a failed job: what the partial backup holds on the volume, and that the restore point did not move.

    A backup that ran out of space leaves its folder behind; the space it took is what the next
    backup lacks, so it is said here, with the repair that removes it.
    """
    names = after.names
    if after.bar is None:
        console.print(f"  the backup volume could not be inspected: {escape(after.skipped('bar_volume') or '')}")
        return
    partial = new_folders(backups(after.bar, names), started, existing)
    current = link_timestamp(after.bar, names)
    for b in partial:
        console.print(f"  the failed backup {b.timestamp} left {human_bytes(b.size())} on {names.bar_pvc} "
                      f"({', '.join(sorted(b.files)) or 'no files'}); remove it with: "
                      "dvdoctor fix --issue incomplete-backups", soft_wrap=True)
    link = (after.bar.get("link") or {}).get("target") or "nothing"
    console.print(f"  the restore point did not move: {names.symlink} -> {link}"
                  + (f" (backup {current})" if current else ""), soft_wrap=True)


#: Job outcomes after which DV's job no longer runs (a failed one was deleted by run_dv_job).
JOB_ENDED = ("Complete", "Failed")
#: After DV's job: read the new backup back whatever was recorded (the restore point and newest folder).
NEW_BACKUP_READ_BACK = ReadBack(mode="recorded", also=("@link", "@newest"))


def new_folders(items: list[Backup], started: datetime, existing: frozenset[str]) -> list[Backup]:
    """The backup folders this run's job wrote: named at or after its start, and not on the volume
    before it. A folder already there, dated a few minutes ahead by a pod's clock (within the
    skew allowed), is named after the start too, yet it is not the new backup."""
    since = started.replace(microsecond=0)  # backup folders are named to the second
    return [b for b in items if b.time >= since and b.timestamp not in existing]


def postflight(facts: Facts, started: datetime, existing: frozenset[str] = frozenset()) -> list[str]:
    """What must hold after a backup; returns the problems found (empty when trusted).

    The new backup must be good by the one rule (dvdoctor/facts/trust.py): read back now, its combined
    tarball and the component tarballs inside it, and the restore point must name it.
    """
    names = facts.names
    problems = []
    bar = facts.bar
    if bar is None:
        return [f"the backup volume could not be inspected: {facts.skipped('bar_volume')}"]
    s = trust.survey(facts)
    new = new_folders(s.backups, started, existing)
    if not new:
        problems.append("no new backup folder on the volume")
    elif (verdict := s.verdicts[new[-1].timestamp]).state != trust.GOOD or not verdict.fresh:
        problems.append(f"backup {new[-1].timestamp} is {verdict.state}: {verdict.why}")
    elif s.link_ts != new[-1].timestamp:
        problems.append(f"{names.symlink} does not point at the new backup {new[-1].timestamp}")
    if facts.marker(names.bar_marker):
        problems.append(f"{names.marker_dir}/{names.bar_marker} is still there")
    return problems


def put_back_restore_point(runner: Runner, after: Facts, started: datetime, console: Console,
                           collect_again) -> None:
    """After a backup found not good: DV's job moved the restore point onto it last, so put it back on
    the newest other backup proven good, and say where it points (the restore point only moves to a
    good one). The newest older backup is read back now if nothing recorded it good.

    The new backup itself stays on the volume for a look (`check` names it; `fix --issue
    incomplete-backups` removes it)."""
    names = after.names
    if after.bar is None:
        return
    s = trust.survey(after)
    since = started.replace(microsecond=0)  # backup folders are named to the second
    at = s.get(s.link_ts)
    if at is None or at.time < since or s.state(s.link_ts) == trust.GOOD:
        return  # the link is not on the new backup (DV's job did not move it), or that one is good
    new = s.link_ts
    good = [b.timestamp for b in s.good() if b.timestamp != new]
    older = [b.timestamp for b in s.backups if b.time < since and s.state(b.timestamp) != trust.DAMAGED]
    if not good and older:
        s = trust.survey(collect_again(ReadBack(mode="recorded", also=(older[-1],))))
        good = [b.timestamp for b in s.good() if b.timestamp != new]
    if not good:
        console.print(f"[red]✗ {names.symlink} points at the new backup {new}, which is not good, and no other "
                      "backup is proven good: take another backup, or prove an older one with: dvdoctor list --verify[/]",
                      soft_wrap=True)
        return
    action = BarScript(("relink", good[-1]), f"point {names.bar_mount}/{names.symlink} back at "
                                              f"{good[-1]}/{names.combined_tarball} (DV's job moved it to {new})")
    try:
        execute(Plan("backup", [action]), runner)
    except ActionFailed as exc:
        console.print(f"[red]✗ {names.symlink} still points at the new backup {new}, which is not good: "
                      f"{escape(str(exc))}; finish with: dvdoctor fix --issue broken-backup-symlink[/]", soft_wrap=True)
        return
    console.print(f"  the restore point is back on the good backup {good[-1]}: {names.symlink} -> "
                  f"{good[-1]}/{names.combined_tarball}", soft_wrap=True)


def write_manifest(runner: Runner, facts: Facts, newest: Backup, verdict: trust.Verdict, console: Console) -> None:
    """Record beside the new backup which DV instance took it, so `restore` can refuse it elsewhere,
    and that it read back (with its sha256 and the tarball's size:mtime), so later runs trust it
    without reading 3 GB again while the file is unchanged.

    A failure here does not undo a good backup: it is said, with what it costs (restore will ask).
    """
    names = facts.names
    identity = origin.live_identity(facts)
    if identity is None:
        console.print(f"[yellow]! no {origin.engine_statefulset(facts)} StatefulSet: the backup's origin is not "
                      "recorded; restoring it will ask to accept an unverified origin[/]")
        return
    now = datetime.now(timezone.utc)
    body = origin.manifest(identity, newest, (*names.component_tarballs, names.combined_tarball), now)
    if verdict.state == trust.GOOD and verdict.fresh and newest.stamp:
        body[trust.RECORD_KEY] = trust.record(newest, verdict, names, now)
    action = BarScript(("manifest", newest.timestamp),
                       f"record in {newest.timestamp}/{origin.MANIFEST_NAME} that DV instance {identity.statefulset} "
                       f"uid {identity.uid} took it",
                       env=(("MANIFEST", json.dumps(body, sort_keys=True)),))
    try:
        execute(Plan("backup", [action]), runner)
    except ActionFailed as exc:
        console.print(f"[yellow]! {escape(str(exc))}; restoring this backup will ask to accept an unverified origin[/]")


def run_backup(facts: Facts, options: FlowOptions, console: Console, runner: Runner,
               collect_again) -> int:
    """Run the backup after the gate passed and the user agreed; returns the exit code."""
    names = facts.names
    job = jobs.job_from_template(facts, "dv-backup-job.yaml", "dvdoctor backup")
    job_name = job["metadata"]["name"]
    quiesce = quiesce_plan(facts)
    start = start_plan(facts, job, options)
    if options.dry_run:
        show_dry_run(console, quiesce.actions + start.actions,
                     "watch the job, save its log, check the new backup, scale the deployments back, and "
                     f"record which DV instance took it in {origin.MANIFEST_NAME}")
        return 0
    before = {n: original_replicas(d, facts) for n in names.side_deployments if (d := facts.get("deployments", n))}
    started = datetime.now(timezone.utc)
    existing = frozenset(b.timestamp for b in backups(facts.bar, names)) if facts.bar is not None else frozenset()
    refuse_while_active_live(runner.cluster, names, "dvdoctor backup")  # a job started since the gate looked
    with interrupted_by_signals():
        code = 1
        try:
            scale_down_each(quiesce, runner, before)
            checkpoints.reached("scaled-down")
            execute(start, runner)
            checkpoints.reached("job-created")
            console.print(f"DV is offline: job {job_name} is backing it up")
            outcome = run_dv_job(runner, facts, job_name, options, console)
            if not outcome.ok and still_writing(runner, job_name, console):
                before = {}  # a pod of DV's job outlived its stop: nothing may come back up beside it
            if outcome.outcome in JOB_ENDED and before:
                # DV's job is over: its tar no longer runs, so DV's side deployments come back now,
                # before the new backup is read back (which takes as long as a gunzip of it, twice)
                restore_side_deployments(runner, facts, before, console)
                before = {}
            if not outcome.ok:
                report_partial(console, collect_again(), started, existing)
                return 1
            after = collect_again(NEW_BACKUP_READ_BACK)
            checkpoints.reached("postflight")
            problems = postflight(after, started, existing)
            if problems:
                for p in problems:
                    console.print(f"[red]✗[/] postflight: {escape(p)}")
                put_back_restore_point(runner, after, started, console, collect_again)
                return 1
            s = trust.survey(after)
            newest = new_folders(s.backups, started, existing)[-1]  # postflight found it, good and the restore point
            console.print(f"[green]✓[/] backup {newest.timestamp} complete and read back (inner tarballs included): "
                          f"{human_bytes(newest.size())} in {outcome.seconds:.0f} s; {names.symlink} points at it")
            write_manifest(runner, facts, newest, s.verdicts[newest.timestamp], console)
            code = 0 if dv_ready(options.ready_timeout, collect_again, console) else 1
        except (KeyboardInterrupt, Interrupted):
            code = 130
            if not stop_interrupted_job(runner, facts, job_name, collect_again, console):
                before = {}  # DV's job may still be tarring: the side deployments must not come back under it
        except ActionFailed as exc:
            console.print(f"[red]✗[/] {escape(str(exc))}")
            code = 1
        finally:
            restore_side_deployments(runner, facts, before, console)
        if code == 130 and before:
            see_dv_back(options, collect_again, console)
        return code


def still_writing(runner: Runner, job_name: str, console: Console) -> bool:
    """After a failed job's cleanup: is a pod of it still there (its stop timed out or failed)?

    Then the side deployments stay at 0, and the output says so and how to finish.
    """
    try:
        pods = [k8s.name(p) for p in runner.cluster.list("pods", label_selector=f"job-name={job_name}")]
    except DvdoctorError as exc:
        pods = [f"(unknown: {exc})"]
    if pods:
        console.print(f"[red]✗ pods of job {job_name} are still there ({', '.join(pods)}): the side deployments stay "
                      "at 0 so that nothing writes beside them; finish with: dvdoctor fix --all[/]", soft_wrap=True)
    return bool(pods)


#: How long an aborted backup waits to see DV's pods ready again before it says where they stand.
ABORT_READY_SECONDS = 60.0


def see_dv_back(options: FlowOptions, collect_again, console: Console) -> None:
    """After an abort: DV's pods start again once the marker is gone; say whether they are ready.

    Bounded (the user asked to stop), and another interrupt ends the wait at once: the state is
    then for `dvdoctor check` (dv-pods-not-ready) to tell.
    """
    try:
        if not dv_ready(min(options.ready_timeout, ABORT_READY_SECONDS), collect_again, console):
            console.print("  they start on their own now that the marker is gone (DV may take up to 30 minutes); "
                          "`dvdoctor check` says when they are ready", soft_wrap=True)
    except (KeyboardInterrupt, Interrupted, DvdoctorError):
        console.print("  DV's pods start on their own now that the marker is gone; `dvdoctor check` says when they are ready",
                      soft_wrap=True)


def stop_interrupted_job(runner: Runner, facts: Facts, job_name: str, collect_again, console: Console) -> bool:
    """Ctrl-C, SIGTERM or SIGHUP during a backup: abort it cleanly; True when no pod of DV's job can
    still write, so the side deployments may come back.

    The job is deleted with its pods and they are waited for; only then are its partial folder and
    the `.bar` marker removed (the restore point never moves) and the deployments scaled back, so
    no writer runs beside a tar and no backup taken with writers running becomes the restore point.
    A second interrupt stops the cleanup where it is and says what is left.
    """
    names = facts.names
    try:
        job = runner.cluster.get("jobs", job_name)
        if job is None or k8s.job_state(job) != "active":
            console.print("[yellow]interrupted: no backup job is running; putting DV's deployments back[/]")
            return True
        console.print(f"[yellow]interrupted: stopping DV's backup job {job_name}: it is deleted with its pods and "
                      f"they are waited for; then its partial folder and the {names.bar_marker} marker are removed, "
                      "the restore point stays where it was, and DV's deployments come back. Interrupt again to "
                      "stop this cleanup (`dvdoctor fix --all` finishes it).[/]", soft_wrap=True)
        stopped = BarJob.of(job)
        checkpoints.reached(checkpoints.STOPPING_JOB)
        execute(Plan("backup", [StopJob(job_name, f"delete job {job_name} with its pods and wait until they have ended")]),
                runner)
        after = collect_again()
        cleanup = Plan("backup")
        cleanup_after_stop(after, stopped, cleanup)
        execute(cleanup, runner.on(after))
        for note in cleanup.notes:
            console.print(f"  {escape(note)}", soft_wrap=True)
        return True
    except (KeyboardInterrupt, Interrupted):
        console.print("[red]interrupted again: the cleanup stops here.[/]")
    except DvdoctorError as exc:
        console.print(f"[red]✗ the cleanup could not finish: {escape(str(exc))}[/]", soft_wrap=True)
    say_what_is_left(runner, facts, job_name, console)
    return False


def say_what_is_left(runner: Runner, facts: Facts, job_name: str, console: Console) -> None:
    """After a cleanup cut short: what may still be there, and the one command that finishes it."""
    names = facts.names
    try:
        job = runner.cluster.get("jobs", job_name)
        pods = [k8s.name(p) for p in runner.cluster.list("pods", label_selector=f"job-name={job_name}")]
        state = (f"job {job_name} is still running" if job is not None and k8s.job_state(job) == "active" else
                 f"job {job_name} is deleted but its pods {', '.join(pods)} may still be ending" if pods else
                 f"job {job_name} is gone")
    except (DvdoctorError, KeyboardInterrupt, Interrupted):
        state = f"job {job_name} may still be running"
    console.print(f"  left: {state}; its partial backup folder and {names.marker_dir}/{names.bar_marker} may be there; "
                  f"{', '.join(names.side_deployments)} stay at 0 (their replicas are recorded) so that nothing "
                  "writes beside a running tar", soft_wrap=True)
    console.print("  finish with: dvdoctor fix --all", soft_wrap=True)


def scale_down_each(quiesce: Plan, runner: Runner, before: dict[str, int]) -> None:
    """The side deployments to 0, one at a time. When one is refused (Forbidden, Invalid: the server
    changed nothing), it and those after it still run as they did: they leave `before`, so the way back
    neither scales them nor says they were left down. Any other failure may have landed: it stays."""
    for i, action in enumerate(quiesce.actions):
        try:
            execute(Plan(quiesce.fix, [action]), runner)
        except ActionFailed as exc:
            untouched = quiesce.actions[i if isinstance(exc.__cause__, (Forbidden, Invalid)) else i + 1:]
            for rest in untouched:
                before.pop(rest.deployment, None)
            raise


def restore_side_deployments(runner: Runner, facts: Facts, before: dict[str, int], console: Console) -> None:
    """Scale the side deployments back to what they were; say exactly what is left if that fails."""
    plan = unquiesce_plan(facts, before)
    if not plan.actions:
        return
    try:
        execute(plan, runner)
        console.print(f"[green]✓[/] scaled {', '.join(before)} back up")
    except (ActionFailed, KeyboardInterrupt, Interrupted) as exc:
        console.print(f"[red]✗ could not scale DV's deployments back: {escape(str(exc))}[/]\n"
                      f"  finish with: dvdoctor fix --issue side-deployments-left-down --yes")
