"""The check registry and the runner: one place that knows every check.

A check is tiny, as in kubeadm's preflight: an id, a title, a severity, and a function from facts
to problems. Its module docstring is its runbook text (symptom, cause, repair), which `explain`,
the docs and the report all read from here. A check that raises is reported as crashed; the
others still run.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from ..core.errors import UsageError
from ..core.plugins import import_all
from ..facts.model import Facts

ERROR = "error"
WARNING = "warning"
#: When a check applies: always, or only as a gate before a backup or a restore.
ALWAYS, BACKUP, RESTORE = "always", "backup", "restore"
#: A check only `dvdoctor check` runs: no gate waits for it (a missing copy never stops a backup).
NOW = "now"
PHASES = ("now", BACKUP, RESTORE)


class Skip(Exception):
    """Raised by a check that cannot tell from these facts (e.g. a kind it reads could not be listed).

    The runner reports it as status "skip" with this reason: neither a pass nor a problem. It
    leaves the verdict incomplete (exit 3): what the check would have said is unknown.
    """

    incomplete = True


class NotApplicable(Skip):
    """Raised by a check whose question does not arise now (DV is down on purpose while a BAR job runs).

    Reported as skipped, but the verdict stays complete: nothing is unknown.
    """

    incomplete = False


@dataclass(frozen=True)
class Problem:
    """One thing wrong, with the lines, numbers and names that prove it."""

    message: str
    evidence: tuple[str, ...] = ()
    object: str | None = None
    #: The reason a configured suppression gave; a suppressed problem shows but never fails a run.
    suppressed: str | None = None
    #: A finding of a warning check that is an error where it is found (it stops the backup or
    #: restore at hand): it makes the result fail, not warn.
    blocks: bool = False
    #: What the check established, as the values its fix acts on (a deployment's name, a lease's
    #: holder), so the fix is handed them rather than deriving them again from the facts. Never
    #: reported: the message and evidence say the same in words.
    data: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict:
        return {"message": self.message, "evidence": list(self.evidence), "object": self.object,
                "suppressed": self.suppressed}


@dataclass(frozen=True)
class Note:
    """A line a check adds to its result without finding a problem (the rights other commands would
    need): shown as the result's reason, it never changes the verdict."""

    text: str


@dataclass(frozen=True)
class Suppression:
    """A finding a site has accepted (from dvdoctor.yaml): a check id, optionally one "kind/name"."""

    check: str
    reason: str
    object: str | None = None

    def matches(self, check_id: str, problem: Problem) -> bool:
        return check_id == self.check and (self.object is None or self.object == problem.object)


@dataclass(frozen=True)
class Run:
    """What one run of the checks is for, handed to `run_checks` and read by the report and formats.

    The same facts are judged in several runs (`fix` judges them now and as a gate; a gate runs
    again after its repairs), so what a run is for travels with the run, never on the facts.
    """

    #: What the checks judge for: "now", or the gate before a "backup" or a "restore".
    phase: str = "now"
    #: The dvdoctor command they run for (check, fix, backup, restore, list): the rights
    #: `dvdoctor-permissions` requires are that command's. By default a gate's phase names it.
    command: str = ""
    #: The findings the site accepted (dvdoctor.yaml); a suppressed problem shows but never fails.
    suppressions: tuple[Suppression, ...] = ()

    def __post_init__(self) -> None:
        if not self.command:
            object.__setattr__(self, "command", self.phase if self.phase in (BACKUP, RESTORE) else "check")


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    severity: str
    applies: frozenset[str]
    run: Callable[[Facts], Iterable[Problem]]
    fix: str | None = None
    #: In-pod fact sections the check reads; when one was skipped, so is the check.
    needs: frozenset[str] = frozenset()
    tags: tuple[str, ...] = ()
    doc: str = ""
    #: The check judges differently by run (a gate's phase, the command's rights): `run` takes the
    #: Run as its second argument. Most checks judge the facts alone and take only them.
    takes_run: bool = False

    def judge(self, facts: Facts, run: Run) -> Iterable[Problem]:
        return self.run(facts, run) if self.takes_run else self.run(facts)

    @property
    def fix_command(self) -> str | None:
        return f"dvdoctor fix --issue {self.fix}" if self.fix else None

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity,
            "applies": sorted(self.applies),
            "fix": self.fix,
            "needs": sorted(self.needs),
            "tags": list(self.tags),
            "doc": self.doc,
        }


