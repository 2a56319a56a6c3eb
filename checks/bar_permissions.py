"""The backup volume is not writable by the BAR job's uid.

Symptom: the backup pod keeps failing; `oc logs dv-backup-xxxx` shows
`Operation failed: [Errno 13] Permission denied: '/mnt/PV/bar/2021-01-14-19-20-07'`.
Cause: the storage class behind dv-bar-pvc creates the volume's root folder so that the uid the
BAR job runs as (bigsql) cannot create the backup's timestamp folder in it.
Repair: make /mnt/PV/bar writable for that uid with the least rights that work (owner or group
write), from a short-lived pod like the runbook's dv-test-job; then rerun the backup. The runbook's
`chmod 777` is used only when nothing narrower works.
"""

from dvdoctor.facts.model import SECTION_BAR, Facts
from dvdoctor.verdicts.registry import NotApplicable, Problem, check


@check(
    "BAR job's uid can write to the backup volume",
    needs=[SECTION_BAR],
    tags=["runbook", "backup-volume"],
)
def run(facts: Facts):
    bar = facts.bar
    if bar.get("writes_probed") is False:
        raise NotApplicable("writes were not tried: the command that collected these facts only reads the backup "
                            "volume (copy), so it left the volume as it found it")
    if not bar.get("exists", True) or "writable" not in bar:
        return
    if not bar["writable"]:
        d = bar.get("dir", {})
        yield Problem(
            f"uid {bar.get('uid')} cannot create folders in {facts.names.bar_mount}",
            (
                f"mkdir as uid {bar.get('uid')} (groups {' '.join(map(str, bar.get('gids', [])))}): "
                f"{bar.get('write_error') or 'failed'}",
                f"{facts.names.bar_mount}: mode {d.get('mode')} owner uid {d.get('uid')} gid {d.get('gid')}",
            ),
            f"persistentvolumeclaim/{facts.names.bar_pvc}",
            # what the repair says it changes, as found here: whose write access, and from what
            data={"uid": bar.get("uid"), "mode": d.get("mode"), "owner": f"{d.get('uid')}:{d.get('gid')}"},
        )
