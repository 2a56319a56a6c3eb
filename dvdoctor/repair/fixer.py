"""The fix registry: one fix per module of `fixes/`, each the repair of the check named like it.

A fix is a function from facts, the problems its check found in them and the user's options to a
Plan; it never acts by itself. The one way a repair runs (plan, show, ask, apply, audit, verify)
is dvdoctor/repair/runner.py: only a passing check on facts collected after it makes a fix "verified".
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..core.errors import UsageError
from ..core.plugins import import_all
from ..facts.model import Facts
from .plan import Plan
from ..verdicts.registry import Problem, Result, Run, Suppression, module_id, run_checks


@dataclass(frozen=True)
class FixOptions:
    """Every option a repair may take; each fix reads only the ones it documents."""

    restart: bool = False
    to: str | None = None
    keep: int = 2
    size: str | None = None
    storage_class: str | None = None
    dvcli: Path | None = None
    allow_world_writable: bool = False
    #: bar-pvc-missing: the kept volume to bind when more than one was kept.
    volume: str | None = None


#: What a fix is handed: the facts, the problems its check found in them, and the user's options.
PlanFn = Callable[[Facts, Sequence[Problem], FixOptions], Plan]


@dataclass(frozen=True)
class Fix:
    #: Its module's name, which is also its check's: a fix repairs the check named like it.
    id: str
    make: PlanFn
    doc: str
    #: The phase the paired check is judged in when verifying (a pre-backup state is judged as a gate).
    verify_phase: str = "now"
    #: For a repair that changes something other than what its check looks at (a local file):
    #: proves the repair itself, returning (ok, what was seen).
    verify: Callable[[FixOptions], tuple[bool, str]] | None = None

    @property
    def check(self) -> str:
        """The check that proves the repair worked: the one of the same name."""
        return self.id

    def plan(self, facts: Facts, problems: Sequence[Problem], options: FixOptions) -> Plan:
        """The repair of these problems (its check's, found in these facts), named after the fix.

        The problems come from the caller's run of the check, so a fix never runs its check again.
        """
        return replace(self.make(facts, problems, options), fix=self.id)


FIXES: dict[str, Fix] = {}


def fix(
    fn: PlanFn | None = None,
    *,
    verify_phase: str = "now",
    verify: Callable[[FixOptions], tuple[bool, str]] | None = None,
) -> PlanFn | Callable[[PlanFn], PlanFn]:
    """Register a planning function (`@fix`, or `@fix(verify_phase=...)`); its module's name is the
    id of the check it repairs, and its module docstring says what the repair changes."""

    def register(fn: PlanFn) -> PlanFn:
        id = module_id(fn.__module__)
        if id in FIXES:
            raise RuntimeError(f"fix id {id} registered twice")
        module = importlib.import_module(fn.__module__)
        FIXES[id] = Fix(id, fn, (module.__doc__ or "").strip(), verify_phase, verify)
        return fn

    return register(fn) if fn is not None else register


def judged(fx: Fix, facts: Facts, suppressions: tuple[Suppression, ...] = ()) -> Result | None:
    """Its check's result on these facts, judged as the fix's verification judges it (a pre-backup
    state as the backup's gate); None when the check does not run in that phase."""
    found = run_checks(facts, Run(phase=fx.verify_phase, command="fix", suppressions=suppressions), only=[fx.check])
    return found[0] if found else None


def load_all() -> dict[str, Fix]:
    from .. import fixes as package  # type: ignore[attr-defined]

    import_all(package)
    return dict(sorted(FIXES.items()))


def resolve(ids: Iterable[str]) -> list[str]:
    """Fix ids a user asked for; a check id without an automatic fix is accepted (manual steps)."""
    from ..verdicts.registry import load_all as load_checks
    from ..verdicts.registry import no_id_given

    fixes, checks = load_all(), load_checks()
    out: list[str] = []
    for raw in ids:
        parts = [p.strip() for p in str(raw).split(",") if p.strip()]
        if not parts:
            raise UsageError(no_id_given("--issue", raw))
        for part in parts:
            if part not in fixes and part not in checks:
                raise UsageError(f"--issue: unknown id {part!r}; fixable ids: {', '.join(fixes)}")
            out.append(part)
    return out


def manual_plan(facts: Facts, check_id: str) -> Plan:
    """For a check with no safe automatic repair: its Repair text, as steps; nothing is changed."""
    from ..verdicts.registry import load_all as load_checks

    doc = load_checks()[check_id].doc
    repair = doc.split("Repair:", 1)[1].strip() if "Repair:" in doc else doc
    return Plan(check_id, manual=[" ".join(repair.split())])
