"""What the backup and restore flows share: their options, signals turned into a clean stop, DV's
job watched to its end (progress in a terminal or a log, the job's log kept, a failure explained
and cleaned up as the runbook does), and the wait for DV's pods to be ready again.

flows/backup.py and flows/restore.py each drive one of DV's jobs with this toolkit; neither
imports the other.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from ..core import redact
from ..core.errors import Interrupted  # noqa: F401 - the flows say `common.Interrupted`, one class for all
from ..core.units import ISO_Z, human_bytes
from ..facts.model import Facts
from ..core.files import write_atomic
from ..verdicts.registry import Run, run_checks
from ..repair.plan import (
    ActionFailed,
    Create,
    Plan,
    Runner,
    StopJob,
    execute,
    remove_marker,
)
from . import jobs


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
    """--dry-run: every step, then every object a Create step would send, as YAML.

    A secret in DV's job template (an env value named like a password, a `--password` argument, a URL's
    user:password) is redacted as in every other output: the YAML applies as printed only where the
    template holds none. soft_wrap keeps long lines (the image) whole: wrapped at the terminal's width
    they are no longer YAML.
    """
    import yaml

    for action in actions:
        console.print(f"  would {escape(redact.text(action.describe()))}")
    console.print(f"  would {then}")
    console.print("[dim]objects it would create:[/]")
    bodies = [redact.data(a.body) for a in actions if isinstance(a, Create)]
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


def dv_ready(timeout: float, collect_again: Callable[..., Facts], console: Console, every: float = 60.0) -> bool:
    """Give DV's pods time to come back after a job stopped DV; say which are not ready when time is up.

    Each look collects with `pod=False`: `dv-pods-not-ready` judges DV's pods and workloads, and an
    inspection pod on the backup volume, which each look would otherwise start and wait for, adds nothing.

    Up to --ready-timeout (600 s) may pass here: a timestamped line at least every `every` seconds
    says what is still not ready, so a log shows the run is alive and what it waits for.
    """
    started = time.monotonic()
    deadline = started + timeout
    said_at = started
    while True:
        [result] = run_checks(collect_again(pod=False), Run(phase="restore"), only=["dv-pods-not-ready"])
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
            stamp = datetime.now(timezone.utc).strftime(ISO_Z)
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
        stamp = datetime.now(timezone.utc).strftime(ISO_Z)
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
