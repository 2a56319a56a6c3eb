"""Remove BAR marker files from dv-engine-0, only while no backup or restore job is active.

`stale-bar-marker`: removes /mnt/marker_files/.bar so DV's liveness probes can restart DV again;
with --restart, also deletes DV pods that are not ready so their StatefulSets recreate them now
instead of within 30 minutes. `restore-marker-left`: the runbook's two post-restore steps: runs
`dv-caching-bar.sh false` in dv-engine-0 when DV caching is enabled, then removes
/mnt/marker_files/.bar_restored.txt.
"""

from dvdoctor.cluster import k8s
from dvdoctor.facts.model import SECTION_ENGINE, Facts
from dvdoctor.repair.fixer import FixOptions, fix
from dvdoctor.repair.owner import refuse_while_active
from dvdoctor.repair.plan import Delete, EngineScript, Plan, recorded_replicas, remove_marker


def _refuse_if_bar_job_active(facts: Facts, fix_id: str) -> None:
    """A marker belongs to DV's job while one runs: one line naming it, its age and what to do."""
    refuse_while_active(facts, f"dvdoctor fix --issue {fix_id}")


def caching_enabled(facts: Facts) -> bool:
    """DV caching counts as enabled when its deployment runs, or ran before dvdoctor scaled it down."""
    dep = facts.get("deployments", facts.names.caching_deployment)
    if dep is None:
        return False
    return k8s.spec_replicas(dep) > 0 or (recorded_replicas(dep) or 0) > 0


@fix("stale-bar-marker")
def stale(facts: Facts, options: FixOptions) -> Plan:
    out = Plan("stale-bar-marker")
    facts.require(SECTION_ENGINE)
    if not facts.marker(facts.names.bar_marker):
        return out
    _refuse_if_bar_job_active(facts, "stale-bar-marker")
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


@fix("restore-marker-left")
def restored(facts: Facts, options: FixOptions) -> Plan:
    out = Plan("restore-marker-left")
    facts.require(SECTION_ENGINE)
    if not facts.marker(facts.names.restore_marker):
        return out
    _refuse_if_bar_job_active(facts, "restore-marker-left")
    if caching_enabled(facts) and facts.engine.get("caching_script"):
        out.actions.append(EngineScript(("caching-off", facts.names.caching_script),
                                        f"run {facts.names.caching_script} false in {facts.names.engine_pod} (DV caching is enabled)"))
    out.actions.append(remove_marker(facts, facts.names.restore_marker, f"in {facts.names.engine_pod}"))
    return out
