"""The one way a repair runs: plan, show, ask, apply, audit, verify; for `fix`, the gates' `--fix`
and the flows that repair on their way (a restore from a copy makes dv-bar-pvc again first).

A repair changes a namespace DV depends on, so every caller goes through the same steps in the
same order: the fixes' checks judge the facts once and hand each fix its problems; a fix whose
check passes is left alone; each plan is shown; nothing changes without consent; the namespace's
lock is held from the first change to the verification; every change is audited; and a fix is
"verified" only when its check passes on facts collected after it. What is said and how the
person is asked is the caller's (the CLI's `Screen`): this module decides, never prints.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from ..cluster.port import Cluster
from ..core.names import DAMAGED_ASIDE
from ..core.units import is_timestamp
from ..core.words import plural
from ..facts.model import Facts
from ..facts.partials import PREFIX as PARTIAL_PREFIX
from ..verdicts.registry import Problem, Result, Run, Suppression, run_checks
from .audit import AuditLog, Change
from .fixer import Fix, FixOptions, judged, load_all, manual_plan
from .owner import STOP_FIX, UNDER_BAR_JOB, BarJobActive, fix_waits_for, refuse_while_active, refuse_while_active_live
from .plan import ActionFailed, Delete, Plan, Runner, StopJob, execute

#: Repairs that remove or point at backups: they decide on backups read back in this run.
ON_BACKUPS = frozenset({"bar-low-space", "incomplete-backups", "broken-backup-symlink"})

#: How many more times `fix --all` looks again after its repairs, for what they uncovered.
MORE_ROUNDS = 2


class Screen(Protocol):
    """What a repair tells the person who runs it, and what it asks them: the CLI words and draws it."""

    def passing(self, fix_id: str, suppressed: bool = False) -> None:
        """The fix's check passes (`suppressed`: it finds only what the site suppressed): nothing to do."""

    def plan(self, plan: Plan, still_failing: bool) -> None:
        """A plan, before anything is applied; `still_failing`: its check fails, yet nothing is safe to change."""

    def nothing_automatic(self, manual: bool) -> None:
        """No plan changes anything (`manual`: some give steps to do by hand)."""

    def nothing_failing(self) -> None:
        """`fix --all` found no check failing or warning: nothing to repair."""

    def by_hand(self, ids: list[str], steps_shown: bool) -> None:
        """These still fail until a person repairs them (the steps were shown with the plans)."""

    def dry_run(self) -> None:
        """--dry-run: the plans were shown, nothing changed."""

    def ask(self, question: str) -> bool:
        """Consent to apply; False changes nothing."""

    def progress(self, step: str) -> None:
        """An action is about to be applied."""

    def failed(self, fix_id: str, why: str) -> None:
        """An action of this fix failed; its other actions were not applied."""

    def changed(self, change: Change) -> None:
        """One change made, as the audit log has it."""

    def verified(self, fix_id: str, ok: bool, seen: str) -> None:
        """Whether the fix's check passes again (or its own proof holds), and what was seen."""

    def logged(self, path: Path) -> None:
        """Where the changes were written down."""

    def now_failing(self, ids: list[str]) -> None:
        """`fix --all`: what fails now, uncovered by the repairs before."""

    def still_failing_after(self, rounds: int, ids: list[str]) -> None:
        """`fix --all`: what still fails after every round of repairs."""


def open_runner(cluster: Cluster, facts: Facts, audit_file: Path | None, progress: Callable[[str], None]) -> Runner:
    """The executor every change goes through: the port, the facts, the audit log (where it says
    which cluster), and what is said before each action."""
    return Runner(cluster, facts, AuditLog(audit_file, where=cluster.describe()), progress)


def verified(fx: Fix, after: Facts | None, options: FixOptions,
             suppressions: tuple[Suppression, ...] = ()) -> tuple[bool, str]:
    """Whether an applied fix did its work, and what was seen: its own proof when it has one (a local
    file read back), else its check passing on `after`, facts collected since it was applied."""
    if fx.verify is not None:
        return fx.verify(options)
    assert after is not None, "a fix verified by its check needs facts collected after it"
    result = run_checks(after, Run(phase=fx.verify_phase, command="fix", suppressions=suppressions), only=[fx.check])
    # what is left may be only what the site accepted (a suppression of one object): not the fix's to do
    said = {"pass": "passes", "suppressed": "passes but for what the site suppressed"}.get(
        result[0].status if result else "", "still fails")
    return said != "still fails", f"check {fx.check} {said}"


