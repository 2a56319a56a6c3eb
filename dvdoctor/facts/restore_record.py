"""The record of a restore that failed part-way, kept in the cluster where every run sees it.

DV's restore job empties DV's volumes and untars the backup over them, so a job that fails after
it began leaves DV's data partly replaced: neither what DV held before nor what the backup holds,
and nothing on DV's side says so. dvdoctor writes it on the dv-engine StatefulSet (annotation
`dvdoctor.io/restore-incomplete`: when, which backup, why), so `check` reports it from any machine
(`restore-incomplete`) until a restore succeeds, and the next successful restore removes it.
This module reads the record; the Patches that write and clear it are dvdoctor/repair/restore_record.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

from ..cluster import k8s
from .backups import Backup
from ..core.units import ISO_Z, is_timestamp, parse_time
from .model import Facts
from ..core.names import RESTORE_INCOMPLETE_ANNOTATION, DvNames
from .origin import engine_statefulset
from .trust import Survey


@dataclass(frozen=True)
class Incomplete:
    """What the annotation says: when the restore failed, from which backup, and why."""

    when: str
    backup: str
    why: str
    job: str = ""

    @classmethod
    def parse(cls, value: str) -> "Incomplete":
        """The annotation's JSON; one a person edited into something else is still a record, said as is."""
        try:
            doc = json.loads(value)
            if not isinstance(doc, dict):
                raise ValueError("not an object")
            return cls(str(doc.get("when", "?")), str(doc.get("backup", "?")), str(doc.get("why", "?")),
                       str(doc.get("job", "")))
        except ValueError:
            return cls("?", "?", f"the record is not dvdoctor's JSON: {value[:200]!r}")

    def to_json(self) -> str:
        return json.dumps({"when": self.when, "backup": self.backup, "why": self.why, "job": self.job}, sort_keys=True)


def recorded(facts: Facts) -> Incomplete | None:
    """The record on the dv-engine StatefulSet, or None."""
    sts = facts.get("statefulsets", engine_statefulset(facts))
    value = k8s.annotations(sts).get(RESTORE_INCOMPLETE_ANNOTATION) if sts else None
    return Incomplete.parse(value) if value is not None else None


def backup_of_job(job: dict, names: DvNames) -> str:
    """The backup a restore job (or one of its pods) was pointed at: `TS/dv_backup.tar.gz` in its env,
    else the symlink's."""
    spec = job.get("spec") or {}
    if "containers" not in spec:  # a Job: its pods' template
        spec = k8s.job_pod_spec(job)
    for container in spec.get("containers") or []:
        for env in container.get("env") or []:
            value = str(env.get("value") or "")
            head, _, tail = value.partition("/")
            if tail == names.combined_tarball and is_timestamp(head):
                return head
    return f"the one {names.symlink} marked"


def _started(obj: dict) -> datetime:
    return parse_time(k8s.started_at(obj)) or datetime.min.replace(tzinfo=timezone.utc)


def failed_restore_pod(facts: Facts) -> dict | None:
    """The pod of DV's restore job that failed after its Job object was deleted (`--cascade=orphan`,
    or a newer Job of the name replaced it), when no restore ran after it; else None.

    It is the evidence a failed restore Job is: DV's data may be partly replaced, and once the pod
    is deleted (it is a leftover) nothing else says so. The newest such pod decides: one that
    succeeded after it, or a restore Job started after it, is a restore that ran since."""
    names = facts.names
    job = facts.get("jobs", names.restore_job)
    jobs = {names.restore_job: job} if job is not None else {}
    # not its own Job's pods: that Job is judged as a Job
    orphans = [p for p in facts.objects("pods")
               if k8s.job_of_pod(p)[0] == names.restore_job and not k8s.has_its_job(p, jobs)]
    if not orphans:
        return None
    newest = max(orphans, key=_started)
    if k8s.pod_phase(newest) != "Failed" or (job is not None and _started(job) >= _started(newest)):
        return None
    return newest


def pod_failure(pod: dict) -> str:
    """Why a pod failed, as its containers ended: `Error, exit code 2`."""
    for cs in k8s.container_statuses(pod):
        ended = (cs.get("state") or {}).get("terminated") or {}
        if ended and ended.get("exitCode") not in (0, None):
            return f"{ended.get('reason') or 'Error'}, exit code {ended.get('exitCode')}"
    return (pod.get("status") or {}).get("reason") or "its pod failed"


def failed_job_record(job: dict, facts: Facts) -> Incomplete:
    """The record of a failed restore Job, before the Job (its only evidence) is deleted."""
    return Incomplete(k8s.job_finished_at(job) or stamp(facts.now), backup_of_job(job, facts.names),
                      k8s.job_failure(job) or "its pods keep failing", k8s.name(job))


def failed_pod_record(pod: dict, facts: Facts) -> Incomplete:
    """The record of a restore pod that failed after its Job object was deleted (failed_restore_pod)."""
    return Incomplete(stamp(facts.now), backup_of_job(pod, facts.names),
                      f"pod {k8s.name(pod)} failed ({pod_failure(pod)}) after its Job object was deleted",
                      facts.names.restore_job)


def previous_good(s: Survey, chosen: str) -> Backup | None:
    """The newest good backup (dvdoctor/facts/trust.py) older than `chosen`."""
    older = [b for b in s.good() if b.timestamp < chosen]
    return older[-1] if older else None


def stamp(when: datetime) -> str:
    return when.strftime(ISO_Z)
