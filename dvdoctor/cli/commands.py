"""Every dvdoctor command: the module that defines it, and its one line in `dvdoctor --help`.

`dvdoctor --help` and shell completion read this table instead of importing the commands' modules
(see dvdoctor.cli.lazy); a module is named relative to this package. Each line repeats the short
help the command declares, which `dvdoctor CMD --help` never shows; tests/test_startup.py checks
that the two agree. The table's order is the order of the list.
"""

from __future__ import annotations

from .lazy import LazyCommand

_CHECK = ".check_cmd"
_FLOW = ".flow_cmd"
_OPS = ".ops_cmd"

COMMANDS: dict[str, LazyCommand] = {
    "check": LazyCommand(_CHECK, "Find every known backup/restore failure, with evidence and fix."),
    "collect": LazyCommand(_CHECK, "Save DV's namespace facts for check --from, or a support bundle."),
    "checks": LazyCommand(_CHECK, "List every check: id, severity, when it applies, its fix."),
    "explain": LazyCommand(_CHECK, "Print one check's runbook text: symptom, cause, repair."),
    "fix": LazyCommand(".fix_cmd", "Repair what check found: plan, consent, apply, verify."),
    "copy": LazyCommand(".copy_cmd", "Copy good backups off the volume, into the restic repository."),
    "demo": LazyCommand(".demo_cmd", "Walk through check, fix, backup, list and restore on a lab."),
    "backup": LazyCommand(_FLOW, "Back up DV with its own backup job, gated by the checks."),
    "restore": LazyCommand(_FLOW, "Restore DV from a backup with its own job and the post-steps."),
    "list": LazyCommand(_FLOW, "List the backups on dv-bar-pvc: age, sizes, state."),
    "prune": LazyCommand(_FLOW, "Delete damaged or unverified backups, and good ones beyond --keep."),
    "rbac": LazyCommand(_OPS, "Print the least Role and bindings a dvdoctor command needs."),
    "schedule": LazyCommand(_OPS, "Print (or --apply) a CronJob of gated backups and prunes."),
    "lab": LazyCommand(".lab_cmd", "A simulated DV namespace on local disk, to try dvdoctor on."),
}