def to_repair(result: Result | None) -> list[Problem]:
    """The problems a fix is handed: its check's, less those the site accepted (a suppression names
    a finding the site keeps on purpose, such as a deployment it turned off: no repair undoes it)."""
    return [p for p in (result.problems if result else []) if not p.suppressed]


def flow_repair(runner: Runner, fix_id: str, facts: Facts, collect_again: Callable[[], Facts],
                options: FixOptions | None = None) -> tuple[list[Change], bool, str]:
    """A flow's own repair step (a restore's post-steps): the changes made, whether it is verified,
    and what was seen.

    The person consented to the flow and the flow holds the lock, so neither is asked again; the rest
    is as `fix`: the fix's check judges `facts` once and hands the fix its problems, the plan is
    applied through the flow's executor (audited), and it is verified only when its check passes on
    facts collected after it. An action that fails raises ActionFailed, as the flow's own steps do.
    Suppressions do not apply: these steps are the restore's own end (its marker removed, DV's
    deployments back), not a finding the site may keep.
    """
    fx = load_all()[fix_id]
    options = options or FixOptions()
    result = judged(fx, facts)
    plan = fx.plan(facts, result.problems if result else [], options)
    if plan.empty and (result is None or result.status == "pass"):
        return [], True, f"check {fx.check} passes"  # nothing to do, and nothing to collect again for
    changes = execute(plan, runner.on(facts))
    ok, seen = verified(fx, None if fx.verify is not None else collect_again(), options)
    return changes, ok, seen


def jobs_ended_by(plans: list[Plan]) -> frozenset[str]:
    """The jobs these plans stop or delete by a repair that may act on DV's job (UNDER_BAR_JOB): while
    only those run, the other fixes may act after them. A job another repair would delete (a retrying
    job bar-job-failed deletes) is no reason to act under it: that repair is refused as any other."""
    return frozenset(a.name for p in plans if p.fix in UNDER_BAR_JOB for a in p.actions
                     if isinstance(a, StopJob) or (isinstance(a, Delete) and a.kind == "jobs"))


