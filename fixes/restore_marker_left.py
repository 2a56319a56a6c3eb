"""The runbook's two post-restore steps, only while no backup or restore job is active.

Runs `dv-caching-bar.sh false` in dv-engine-0 when DV caching is enabled, then removes
/mnt/marker_files/.bar_restored.txt.
Changes: what `dv-caching-bar.sh false` changes in dv-engine-0 (only when DV caching is enabled);
removes /mnt/marker_files/.bar_restored.txt.
"""

from typing import Sequence

from dvdoctor.cluster import k8s
from dvdoctor.facts.model import SECTION_ENGINE, Facts
from dvdoctor.repair.fixer import FixOptions, fix
from dvdoctor.repair.owner import refuse_while_active
from dvdoctor.repair.plan import EngineScript, Plan, recorded_replicas, remove_marker
from dvdoctor.verdicts.registry import Problem


def caching_enabled(facts: Facts) -> bool:
    """DV caching counts as enabled when its deployment runs, or ran before dvdoctor scaled it down."""
    dep = facts.get("deployments", facts.names.caching_deployment)
    if dep is None:
        return False
    return k8s.spec_replicas(dep) > 0 or (recorded_replicas(dep) or 0) > 0


@fix
def plan(facts: Facts, problems: Sequence[Problem], options: FixOptions) -> Plan:
    out = Plan()
    facts.require(SECTION_ENGINE)
    if not facts.marker(facts.names.restore_marker):
        return out
    # the marker belongs to DV's job while one runs: one line naming it, its age and what to do
    refuse_while_active(facts, "dvdoctor fix --issue restore-marker-left")
    if caching_enabled(facts) and facts.engine.get("caching_script"):
        out.actions.append(EngineScript(("caching-off", facts.names.caching_script),
                                        f"run {facts.names.caching_script} false in {facts.names.engine_pod} (DV caching is enabled)"))
    out.actions.append(remove_marker(facts, facts.names.restore_marker, f"in {facts.names.engine_pod}"))
    return out
