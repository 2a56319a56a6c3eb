"""Remove the `.bar` marker from dv-engine-0, only while no backup or restore job is active.

Removes /mnt/marker_files/.bar so DV's liveness probes can restart DV again; with --restart, also
deletes DV pods that are not ready so their StatefulSets recreate them now instead of within 30
minutes.
Changes: removes /mnt/marker_files/.bar in dv-engine-0; with --restart, deletes the DV pods that
are not ready.
"""

from typing import Sequence

from dvdoctor.facts.model import SECTION_ENGINE, Facts
from dvdoctor.repair.fixer import FixOptions, fix
from dvdoctor.repair.plan import Delete, Plan, remove_marker
from dvdoctor.verdicts.registry import Problem, module_id

ID = module_id(__name__)


@fix
def plan(facts: Facts, problems: Sequence[Problem], options: FixOptions) -> Plan:
    out = Plan()
    facts.require(SECTION_ENGINE)
    for problem in problems:  # the marker left behind, and the DV pods it keeps down
        out.actions.append(remove_marker(facts, problem.data["marker"], f"in {facts.names.engine_pod}"))
        stuck = problem.data["not_ready"]
        if options.restart:
            out.actions += [Delete("pods", pod, f"delete pod {pod} (not ready) so its StatefulSet recreates it")
                            for pod in stuck]
        elif stuck:
            out.notes.append(f"{len(stuck)} DV pods are not ready; they may take up to 30 minutes to recover "
                             "(--restart deletes them now)")
    return out
