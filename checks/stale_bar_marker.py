"""A `.bar` marker is left in /mnt/marker_files while no BAR job runs, so DV stays down.

Symptom: DV pods do not come back after a backup or restore failed or its job was deleted.
Cause: the BAR job puts down `/mnt/marker_files/.bar` to stop DV's liveness probes from restarting
DV while it works, and removes it at the end; a job that failed or was deleted leaves it behind.
Repair: remove the marker (only when no BAR job is active); DV pods may then take up to 30 minutes
to recover on their own, or can be restarted.
"""

from dvdoctor.cluster import k8s
from dvdoctor.core.units import human_bytes
from dvdoctor.facts.model import SECTION_ENGINE, Facts
from dvdoctor.verdicts.registry import Problem, check


def not_ready_dv_pods(facts: Facts) -> list[str]:
    """DV's StatefulSet pods that are not ready: what a marker left behind keeps down (the repair's
    --restart deletes them, so their StatefulSets recreate them now rather than within 30 minutes)."""
    return [k8s.name(p) for p in facts.objects("pods")
            if any(o.get("kind") == "StatefulSet" and o.get("name") in facts.names.statefulsets
                   for o in p["metadata"].get("ownerReferences") or [])
            and not k8s.pod_ready(p)]


@check(
    "No .bar marker left behind without a running BAR job",
    needs=[SECTION_ENGINE],
    tags=["runbook", "marker"],
)
def run(facts: Facts):
    marker = facts.marker(facts.names.bar_marker)
    if marker is None or facts.active_bar_jobs():
        return
    age_min = (facts.now.timestamp() - marker["mtime"]) / 60
    yield Problem(
        f"{facts.names.marker_dir}/{facts.names.bar_marker} exists but no backup or restore job is running",
        (
            f"{facts.names.engine_pod}:{facts.names.marker_dir}/{facts.names.bar_marker} "
            f"({human_bytes(marker['size'])}, written {age_min:.0f} min ago)",
            f"active BAR jobs: none ({facts.names.backup_job}, {facts.names.restore_job})",
        ),
        f"pod/{facts.names.engine_pod}",
        data={"marker": facts.names.bar_marker, "not_ready": tuple(not_ready_dv_pods(facts))},
    )
