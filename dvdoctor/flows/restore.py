"""`dvdoctor restore`: DV's restore job on a backup proven complete, then the runbook's manual post-steps.

The job is pointed at the chosen backup explicitly (TIMESTAMP/dv_backup.tar.gz), so it restores
exactly what was checked even if the symlink moves meanwhile. Afterwards `dv-caching-bar.sh false`
runs when DV caching is enabled and `.bar_restored.txt` is removed, as the runbook asks by hand.
A restore job that fails after it began has replaced part of DV's data: that is recorded on the
dv-engine StatefulSet (see restore_record.py), said in plain words with the command that recovers,
and cleared by the next restore that succeeds.
"""

from __future__ import annotations

from datetime import datetime, timezone

from rich.console import Console
from rich.markup import escape

from ..cluster import k8s
from ..facts import origin, trust
from ..repair.owner import refuse_while_active, refuse_while_active_live
from ..facts.backups import Backup
from ..core.units import human_bytes
from ..core.errors import UsageError
from ..facts.model import SECTION_BAR, Facts
from ..core.names import RESTORE_INCOMPLETE_ANNOTATION
from ..facts.origin import engine_statefulset
from ..repair.plan import ActionFailed, Create, Delete, Plan, Runner, execute
from ..facts.restore_record import Incomplete, previous_good, stamp
from ..repair.restore_record import clear_action, record_action
from ..repair.runner import flow_repair
from . import checkpoints, jobs
from ..core.signals import interrupted_by_signals
from .common import FlowOptions, Interrupted, dv_ready, run_dv_job, show_dry_run


#: The runbook's post-restore steps are this repair's (`dv-caching-bar.sh false`, the marker removed).
POST_STEPS = "restore-marker-left"


def choose(facts: Facts, timestamp: str | None) -> Backup:
    """The backup to restore: --from TIMESTAMP, else the one the symlink marks; it must be good.

    Good by the one rule (dvdoctor/facts/trust.py): the restore's inspection reads the chosen backup back,
    its combined tarball and the component tarballs inside it, before DV is touched. A cut inner
    tarball would otherwise empty DV's volumes and fail in the untar, leaving DV half-restored.
    """
    names = facts.names
    facts.require(SECTION_BAR)
    s = trust.survey(facts)
    wanted = timestamp or s.link_ts
    if wanted is None:
        raise UsageError(f"{names.symlink} marks no backup; name one with --from (see `dvdoctor list`)")
    chosen = s.get(wanted)
    if chosen is None:
        odd = next((o for o in s.odd if o.name == wanted), None)
        raise UsageError(f"no backup {wanted} on {names.bar_pvc}" + (f" ({odd.why})" if odd else "")
                         + f"; backups: {', '.join(b.timestamp for b in s.backups) or 'none'}")
    verdict = s.verdicts[wanted]
    if verdict.state != trust.GOOD:
        raise UsageError(f"backup {wanted} cannot be restored: it is {verdict.state}: {verdict.why}; nothing was "
                         "changed. Choose a good one with --from (see `dvdoctor list`)")
    return chosen


def judge_origin(facts: Facts, chosen: Backup, *, yes: bool, accept_other: bool, accept_unverified: bool) -> str:
    """Refuse a backup another DV instance took, and one of unverified origin under --yes alone.

    DV 1.5.0's backup and restore is same-instance only, so restoring another instance's backup is
    refused unless --accept-other-instance. A backup without a readable manifest (dvcli.sh's, or one
    older than dvdoctor) may well be this instance's: it is asked about, and --yes alone, with
    nobody to ask, does not count as an answer. Returns what the question must add (may be empty).
    """
    live = origin.live_identity(facts)
    found = origin.origin(chosen, live)
    if found.kind == origin.OTHER_INSTANCE and found.recorded is not None and live is not None:
        taken = f"backup {chosen.timestamp} was taken by another DV instance ({found.recorded.describe()})"
        if not accept_other:
            raise UsageError(f"{taken}, not this one ({live.describe()}); DV 1.5.0 restores only onto the instance "
                             "that took the backup, so nothing was changed. Rerun with --accept-other-instance "
                             "to restore it anyway")
        return f"Its origin: {taken} (accepted with --accept-other-instance)."
    if found.kind == origin.UNKNOWN:
        if yes and not accept_unverified:
            raise UsageError(f"backup {chosen.timestamp}'s origin is unverified: {found.why}; with --yes nobody "
                             "can confirm it is this DV instance's, so nothing was changed. Rerun with "
                             "--accept-unverified-origin to restore it anyway")
        return f"Its origin is unverified: {found.why}."
    return ""


def describe(facts: Facts, chosen: Backup) -> str:
    age_h = (facts.now - chosen.time).total_seconds() / 3600
    return f"backup {chosen.timestamp} ({age_h:.1f} h old, {human_bytes(chosen.combined_size(facts.names))})"


def start_plan(facts: Facts, job: dict) -> Plan:
    plan = Plan("restore")
    name = job["metadata"]["name"]
    old = facts.get("jobs", name)
    if old is not None:
        if k8s.job_state(old) == "active":  # never deleted as "finished": it is DV's job at work
            refuse_while_active(facts, "dvdoctor restore")
        plan.actions.append(Delete("jobs", name, f"delete the finished job {name} and its pods"))
    plan.actions.append(Create("jobs", job, f"create job {name} from DV's template"))
    return plan


