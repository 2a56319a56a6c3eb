"""DV's side deployments scaled to 0 for a backup, and back to what they ran after it.

The backup flow's first step, and the whole of the `side-deployments-running` repair (the same
step, for a gate that found them running): one definition, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Iterable

from ..cluster import k8s
from ..facts.model import Facts
from .plan import Plan, Scale


def scale_down(deployments: Iterable[str]) -> list[Scale]:
    """The step itself: each deployment to 0, its count recorded first (Scale does) for the way back."""
    return [Scale(name, 0) for name in deployments]


def quiesce_plan(facts: Facts) -> Plan:
    """The backup's first step: the side deployments that run, to 0."""
    running = [name for name in facts.names.side_deployments
               if (dep := facts.get("deployments", name)) is not None and k8s.spec_replicas(dep) > 0]
    return Plan("backup", scale_down(running))


def unquiesce_plan(facts: Facts, before: dict[str, int]) -> Plan:
    return Plan("backup", [Scale(name, n) for name, n in before.items() if n > 0])