REGISTRY: dict[str, Check] = {}


def check(
    title: str,
    *,
    severity: str = ERROR,
    applies: Iterable[str] = (ALWAYS,),
    needs: Iterable[str] = (),
    tags: Iterable[str] = (),
) -> Callable[[Callable[[Facts], Iterable[Problem]]], Callable[[Facts], Iterable[Problem]]]:
    """Register a check function; its module's docstring becomes its runbook text.

    The module's name is the check's id (checks/stale_bar_marker.py is `stale-bar-marker`), and a
    fixes/ module of the same name is its repair: an id is never typed, so it cannot be mistyped.
    """

    def register(fn: Callable[[Facts], Iterable[Problem]]) -> Callable[[Facts], Iterable[Problem]]:
        id = module_id(fn.__module__)
        if id in REGISTRY:
            raise RuntimeError(f"check id {id} registered twice")
        module = importlib.import_module(fn.__module__)
        REGISTRY[id] = Check(
            id=id,
            title=title,
            severity=severity,
            applies=frozenset(applies),
            run=fn,
            fix=id if has_fix_module(id) else None,
            needs=frozenset(needs),
            tags=tuple(tags),
            doc=(module.__doc__ or "").strip(),
            takes_run=len(inspect.signature(fn).parameters) > 1,
        )
        return fn

    return register


def module_id(module: str) -> str:
    """The id a check or fix module stands for: its name, with dashes (`dvdoctor.checks.stale_bar_marker`
    is `stale-bar-marker`). One rule for both, so a check and its repair pair by file name."""
    return module.rsplit(".", 1)[-1].replace("_", "-")


def has_fix_module(check_id: str) -> bool:
    """Whether fixes/ holds a module named after this check, found by its file: the fixes themselves
    (a layer above the checks) are never imported for it, so `dvdoctor checks` stays light."""
    spec = importlib.util.find_spec("dvdoctor.fixes")
    folders = spec.submodule_search_locations if spec is not None else None
    return any((Path(folder) / f"{check_id.replace('-', '_')}.py").is_file() for folder in folders or ())


def load_all() -> dict[str, Check]:
    """Import every module of dvdoctor.checks once, so each registers its check."""
    from .. import checks as package  # type: ignore[attr-defined]

    import_all(package)
    return dict(sorted(REGISTRY.items()))


def resolve_ids(ids: Iterable[str], what: str) -> list[str]:
    """Validate check ids given by a user; an unknown id is an error, never ignored, and so is a value
    that names none (`--only ''`, `','`): taken as nothing it would run every check, or repair none."""
    known = load_all()
    out = []
    for raw in ids:
        parts = [p.strip() for p in str(raw).split(",") if p.strip()]
        if not parts:
            raise UsageError(no_id_given(what, raw))
        for part in parts:
            if part not in known:
                raise UsageError(f"{what}: unknown check id {part!r}; known ids: {', '.join(known)}")
            out.append(part)
    return out


def no_id_given(what: str, raw: object) -> str:
    """The one line for an option value that holds no id at all."""
    return f"{what} {str(raw)!r} names no check id: give one or more ids, comma-separated (see `dvdoctor checks`)"


@dataclass
class Result:
    check: Check
    #: pass | fail | warn | skip | crash | suppressed (every problem found is suppressed)
    status: str
    problems: list[Problem] = field(default_factory=list)
    reason: str | None = None
    #: Downgraded from fail to warn by --ignore-check.
    ignored: bool = False
    seconds: float = 0.0
    #: A skip that leaves the verdict incomplete (the check could not run), as opposed to one the
    #: user chose (--no-pod) or one whose question does not arise (NotApplicable).
    incomplete: bool = False

    def to_dict(self) -> dict:
        return {
            "id": self.check.id,
            "title": self.check.title,
            "severity": self.check.severity,
            "status": self.status,
            "ignored": self.ignored,
            "reason": self.reason,
            "incomplete": self.incomplete,
            "problems": [p.to_dict() for p in self.problems],
            "fix": self.check.fix_command,
        }


