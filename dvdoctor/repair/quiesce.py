"""DV's side deployments scaled to 0 for a backup, and back to what they ran after it.

The backup flow's first step, and the whole of the `side-deployments-running` repair (the same
step, for a gate that found them running): one definition, so the two cannot drift apart.
"""

from __future__ import annotations

from ..cluster import k8s
from ..facts.model import Facts
from .plan import Plan, Scale


def quiesce_plan(facts: Facts) -> Plan:
    plan = Plan("backup")
    for name in facts.names.side_deployments:
        dep = facts.get("deployments", name)
        if dep is not None and k8s.spec_replicas(dep) > 0:
            plan.actions.append(Scale(name, 0))
    return plan


def unquiesce_plan(facts: Facts, before: dict[str, int]) -> Plan:
    return Plan("backup", [Scale(name, n) for name, n in before.items() if n > 0])