def record_failure(runner: Runner, facts: Facts, chosen: Backup, job_name: str, outcome: jobs.JobOutcome,
                   console: Console) -> bool | None:
    """Record on the dv-engine StatefulSet that the restore failed part-way; True when recorded,
    False when the record could not be written, None when DV's data was never touched (its pod
    never ran: an image that cannot be pulled, a pod no node takes)."""
    if outcome.outcome == "Stuck" and not outcome.log.strip():
        console.print(f"  DV's data was not touched: the pod of job {job_name} never ran")
        return None
    why = outcome.reason or outcome.outcome
    if outcome.matches:
        why += f" ({outcome.matches[0].line.strip()[:200]})"
    elif outcome.log.strip():
        why += f" (last log line: {outcome.log.strip().splitlines()[-1].strip()[:200]})"
    record = Incomplete(stamp(datetime.now(timezone.utc)), chosen.timestamp, why, job_name)
    try:
        execute(Plan("restore", [record_action(facts, record)]), runner)
        return True
    except ActionFailed as exc:
        console.print(f"[red]✗ could not record the failed restore in the cluster: {escape(str(exc))}[/]", soft_wrap=True)
        return False


def say_partly_replaced(console: Console, facts: Facts, chosen: Backup, job_name: str, outcome: jobs.JobOutcome,
                        recorded: bool) -> None:
    """In plain words: what a restore that failed part-way left, and the one command that recovers."""
    sts = engine_statefulset(facts)
    console.print(f"[red]✗ DV's data was partly replaced:[/] job {job_name} failed after it had begun replacing "
                  f"DV's data with backup {chosen.timestamp}. DV now holds neither its data from before nor that "
                  "backup's; do not use it until a restore succeeds.", soft_wrap=True)
    if recorded:
        console.print(f"  recorded on statefulset/{sts} (annotation {RESTORE_INCOMPLETE_ANNOTATION}); `dvdoctor check` "
                      "reports restore-incomplete until a restore succeeds", soft_wrap=True)
    cause = next((m for m in outcome.matches if m.fix), None)
    if cause is not None:
        console.print(f"  first repair the cause: dvdoctor fix --issue {cause.fix}", soft_wrap=True)
    console.print(f"  recover with: dvdoctor restore --from {chosen.timestamp}", soft_wrap=True)
    previous = previous_good(trust.survey(facts), chosen.timestamp) if facts.bar else None
    if previous is not None:
        console.print(f"  (if it fails the same way again, restore the previous good backup: "
                      f"dvdoctor restore --from {previous.timestamp})", soft_wrap=True)


def run_restore(facts: Facts, chosen: Backup, options: FlowOptions, console: Console, runner: Runner,
                collect_again) -> int:
    names = facts.names
    job = jobs.job_from_template(facts, "dv-restore-job.yaml", "dvdoctor restore")
    jobs.select_backup(job, chosen.timestamp, names.symlink, names.combined_tarball)
    plan = start_plan(facts, job)
    if options.dry_run:
        show_dry_run(console, plan.actions, "watch the job, run the post-restore steps (dv-caching-bar.sh false if "
                     f"caching is on, remove {names.restore_marker}) and wait for DV's pods")
        return 0
    job_name = job["metadata"]["name"]
    refuse_while_active_live(runner.cluster, names, "dvdoctor restore")  # a job started since the gate looked
    with interrupted_by_signals():
        try:
            execute(plan, runner)
            checkpoints.reached("job-created")
            console.print(f"DV is offline: job {job_name} is restoring {chosen.timestamp}")
            recorded: list[bool] = []
            outcome = run_dv_job(runner, facts, job_name, options, console,
                                 lambda failed: recorded.append(record_failure(runner, facts, chosen, job_name, failed,
                                                                               console)))
            if not outcome.ok:
                if recorded and recorded[0] is not None:
                    say_partly_replaced(console, facts, chosen, job_name, outcome, recorded[0])
                return 1
            after = collect_again()
            clear = clear_action(after)
            if clear is not None:  # DV's data is whole again: the record of an earlier failed restore goes
                execute(Plan("restore", [clear]), runner.on(after))
            console.print("post-restore steps (the runbook's manual ones):")
            _, post_ok, seen = flow_repair(runner, POST_STEPS, after, collect_again)
            console.print(f"{POST_STEPS}: {'[green]✓ verified[/]' if post_ok else '[red]✗ not verified[/]'}: "
                          f"{escape(seen)}")
            console.print(f"[green]✓[/] restored {chosen.timestamp} in {outcome.seconds:.0f} s")
            checkpoints.reached("postflight")
            return 0 if dv_ready(options.ready_timeout, collect_again, console) and post_ok else 1
        except (KeyboardInterrupt, Interrupted):
            console.print(f"[yellow]interrupted: DV's restore job {job_name}, if it runs, is left to finish (stopped "
                          "half-way it would leave DV's data half-replaced); until it ends every dvdoctor change "
                          "refuses, and `dvdoctor check` says when it has ended and what is left[/]", soft_wrap=True)
            return 130
        except ActionFailed as exc:
            console.print(f"[red]✗[/] {escape(str(exc))}")
            return 1
