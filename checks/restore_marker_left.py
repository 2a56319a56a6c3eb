"""The `.bar_restored.txt` marker is still in /mnt/marker_files after a restore ended.

Symptom: a restore finished some time ago and /mnt/marker_files/.bar_restored.txt is still in
dv-engine-0; the runbook's post-restore steps were not done (the caching step, when DV caching is
enabled, is then usually missed too).
Cause: DV's restore job leaves this marker and nothing removes it: the runbook's last restore step
is, in dv-engine-0, `/opt/dv/current/bar/scripts/dv-caching-bar.sh false` (only if DV caching is
enabled), then `rm -rf /mnt/marker_files/.bar_restored.txt`.
Repair: those two steps, only while no backup or restore job runs:
`dvdoctor fix --issue restore-marker-left`.
"""

from dvdoctor.cluster import k8s
from dvdoctor.core.units import human_bytes
from dvdoctor.facts.model import SECTION_ENGINE, Facts
from dvdoctor.verdicts.registry import WARNING, Problem, check
from dvdoctor.core.words import plural


def caching_enabled(facts: Facts) -> bool:
    """DV caching counts as enabled when its deployment runs, or ran before dvdoctor scaled it down."""
    dep = facts.get("deployments", facts.names.caching_deployment)
    if dep is None:
        return False
    return k8s.spec_replicas(dep) > 0 or (k8s.recorded_replicas(dep) or 0) > 0


@check(
    "No .bar_restored.txt marker left after a restore",
    severity=WARNING,
    needs=[SECTION_ENGINE],
    tags=["runbook", "marker", "restore"],
)
def run(facts: Facts):
    names = facts.names
    marker = facts.marker(names.restore_marker)
    if marker is None or facts.active_bar_jobs():
        return
    path = f"{names.marker_dir}/{names.restore_marker}"
    hours = (facts.now.timestamp() - marker["mtime"]) / 3600
    evidence = [
        f"{names.engine_pod}:{path} ({human_bytes(marker['size'])}, written {hours:.1f} h ago)",
        f"active BAR jobs: none ({names.backup_job}, {names.restore_job})",
    ]
    caching = facts.get("deployments", names.caching_deployment)
    if caching is not None and k8s.spec_replicas(caching) > 0:
        evidence.append(f"deployment/{names.caching_deployment} has {plural(k8s.spec_replicas(caching), 'replica')}: "
                        f"DV caching is enabled, so `{names.caching_script} false` is due too")
    # the steps due, as the repair does them: the caching step only when caching is on and its script is there
    yield Problem(f"{path} is still there: the runbook's post-restore steps were not done",
                  tuple(evidence), f"pod/{names.engine_pod}",
                  data={"marker": names.restore_marker,
                        "caching_step_due": caching_enabled(facts) and bool(facts.engine.get("caching_script"))})
