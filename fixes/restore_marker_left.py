"""The runbook's two post-restore steps, only while no backup or restore job is active.

Runs `dv-caching-bar.sh false` in dv-engine-0 when DV caching is enabled, then removes
/mnt/marker_files/.bar_restored.txt.
Changes: what `dv-caching-bar.sh false` changes in dv-engine-0 (only when DV caching is enabled);
removes /mnt/marker_files/.bar_restored.txt.
"""

from typing import Sequence

from dvdoctor.facts.model import SECTION_ENGINE, Facts
from dvdoctor.repair.fixer import FixOptions, fix
from dvdoctor.repair.plan import EngineScript, Plan, remove_marker
from dvdoctor.verdicts.registry import Problem, module_id

ID = module_id(__name__)


@fix
def plan(facts: Facts, problems: Sequence[Problem], options: FixOptions) -> Plan:
    out = Plan()
    names = facts.names
    facts.require(SECTION_ENGINE)
    for problem in problems:  # the post-restore steps the check found not done
        if problem.data["caching_step_due"]:
            out.actions.append(EngineScript(("caching-off", names.caching_script),
                                            f"run {names.caching_script} false in {names.engine_pod} (DV caching is enabled)"))
        out.actions.append(remove_marker(facts, problem.data["marker"], f"in {names.engine_pod}"))
    return out
