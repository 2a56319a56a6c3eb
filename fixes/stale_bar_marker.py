"""Remove the `.bar` marker from dv-engine-0, only while no backup or restore job is active.

Removes /mnt/marker_files/.bar so DV's liveness probes can restart DV again; with --restart, also
deletes DV pods that are not ready so their StatefulSets recreate them now instead of within 30
minutes.
Changes: removes /mnt/marker_files/.bar in dv-engine-0; with --restart, deletes the DV pods that
are not ready.
"""

from typing import Sequence

from dvdoctor.cluster import k8s
from dvdoctor.facts.model import SECTION_ENGINE, Facts
from dvdoctor.repair.fixer import FixOptions, fix
from dvdoctor.repair.owner import refuse_while_active
from dvdoctor.repair.plan import Delete, Plan, remove_marker
from dvdoctor.verdicts.registry import Problem


@fix
def plan(facts: Facts, problems: Sequence[Problem], options: FixOptions) -> Plan:
    out = Plan()
    facts.require(SECTION_ENGINE)
    if not facts.marker(facts.names.bar_marker):
        return out
    # the marker belongs to DV's job while one runs: one line naming it, its age and what to do
    refuse_while_active(facts, "dvdoctor fix --issue stale-bar-marker")
    out.actions.append(remove_marker(facts, facts.names.bar_marker, f"in {facts.names.engine_pod}"))
    stuck = [p for p in facts.objects("pods") if _is_dv_statefulset_pod(facts, p) and not k8s.pod_ready(p)]
    if options.restart:
        out.actions += [Delete("pods", k8s.name(p), f"delete pod {k8s.name(p)} (not ready) so its StatefulSet recreates it")
                        for p in stuck]
    elif stuck:
        out.notes.append(f"{len(stuck)} DV pods are not ready; they may take up to 30 minutes to recover (--restart deletes them now)")
    return out


def _is_dv_statefulset_pod(facts: Facts, pod: dict) -> bool:
    return any(o.get("kind") == "StatefulSet" and o.get("name") in facts.names.statefulsets
               for o in pod["metadata"].get("ownerReferences") or [])