def applies_in(chk: Check, phase: str) -> bool:
    """`now` runs every check (phase checks judge the present); a gate runs its own and the always ones."""
    return phase == "now" or ALWAYS in chk.applies or phase in chk.applies


def run_checks(
    facts: Facts,
    run: Run = Run(),
    *,
    only: Iterable[str] = (),
    skip: Iterable[str] = (),
    ignore: Iterable[str] = (),
) -> list[Result]:
    """Run the checks that apply in `run`'s phase; `run` also carries the site's suppressions, which
    the caller reads from its settings: the facts are only looked at, never written to."""
    checks = load_all()
    phase = run.phase
    only_ids = set(resolve_ids(only, "--only"))
    skip_ids = set(resolve_ids(skip, "--skip"))
    ignore_ids = set(resolve_ids(ignore, "--ignore-check"))
    results: list[Result] = []
    for chk in checks.values():
        if (only_ids and chk.id not in only_ids) or chk.id in skip_ids or not applies_in(chk, phase):
            continue
        missing = [s for s in sorted(chk.needs) if facts.section(s) is None]
        if missing:
            why = "; ".join(f"{s}: {facts.skipped(s) or 'not collected'}" for s in missing)
            # unknown only when every missing section is: one left out or not there to look at (copies
            # not configured) skips the check whatever the others would have held
            results.append(Result(chk, "skip", reason=why, incomplete=all(facts.unknown(s) for s in missing)))
            continue
        started = time.perf_counter()
        try:
            found = list(chk.judge(facts, run))
        except Skip as exc:
            results.append(Result(chk, "skip", reason=str(exc), seconds=time.perf_counter() - started,
                                  incomplete=exc.incomplete))
            continue
        except Exception as exc:  # a crashing check is reported, never counted as passed
            results.append(Result(chk, "crash", reason=f"{type(exc).__name__}: {exc}",
                                  seconds=time.perf_counter() - started))
            continue
        notes = [f.text for f in found if isinstance(f, Note)]
        problems = [_suppress(chk.id, p, run.suppressions) for p in found if not isinstance(p, Note)]
        if not problems:
            status = "pass"
        elif all(p.suppressed for p in problems):
            status = "suppressed"
        elif chk.severity == WARNING and not any(p.blocks and not p.suppressed for p in problems):
            status = "warn"
        else:
            status = "fail"
        ignored = status == "fail" and chk.id in ignore_ids
        results.append(Result(chk, "warn" if ignored else status, problems, reason="; ".join(notes) or None,
                              ignored=ignored, seconds=time.perf_counter() - started))
    return results


def _suppress(check_id: str, problem: Problem, suppressions: Iterable[Suppression]) -> Problem:
    rule = next((s for s in suppressions if s.matches(check_id, problem)), None)
    return replace(problem, suppressed=rule.reason) if rule else problem


def left_out(phase: str = "now", only: Iterable[str] = (), skip: Iterable[str] = ()) -> list[str]:
    """The ids of checks that apply in this phase but the user left out with --only or --skip.

    They do not make a verdict incomplete (the user asked for less), but the summary says so.
    """
    only_ids = set(resolve_ids(only, "--only"))
    skip_ids = set(resolve_ids(skip, "--skip"))
    return [c.id for c in load_all().values()
            if applies_in(c, phase) and ((only_ids and c.id not in only_ids) or c.id in skip_ids)]


#: The exit codes every command shares (docs/commands.md, `dvdoctor --help`).
CLEAN, FAILED, COULD_NOT_RUN, INCOMPLETE = 0, 1, 2, 3


def exit_code(results: list[Result], fail_on: str = ERROR) -> int:
    """The verdict as an exit code: 1 when a check failed or crashed (or warned, with fail_on=warning);
    else 3 when a check could not run (the verdict is incomplete); else 0.

    A failure outranks the unknown: what is known to be broken is what the reader must act on.
    """
    bad = {"fail", "crash"} | ({"warn"} if fail_on == WARNING else set())
    if any(r.status in bad for r in results):
        return FAILED
    if any(r.status == "skip" and r.incomplete for r in results):
        return INCOMPLETE
    return CLEAN
