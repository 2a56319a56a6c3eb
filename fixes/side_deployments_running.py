"""Scale dv-caching, dv-api and dv-unified-console to 0 before a backup (the runbook's step 1).

Each deployment's replica count is recorded in an annotation first, so `side-deployments-left-down`
can put back exactly what was there. Changes: spec.replicas and one annotation per deployment.
"""

from typing import Sequence

from dvdoctor.facts.model import Facts
from dvdoctor.repair.fixer import FixOptions, fix
from dvdoctor.repair.quiesce import scale_down
from dvdoctor.repair.plan import Plan
from dvdoctor.verdicts.registry import Problem


@fix(verify_phase="backup")
def plan(facts: Facts, problems: Sequence[Problem], options: FixOptions) -> Plan:
    # the backup flow's own first step, for the deployments the check found running
    out = Plan(actions=scale_down(name for problem in problems for name in problem.data["deployments"]))
    if out.actions:
        out.notes.append("DV's web console, REST API and caching stay down until `dvdoctor fix --issue side-deployments-left-down`.")
    return out
