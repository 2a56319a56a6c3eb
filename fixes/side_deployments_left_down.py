"""Scale dv-caching, dv-api and dv-unified-console back up after an interrupted backup.

Each goes back to the count dvdoctor recorded in its annotation when it scaled it down (1 when
there is none or it is 0, the runbook's value, as `bar-job-unattended` does); the annotation is removed. Changes: spec.replicas.
"""

from typing import Sequence

from dvdoctor.facts.model import Facts
from dvdoctor.repair.fixer import FixOptions, fix
from dvdoctor.repair.plan import Plan, Scale, scale_back_count
from dvdoctor.verdicts.registry import Problem


@fix
def plan(facts: Facts, problems: Sequence[Problem], options: FixOptions) -> Plan:
    out = Plan()
    for problem in problems:  # each a side deployment at 0 while no BAR job runs
        name = problem.data["deployment"]
        out.actions.append(Scale(name, scale_back_count(facts.get("deployments", name))))
    return out