@dataclass
class Repairs:
    """Everything a repair needs besides the facts and the fixes asked for; built once per command."""

    cluster: Cluster
    screen: Screen
    #: Facts again, quietly, after changes (True: every backup read back in this run).
    collect_again: Callable[[bool], Facts]
    #: Takes the namespace's lock for a command, allowing DV jobs the plans end: a context manager.
    lock: Callable[[str, frozenset[str]], AbstractContextManager]
    #: The findings the site accepted: a fix is never handed them (`to_repair`), so one whose check
    #: finds only those has nothing to do.
    suppressions: tuple[Suppression, ...] = ()
    audit_file: Path | None = None

    @property
    def run(self) -> Run:
        """How the fixes' checks are judged: now, for the `fix` command's rights."""
        return Run(command="fix", suppressions=self.suppressions)

    def repair(self, facts: Facts, ids: list[str], options: FixOptions, *, dry_run: bool = False,
               all_ids: bool = False) -> bool:
        """Plan, show, ask, apply, audit and verify the given fixes; True when all is done and verified.

        `all_ids`: the ids are what `fix --all` found failing, not named by the person. The lock is
        held from the first change to the verification (shared with a backup or restore whose gate
        runs the fixes).
        """
        fixes = load_all()
        results = {r.check.id: r for r in run_checks(facts, self.run)}
        seen: dict[str, Result | None] = {}

        def judged_by(fix_id: str) -> Result | None:
            """Its check's result, judged as its verification judges it (a pre-backup state as a gate)."""
            if fix_id not in seen:
                fx = fixes.get(fix_id)
                seen[fix_id] = (judged(fx, facts, self.suppressions) if fx is not None and fx.verify_phase != "now"
                                else results.get(fix_id))
            return seen[fix_id]

        def status(fix_id: str) -> str | None:
            result = judged_by(fix_id)
            return result.status if result else None

        # a refusal names the command as the person ran it; a dry run is refused as the run would be
        asked = ("dvdoctor fix --all" if all_ids else f"dvdoctor fix --issue {','.join(ids)}") \
            + (" --dry-run" if dry_run else "")
        under = set(ids) & set(UNDER_BAR_JOB)
        if not all_ids and (not under or (under == {STOP_FIX} and fix_waits_for(facts, STOP_FIX))):
            # asked by name while DV's job runs: its check may pass only because the job owns what it looks
            # at; and the stop asked by name under a restore, which it never stops, is refused as any other
            refuse_while_active(facts, asked)
        passing = [i for i in ids if status(i) in ("pass", "suppressed")]
        for i in passing:
            self.screen.passing(i, status(i) == "suppressed")
        # each fix is handed the problems its check found: it never runs the check again
        plans = [fixes[i].plan(facts, to_repair(judged_by(i)), options) if i in fixes
                 else manual_plan(facts, i) for i in ids if i not in passing]
        failing = {i for i, r in results.items() if r.status in ("fail", "warn")}
        stuck = [p for p in plans if p.empty and not p.manual and fixes[p.fix].check in failing]
        for p in plans:
            self.screen.plan(p, p in stuck)
        # a failure only a person can repair is a failure this run leaves: it makes the answer False
        by_hand = [p.fix for p in plans if p.manual and status(p.fix) in ("fail", "crash", "warn")
                   and (status(p.fix) != "warn" or (p.fix in ids and not all_ids))]
        todo = [p for p in plans if not p.empty]
        if not todo:
            if plans:
                self.screen.nothing_automatic(any(p.manual for p in plans))
            if by_hand:
                self.screen.by_hand(by_hand, steps_shown=False)
            return not by_hand and not stuck
        command = f"dvdoctor fix --issue {','.join(p.fix for p in todo)}"
        ending = jobs_ended_by(todo)
        if any(p.fix not in UNDER_BAR_JOB for p in todo):
            refuse_while_active(facts, asked, ending)
        if dry_run:
            self.screen.dry_run()
            return True
        todo.sort(key=lambda p: p.fix not in UNDER_BAR_JOB)  # what stops a job goes first; the rest acts after it
        if not self.screen.ask(f"Apply {plural(sum(len(p.actions) for p in todo), 'change')} in namespace {facts.namespace}?"):
            return False
        with self.lock(command, ending):
            if any(p.fix not in UNDER_BAR_JOB for p in todo):  # a job started while we asked
                refuse_while_active_live(self.cluster, facts.names, asked, ending)
            if {p.fix for p in todo} & ON_BACKUPS and self._volume_changed(facts):
                self.screen.failed(", ".join(p.fix for p in todo),
                                   "nothing was changed: a backup folder or the restore point changed since the plan "
                                   "was made (another run, or DV's own job, acted meanwhile); run the command again "
                                   "to see what it plans now")
                return False
            ok = self._apply(facts, fixes, todo, options, ending)
        if by_hand:
            self.screen.by_hand(by_hand, steps_shown=True)
        # a fix asked for that found nothing it could do leaves its check failing: not a success
        return ok and not by_hand and not stuck

    def _volume_changed(self, facts: Facts) -> bool:
        """Under the lock, before a plan that removes or points at backups: whether the backup volume
        is still as it was when the plan was made (every entry's name, type, size and mtime, and the
        restore point's link). The plan is as old as the consent, or as another run that held the lock
        meanwhile: a restore from a copy may have made a damaged folder good. Unchanged, the read-backs
        the plan rests on still hold, so the volume is listed again but nothing is read back."""
        def plans_judge(path: str) -> bool:
            """What the plans judge: backup folders and what they hold, the folders dvdoctor writes a
            copy back into or sets a damaged folder aside in, and the link; another file beside them
            (notes.txt) changes no plan."""
            return is_timestamp(path.split("/")[0]) or path.startswith((PARTIAL_PREFIX, DAMAGED_ASIDE))

        def seen(f: Facts) -> tuple:
            bar = f.bar or {}
            entries = sorted((e.get("path"), e.get("type"), e.get("size"), e.get("mtime"), e.get("target"))
                             for e in bar.get("entries", []) if plans_judge(str(e.get("path", ""))))
            return bar.get("exists"), tuple(entries), repr(bar.get("link"))

        return seen(self.collect_again(False)) != seen(facts)

    def _apply(self, facts: Facts, fixes: dict[str, Fix], todo: list[Plan], options: FixOptions,
               ending: frozenset[str] = frozenset()) -> bool:
        """Apply the plans (the caller holds the lock), then verify each by its check on fresh facts.

        The plans that end DV's jobs (`ending`) go first; the others were let through only because
        those jobs would end. So before the first of them the cluster is asked again, exempting
        nothing: a stop that failed or a pod that outlived it leaves the job running, and then no
        other plan is applied."""
        runner = open_runner(self.cluster, facts, self.audit_file, self.screen.progress)
        failed = False
        applied = []
        still: str | None = None
        looked = not ending
        for p in todo:
            if p.fix not in UNDER_BAR_JOB and not looked:
                looked = True
                rest = [q.fix for q in todo if q.fix not in UNDER_BAR_JOB]
                try:
                    refuse_while_active_live(self.cluster, facts.names, f"dvdoctor fix --issue {','.join(rest)}")
                except BarJobActive as exc:
                    still = str(exc)
            if still is not None and p.fix not in UNDER_BAR_JOB:
                self.screen.failed(p.fix, f"not applied, since DV's job did not end: {still}")
                failed = True
                continue
            try:
                changes = execute(p, runner)
            except ActionFailed as exc:
                self.screen.failed(p.fix, str(exc))
                failed = True
                continue
            applied.append(p.fix)
            for c in changes:
                self.screen.changed(c)
        on_cluster = [f for f in applied if fixes[f].verify is None]
        after = self.collect_again(False) if on_cluster else None
        for fix_id in applied:
            ok, seen = verified(fixes[fix_id], after, options, self.suppressions)
            failed |= not ok
            self.screen.verified(fix_id, ok, seen)
        self.screen.logged(runner.audit.path)
        return not failed

    def repair_all(self, facts: Facts, ids: list[str], options: FixOptions, *,
                   dry_run: bool = False) -> tuple[bool, list[Result]]:
        """`fix --all`: every failing or warning check, the fixable ones repaired and the others' manual
        steps shown; then, since a repair can uncover what its check could not judge before (DV's side
        deployments are not judged while a backup job runs; bar-job-unattended stops it), look again,
        a bounded number of times. Returns whether all is repaired, and the checks that could not run
        (what they would have found was not repaired)."""
        results = run_checks(facts, self.run)
        ids = ids + [i for i in _failing(results) if i not in ids]
        unknown = _unknown(results)
        if not ids:
            self.screen.nothing_failing()
            return True, unknown
        ok = self.repair(facts, ids, options, dry_run=dry_run, all_ids=True)
        if dry_run:
            return ok, unknown
        tried = set(ids)
        for _ in range(MORE_ROUNDS):
            facts = self.collect_again(False)
            results = run_checks(facts, self.run)
            new = [i for i in _failing(results) if i not in tried]
            if set(new) & ON_BACKUPS:  # a repair that removes or points at backups decides on proof read now
                facts = self.collect_again(True)
                results = run_checks(facts, self.run)
                new = [i for i in _failing(results) if i not in tried]
            unknown = _unknown(results)
            if not new:
                break
            self.screen.now_failing(new)
            tried |= set(new)
            ok = self.repair(facts, new, options, all_ids=True) and ok
        else:
            left = [r.check.id for r in run_checks(self.collect_again(False), self.run)
                    if r.status in ("fail", "crash") and r.check.id not in tried]
            if left:
                self.screen.still_failing_after(MORE_ROUNDS + 1, left)
                ok = False
        return ok, unknown


def _failing(results: list[Result]) -> list[str]:
    return [r.check.id for r in results if r.status in ("fail", "warn", "crash")]


def _unknown(results: list[Result]) -> list[Result]:
    return [r for r in results if r.status == "skip" and r.incomplete]
