"""Make /mnt/PV/bar writable for the BAR job's uid with the least rights that work.

From a short-lived pod like the runbook's dv-test-job (DV's init-volume image, dv-bar-sa, the BAR
uid, sudo for root-only steps): first owner write (chown to the BAR uid), then group write for a
group the uid is in when the storage won't change owners (NFS root squash); world-writable 0777,
the runbook's own repair, only as a last resort and only with --allow-world-writable.
Changes: the mode and owner of the backup volume's root folder.
"""

from typing import Sequence

from dvdoctor.facts.model import SECTION_BAR, Facts
from dvdoctor.repair.fixer import FixOptions, fix
from dvdoctor.repair.plan import BarScript, Plan
from dvdoctor.verdicts.registry import Problem


@fix
def plan(facts: Facts, problems: Sequence[Problem], options: FixOptions) -> Plan:
    out = Plan()
    facts.require(SECTION_BAR)  # a volume that could not be inspected is said so, never "nothing to do"
    for problem in problems:  # the volume's root folder, which the BAR uid cannot write to
        found = problem.data
        out.actions.append(BarScript(
            ("grant",),
            f"give uid {found['uid']} write access to {facts.names.bar_mount} (now mode {found['mode']}, "
            f"owner {found['owner']}): owner first, then group"
            + (", then 0777" if options.allow_world_writable else ""),
            allow_world_writable=options.allow_world_writable,
        ))
    return out
