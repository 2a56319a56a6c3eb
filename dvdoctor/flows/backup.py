"""`dvdoctor backup`: the runbook's backup, with the manual steps done and DV never left down silently.

Gate -> consent -> scale the side deployments to 0 (recording their counts) -> DV's backup job from
DV's template -> watch -> save its log -> postflight -> scale back, in every case, errors included.
Ctrl-C, SIGTERM or SIGHUP while DV's job runs abort the backup: the job is stopped and waited for,
its partial folder and marker removed, and only then do the deployments come back. Every change
goes through the plan executor, so it is audited and can be undone.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from ..cluster import k8s
from ..facts import origin, trust
from ..core import redact
from ..facts.backups import Backup, backups, link_timestamp
from ..core.units import human_bytes
from ..core.errors import DvdoctorError
from ..facts.probe import ReadBack
from ..facts.model import Facts
from ..core.files import write_atomic
from ..core.names import NEWEST_BEFORE_ANNOTATION
from ..facts.bar_jobs import BarJob
from ..repair.owner import cleanup_after_stop, refuse_while_active, refuse_while_active_live
from ..verdicts.registry import Run, run_checks
from ..repair.plan import (
    ActionFailed,
    BarScript,
    Create,
    Delete,
    Plan,
    Runner,
    StopJob,
    execute,
    recorded_replicas,
    remove_marker,
)
from . import jobs
from ..repair.quiesce import quiesce_plan, unquiesce_plan
from ..facts.dv_templates import pvc_from_template


@dataclass(frozen=True)
class FlowOptions:
    dry_run: bool = False
    timeout: float = 3600
    log_dir: Path = Path(".")
    storage_class: str | None = None
    bar_size: str | None = None
    poll_seconds: float = 2.0
    #: How long to wait for DV's pods to be ready again after the job.
    ready_timeout: float = 600
    #: Without a terminal (a CronJob's log), a timestamped progress line at least this often.
    heartbeat_seconds: float = 60


class Interrupted(Exception):
    """SIGTERM or SIGHUP turned into an exception, so cleanup runs as it does for Ctrl-C."""


def _detach_from_terminal(fds: list[int]) -> None:
    """Point these descriptors (the terminal's) at /dev/null.

    After a hangup every write to the terminal fails (EIO); the first progress line of the cleanup
    would then stop it before DV's deployments are put back. The audit log still records each change.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in fds:
            os.dup2(devnull, fd)
    finally:
        os.close(devnull)


@contextmanager
def interrupted_by_signals() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP (the terminal closed) raise Interrupted, like Ctrl-C.

    Which descriptors are a terminal is read now: after the hangup, isatty() fails on them too.
    """
    ttys = [fd for fd in (1, 2) if os.isatty(fd)]

    def on_signal(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
        if signum == signal.SIGHUP:
            _detach_from_terminal(ttys)
        raise Interrupted(f"signal {signum}")

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def original_replicas(dep: dict, facts: Facts | None = None) -> int:
    """The count to scale back to after the backup: what runs now, else what was recorded, else 1.

    A deployment found at 0 with no backup running was left down: by an earlier run (dvdoctor
    recorded its count: that count) or by a person following the runbook (1, the runbook's value),
    unless the site accepted it at 0 with a suppression of side-deployments-left-down. So a backup
    never ends with DV's API or console down, whoever left them so.
    """
    replicas = k8s.spec_replicas(dep)
    if replicas > 0:
        return replicas
    recorded = recorded_replicas(dep)
    if recorded:  # a recorded 0 is no count to go back to (the fixes scale it to 1 too)
        return recorded
    return 0 if facts is not None and _accepted_at_zero(facts, k8s.name(dep)) else 1


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
        items = backups(facts.bar, names)
        job["metadata"].setdefault("annotations", {})[NEWEST_BEFORE_ANNOTATION] = items[-1].timestamp if items else ""
    plan.actions.append(Create("jobs", job, f"create job {job['metadata']['name']} from DV's template "
                                            f"(image {k8s.pod_image(k8s.job_pod_spec(job))})"))
    return plan


def save_log(opts: FlowOptions, job: str, pod: str | None, log: str) -> Path | None:
    """Keep DV's job log in --log-dir, redacted like every output (DV's jobs may echo a connection string)."""
    if not log:
        return None
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    path = opts.log_dir / f"{pod or job}-{stamp}.log"
    write_atomic(path, redact.text(log), 0o600, what="--log-dir")
    return path


def after_failure_plan(facts: Facts, job: str) -> Plan:
    """The runbook's workaround after a failed job: delete it, and remove the marker it left.

    Its pods are waited for: a job given up on (timeout, stuck) may still have one writing, and
    the side deployments come back only after this plan.
    """
    return Plan("backup", [
        StopJob(job, f"delete the failed job {job} with its pods and wait until they have ended"),
        remove_marker(facts, facts.names.bar_marker, "so DV can start again"),
    ])


def show_dry_run(console: Console, actions: list, then: str) -> None:
    """--dry-run: every step, then every object a Create step would send, as YAML that applies as printed.

    soft_wrap keeps long lines (the image) whole: wrapped at the terminal's width they are no longer YAML.
    """
    import yaml

    for action in actions:
        console.print(f"  would {escape(action.describe())}")
    console.print(f"  would {then}")
    console.print("[dim]objects it would create:[/]")
    bodies = [a.body for a in actions if isinstance(a, Create)]
    console.print(escape(yaml.safe_dump_all(bodies, sort_keys=False, explicit_start=True)), highlight=False,
                  soft_wrap=True)
    console.print("[dim]--dry-run: nothing was changed.[/]")


def explain_failure(console: Console, outcome: jobs.JobOutcome) -> None:
    console.print(f"[red]✗ {outcome.outcome}[/]: {escape(outcome.reason)}")
    for m in outcome.matches:
        console.print(f"  log: [dim]{escape(redact.text(m.line))}[/]", soft_wrap=True)  # whole, to search for
        console.print(f"  cause: {escape(m.cause)}; check: dvdoctor check --only {m.check}"
                      + (f"; fix: dvdoctor fix --issue {m.fix}" if m.fix else ""))
    if not outcome.matches and outcome.log:
        for line in outcome.log.strip().splitlines()[-5:]:
            console.print(f"  log: [dim]{escape(redact.text(line))}[/]", soft_wrap=True)


def report_partial(console: Console, after: Facts, started: datetime) -> None:
    """After a failed job: what the partial backup holds on the volume, and that the restore point did not move.

    A backup that ran out of space leaves its folder behind; the space it took is what the next
    backup lacks, so it is said here, with the repair that removes it.
    """
    names = after.names
    if after.bar is None:
        console.print(f"  the backup volume could not be inspected: {escape(after.skipped('bar_volume') or '')}")
        return
    partial = [b for b in backups(after.bar, names) if b.time >= started.replace(microsecond=0)]
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


def postflight(facts: Facts, started: datetime) -> list[str]:
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
    new = [b for b in s.backups if b.time >= started.replace(microsecond=0)]
    if not new:
        problems.append("no new backup folder on the volume")
    elif (verdict := s.verdicts[new[-1].timestamp]).state != trust.GOOD or not verdict.fresh:
        problems.append(f"backup {new[-1].timestamp} is {verdict.state}: {verdict.why}")
    elif s.link_ts != new[-1].timestamp:
        problems.append(f"{names.symlink} does not point at the new backup {new[-1].timestamp}")
    if facts.marker(names.bar_marker):
        problems.append(f"{names.marker_dir}/{names.bar_marker} is still there")
    return problems


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
    refuse_while_active_live(runner.cluster, names, "dvdoctor backup")  # a job started since the gate looked
    with interrupted_by_signals():
        code = 1
        try:
            execute(quiesce, runner)
            execute(start, runner)
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
                report_partial(console, collect_again(), started)
                return 1
            after = collect_again(NEW_BACKUP_READ_BACK)
            problems = postflight(after, started)
            if problems:
                for p in problems:
                    console.print(f"[red]✗[/] postflight: {escape(p)}")
                return 1
            s = trust.survey(after)
            newest = s.backups[-1]
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


def run_dv_job(runner: Runner, facts: Facts, job_name: str, options: FlowOptions, console: Console,
               on_failure: Callable[[jobs.JobOutcome], None] | None = None) -> jobs.JobOutcome:
    """Watch DV's job to its end and save its log; after a failure, explain it, let `on_failure`
    record what it left (before anything is cleaned up, so the record survives a failed cleanup),
    and clean up as the runbook's workaround does (delete the job, remove the marker it left)."""
    outcome = watch(runner, job_name, options, console)
    path = save_log(options, job_name, outcome.pod, outcome.log)
    if path:
        console.print(f"job log saved to {path}")
    if not outcome.ok:
        explain_failure(console, outcome)
        if on_failure is not None:
            on_failure(outcome)
        try:
            execute(after_failure_plan(facts, job_name), runner)
        except ActionFailed as exc:
            console.print(f"[yellow]cleanup after the failure: {escape(str(exc))}[/]")
    return outcome


def dv_ready(timeout: float, collect_again, console: Console, every: float = 60.0) -> bool:
    """Give DV's pods time to come back after a job stopped DV; say which are not ready when time is up.

    Up to --ready-timeout (600 s) may pass here: a timestamped line at least every `every` seconds
    says what is still not ready, so a log shows the run is alive and what it waits for.
    """
    started = time.monotonic()
    deadline = started + timeout
    said_at = started
    while True:
        [result] = run_checks(collect_again(), Run(phase="restore"), only=["dv-pods-not-ready"])
        if result.status == "pass":
            console.print("[green]✓[/] DV's pods are ready")
            return True
        now = time.monotonic()
        if now >= deadline:
            console.print(f"[yellow]! DV's pods are not all ready after {timeout:.0f} s:[/]")
            for p in result.problems:
                console.print(f"  {escape(p.message)}")
            return False
        if now - said_at >= every:
            said_at = now
            elapsed = int(now - started)
            waiting = "; ".join(p.message for p in result.problems) or result.reason or "not ready yet"
            stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            console.print(f"{stamp} waiting for DV's pods to be ready, {elapsed // 60:02d}:{elapsed % 60:02d} elapsed "
                          f"(up to {timeout:.0f} s): {waiting}", markup=False, highlight=False, soft_wrap=True)
        time.sleep(max(0.0, min(5.0, every, deadline - time.monotonic())))


def watch(runner: Runner, job_name: str, options: FlowOptions, console: Console) -> jobs.JobOutcome:
    """Watch a job: a live line in a terminal; without one, a timestamped line at least every
    heartbeat_seconds (and at each change of phase), so an hour-long backup is visibly alive in a log."""
    if not console.is_terminal:
        return jobs.watch_job(runner.cluster, job_name, options.timeout,
                              Heartbeat(runner, job_name, options.heartbeat_seconds, console),
                              options.poll_seconds)
    from rich.live import Live
    from rich.text import Text

    with Live(Text(f"{job_name}: starting"), console=console, transient=True, refresh_per_second=4) as live:
        said: set[str] = set()

        def show(phase: str, pod: str, elapsed: float, last: str) -> None:
            if ": " in phase and phase not in said:  # why the pod is not running yet: kept on screen, once
                said.add(phase)
                live.console.print(f"[yellow]![/] {escape(job_name)}: pod {escape(pod or '(none yet)')} {escape(phase)}")
            live.update(Text(f"{job_name} [{phase}] {int(elapsed) // 60:02d}:{int(elapsed) % 60:02d} {pod}: {last[-100:]}"))

        return jobs.watch_job(runner.cluster, job_name, options.timeout, show, options.poll_seconds)


#: Prints the newest backup folder under the BAR volume and its size in KiB; the mount comes as $1.
#: "$1/": find follows a mount that is a symlink (the lab's pods); ${DV_ROOT:-} is empty in a real pod
#: and the pod's root folder in the lab, as in every in-pod script.
_FOLDER_SIZE = (
    'd=$(find "${DV_ROOT:-}$1/" -mindepth 1 -maxdepth 2 -type d -name "[0-9][0-9][0-9][0-9]-[0-9][0-9]-*" 2>/dev/null | sort | tail -n 1); '
    '[ -n "$d" ] && printf "%s\\t%s\\n" "${d##*/}" "$(du -sk "$d" 2>/dev/null | cut -f1)"'
)


class Heartbeat:
    """The progress line for logs: UTC time, elapsed, the job's phase, the backup folder's size when known.

    The size is read from inside the job's own pod (which mounts the backup volume), at most once
    per line; when that cannot be done (no du, no exec right, the pod gone) the line says less,
    and the watch goes on: a progress line never stops a backup.
    """

    def __init__(self, runner: Runner, job_name: str, every: float, console: Console) -> None:
        self.runner, self.job_name, self.every, self.console = runner, job_name, every, console
        self.said_at: float | None = None
        self.phase = ""

    def __call__(self, phase: str, pod: str, elapsed: float, last: str) -> None:
        if self.said_at is not None and phase == self.phase and elapsed - self.said_at < self.every:
            return
        self.said_at, self.phase = elapsed, phase
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        line = f"{stamp} {self.job_name}: {phase}, {int(elapsed) // 60:02d}:{int(elapsed) % 60:02d} elapsed"
        # the size from the second line on: a job's first seconds are left to the job alone
        backing_up = self.job_name == self.runner.facts.names.backup_job and elapsed >= self.every
        size = self.folder_size(pod) if backing_up and pod and phase == "Running" else None
        if size:
            line += f", backup folder {size}"
        if last:
            line += f"; log: {last[-200:]}"
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def folder_size(self, pod: str) -> str | None:
        mount = self.runner.facts.names.bar_mount
        try:
            result = self.runner.cluster.exec(pod, ["sh", "-c", _FOLDER_SIZE, "dvdoctor-size", mount])
        except Exception:  # noqa: BLE001 - any failure only means the size is not known now
            return None
        name, _, kib = result.stdout.strip().partition("\t")
        return f"{name} {human_bytes(int(kib) * 1024)}" if kib.isdigit() else None


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
