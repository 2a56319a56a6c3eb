"""Gather the facts of one DV namespace, once, with as few API calls as the data needs.

Each kind is listed once and filtered in memory; dv-engine-0 is asked once (one exec) for markers
and job templates; the backup volume, which no running DV pod mounts, is inspected by one
short-lived Job with DV's own init-volume image, service account, uid and mounts.
"""

from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone
from typing import Callable

from .. import __version__
from ..cluster import k8s, oneshot
from . import probe
from .bar_jobs import backup_at_work
from .dv_templates import bar_image, bar_job, engine_container
from ..core.units import TIMESTAMP_FORMAT, parse_quantity
from ..cluster.port import KINDS, Cluster
from ..core.errors import ClusterError, DvdoctorError, Forbidden, NotServed, Unavailable, UsageError
from .model import SCHEMA_ID, SECTION_ACCESS, SECTION_BAR, SECTION_COPIES, SECTION_ENGINE, Facts
from ..cluster.lock import LEASE_NAME, Holder
from ..core.names import DEFAULT, DvNames, Settings

#: Kinds whose list may be refused (or keep failing with 429/5xx past its retries) without stopping
#: the run (cluster-scoped, or nice to have): the checks that need them skip, naming why.
OPTIONAL_KINDS = ("persistentvolumes", "storageclasses", "events", "leases")
#: Kinds that are only evidence: no check's verdict rests on them, so a list that still fails after
#: its retries (a busy server) becomes a line in the findings' evidence, never a dead run.
EVIDENCE_KINDS = ("events",)
LOG_TAIL_LINES = 200
#: Bytes of those lines kept at most: the facts are read whole into memory, and a line has no bound.
LOG_TAIL_BYTES = 256 * 1024


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _trim(obj: dict) -> dict:
    """Drop bulk nobody reads (managedFields, last-applied); secrets are dropped on the way out (dvdoctor.core.redact).

    The object given is left as it was: what changes (its metadata, its annotations) is copied, the
    rest is shared (a listing's objects are new at every call; a deep copy of each cost more than
    parsing it)."""
    obj = dict(obj)
    meta = obj.get("metadata")
    if isinstance(meta, dict) and meta:
        meta = obj["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
        ann = meta.get("annotations")
        if isinstance(ann, dict) and LAST_APPLIED in ann:
            meta["annotations"] = {k: v for k, v in ann.items() if k != LAST_APPLIED}
    return obj


def _note_lock_holder(data: dict) -> None:
    """Record whether dvdoctor's lock is held by a process of this host that no longer runs.

    Only this machine can tell (a pid means nothing elsewhere), so it is a fact gathered here, and
    the check `stale-dvdoctor-lock` stays a pure function of the facts.
    """
    host = socket.gethostname()
    data["source"]["host"] = host
    lease = next((o for o in data["objects"].get("leases", []) if k8s.name(o) == LEASE_NAME), None)
    if lease is not None:
        data["source"]["lock_holder_gone"] = Holder.of(lease).gone_here(host)
    # dvdoctor's own one-shot Jobs that a finished or killed run left (no TTL controller before 1.21)
    now = datetime.now(timezone.utc)
    data["source"]["abandoned_jobs"] = {k8s.name(j): why for j in data["objects"].get("jobs", [])
                                        if (why := oneshot.abandoned(j, now, host))}


def recent_events(events: list[dict], minutes: int) -> list[dict]:
    """Events of the last `minutes` (a namespace keeps an hour or more of them; older ones explain nothing now)."""
    cutoff = datetime.now(timezone.utc).timestamp() - minutes * 60
    def when(e: dict) -> float:
        stamp = e.get("lastTimestamp") or e.get("eventTime") or (e.get("metadata") or {}).get("creationTimestamp")
        try:
            return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
        except ValueError:
            return cutoff  # undated: keep it
    return [e for e in events if when(e) >= cutoff]


def _is_dv_namespace(objects: dict, names: DvNames) -> bool:
    return any(k8s.name(p) == names.engine_pod for p in objects.get("pods", [])) or any(
        k8s.name(s) in names.statefulsets for s in objects.get("statefulsets", [])
    )


def bar_job_pods_to_log(objects: dict, names: DvNames) -> list[str]:
    """Pods of DV's BAR jobs that failed, restarted or crash-loop: their logs are evidence."""
    out = []
    for pod in objects.get("pods", []):
        job = (pod["metadata"].get("labels") or {}).get("job-name", "")
        if job not in names.bar_jobs:
            continue
        if k8s.pod_phase(pod) == "Failed" or k8s.restarts(pod) > 0 or "CrashLoopBackOff" in k8s.waiting_reasons(pod):
            out.append(k8s.name(pod))
    return out


def collect(
    cluster: Cluster,
    settings: Settings = DEFAULT,
    *,
    use_pod: bool = True,
    verify: bool | probe.ReadBack = False,
    source: str = "cluster",
    progress: Callable[[str], None] | None = None,
    copies: bool = True,
    probe_writes: bool = True,
) -> Facts:
    """The namespace's facts. `copies=False` leaves the copies unlisted (skipped, by choice): a flow
    that collects again mid-run reads pods and backups only, and each listing opens the repository
    (a key derivation) and, in a cluster, runs a Job. `probe_writes=False`: the inspection pod does
    not try a write on the backup volume (a command that only reads it, `copy`, leaves it as found;
    bar-permissions then says writes were not tried)."""
    names = settings.names
    say = progress or (lambda _msg: None)
    data: dict = {
        "schema": SCHEMA_ID,
        "dvdoctor_version": __version__,
        "collected_at": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "namespace": cluster.namespace,
        "source": {"kind": source, "where": cluster.describe()},
        "objects": {},
        "logs": {},
        "skipped": {},
        "errors": [],
    }
    say("listing DV objects")
    for kind in KINDS:
        try:
            objs = cluster.list(kind)
            if kind == "events":
                objs = recent_events(objs, settings.thresholds.event_window_minutes)
            data["objects"][kind] = [_trim(o) for o in objs]
        except ClusterError as exc:
            # NotServed: OpenShift 3.11 has no Lease API (server-too-old says what that costs)
            if not (kind in EVIDENCE_KINDS or (kind in OPTIONAL_KINDS and isinstance(exc, (Forbidden, Unavailable, NotServed)))):
                raise
            data["errors"].append({"what": f"list {kind}", "error": str(exc)})
    _note_lock_holder(data)
    if not _is_dv_namespace(data["objects"], names):
        raise UsageError(
            f"namespace {cluster.namespace!r} has no DV: no pod {names.engine_pod} and no StatefulSet "
            f"{', '.join(names.statefulsets)} (use -n NAMESPACE for DV's namespace)"
        )
    for pod in bar_job_pods_to_log(data["objects"], names):
        try:
            data["logs"][pod] = cluster.logs(pod, tail_lines=LOG_TAIL_LINES, limit_bytes=LOG_TAIL_BYTES)
        except ClusterError as exc:
            data["errors"].append({"what": f"logs of {pod}", "error": str(exc)})

    # the pod builders read the typed facts; a Facts reads this dict live, so they see what is gathered so far
    gathering = Facts(data, settings)
    say(f"looking inside {names.engine_pod}")
    _collect_engine(cluster, gathering)
    if use_pod:
        say(f"inspecting {names.bar_pvc} from a short-lived pod")
        _collect_bar(cluster, gathering, verify, say, probe_writes)
    else:
        data["skipped"][SECTION_BAR] = "--no-pod: the backup volume was not inspected"
        data["left_out"] = [SECTION_BAR]
    if copies or settings.copies is None:  # not configured: said so, as always
        _collect_copies(cluster, data, settings, say, check_repository=verify is True)
    else:
        data["skipped"][SECTION_COPIES] = "the copies were not listed: collected again during a flow, which reads none"
        data.setdefault("left_out", []).append(SECTION_COPIES)
    version = cluster.server_version()
    data["server"] = {"version": f"{version[0]}.{version[1]}" if version else None,
                      "lease": cluster.served("leases")}
    try:
        data[SECTION_ACCESS] = {"rules": cluster.allowed_rules()}
    except ClusterError as exc:
        data["skipped"][SECTION_ACCESS] = f"SelfSubjectRulesReview failed: {exc}"
    requests = getattr(cluster, "request_count", None)
    if requests is not None:
        data["requests"] = requests
    return Facts(data, settings)


def _collect_copies(cluster: Cluster, data: dict, settings: Settings, say: Callable[[str], None],
                    check_repository: bool = False) -> None:
    """This instance's copies in the repository, when the site configured copies (one program run).
    `check_repository` (check --verify, which reads back every backup): then `restic check` too, a
    second run that lists every pack, since a copy whose packs were lost is listed as a whole one."""
    from ..copies.where import repository_damage, runner

    if settings.copies is None:
        data["skipped"][SECTION_COPIES] = "copies are not configured (copies: in dvdoctor.yaml)"
        data.setdefault("not_applicable", []).append(SECTION_COPIES)
        return
    if SECTION_BAR not in data:
        data["skipped"][SECTION_COPIES] = f"the copies were not listed: {data['skipped'].get(SECTION_BAR, '')}"
        for chosen in ("left_out", "not_applicable"):  # as known, or as unknown, as the volume is
            if SECTION_BAR in data.get(chosen, []):
                data[chosen].append(SECTION_COPIES)
        return
    say("listing the copies in the restic repository")
    try:
        run = runner(cluster, Facts(data, settings), settings.copies)
        outcome = run(["snapshots"], False)
    except (DvdoctorError, OSError) as exc:
        # configured but unusable is a finding (copies-unusable), not a gap in the facts
        data[SECTION_COPIES] = {"snapshots": [], "error": str(exc)}
        return
    if outcome.rc != 0:
        data[SECTION_COPIES] = {"snapshots": [], "error": "; ".join(outcome.errors()) or outcome.reason
                                or "the copy program failed"}
        return
    section: dict = {"snapshots": [r["snapshot"] for r in outcome.records if "snapshot" in r]}
    if check_repository:
        say("checking the restic repository (restic check, no data read)")
        damage = repository_damage(run)
        section["repository_check"] = {"ok": damage is None, "error": damage}
    data[SECTION_COPIES] = section


def _collect_engine(cluster: Cluster, facts: Facts) -> None:
    data, names = facts.data, facts.names
    engine = next((p for p in data["objects"]["pods"] if k8s.name(p) == names.engine_pod), None)
    if engine is None or k8s.pod_phase(engine) != "Running":
        data["skipped"][SECTION_ENGINE] = f"pod {names.engine_pod} is not running"
        return
    argv = ["bash", "-c", probe.script("engine-probe.sh"), "dvdoctor-engine-probe",
            names.marker_dir, names.template_dir, names.caching_script, *names.templates]
    try:
        result = cluster.exec(names.engine_pod, argv, container=engine_container(facts))
    except ClusterError as exc:
        data["skipped"][SECTION_ENGINE] = f"exec in {names.engine_pod} failed: {exc}"
        return
    parsed = probe.parse_engine_probe(result.stdout)
    if not parsed["complete"]:
        data["skipped"][SECTION_ENGINE] = f"probe in {names.engine_pod} ended early (rc {result.rc}): {result.stderr.strip()[:200]}"
        return
    data[SECTION_ENGINE] = parsed


#: Bytes a second the inspection pod is assumed to read back at the least (gunzip of the combined
#: tarball and of the inner ones, on NFS, at the pod's CPU limit): what its deadline is sized by.
READ_BACK_RATE = 20 * 1024**2


def read_back_seconds(policy: probe.ReadBack, objects: dict, names: DvNames) -> int:
    """How long the inspection may take: a base, plus its read-back bound (the budget, else the whole
    claim, since a volume holds at most that) at READ_BACK_RATE."""
    if policy.mode == "recorded" and not policy.also:
        return 180
    bound = policy.budget
    if not bound or policy.also:
        pvc = next((p for p in objects.get("persistentvolumeclaims", []) if k8s.name(p) == names.bar_pvc), None)
        size = (((pvc or {}).get("status") or {}).get("capacity") or {}).get("storage") or \
            (((pvc or {}).get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
        try:
            bound = max(bound, parse_quantity(size)) if size else max(bound, 100 * 1024**3)
        except ValueError:
            bound = max(bound, 100 * 1024**3)
    return 180 + int(bound / READ_BACK_RATE)


def _being_written(objects: dict, names: DvNames) -> str:
    """What the probe must not read back: folders DV's active backup job may be writing (named at or
    after its start, a minute of clock skew allowed), or those its pod still at work without its Job
    object writes. A tarball still being written would look cut short."""
    job = backup_at_work(objects.get("jobs", []), objects.get("pods", []), names)
    if job is None:
        return ""
    if job.started is None:
        return "@since:0000-00-00-00-00-00"
    return "@since:" + (job.started - timedelta(minutes=1)).strftime(TIMESTAMP_FORMAT)


def read_back_policy(verify: bool | probe.ReadBack) -> probe.ReadBack:
    """`--verify` reads back every backup, whatever was recorded (bit rot keeps size and mtime);
    without it, reporting trusts records and stays within a budget."""
    if isinstance(verify, probe.ReadBack):
        return verify
    return probe.EVERY_ONE if verify else probe.REPORT


def _collect_bar(cluster: Cluster, facts: Facts, verify: bool | probe.ReadBack,
                 say: Callable[[str], None], probe_writes: bool = True) -> None:
    data, names = facts.data, facts.names
    objects = data["objects"]
    image = bar_image(facts)
    why = None
    if image is None:
        why = f"job {names.init_volume_job} is missing, so DV's BAR image is unknown"
    elif not any(k8s.name(s) == names.bar_sa for s in objects.get("serviceaccounts", [])):
        why = f"service account {names.bar_sa} is missing"
    elif not any(k8s.name(p) == names.bar_pvc for p in objects.get("persistentvolumeclaims", [])):
        why = f"claim {names.bar_pvc} is missing"
    if why:
        # a known state, which its own check reports (or a first backup creates the claim): not an unknown
        data["skipped"][SECTION_BAR] = why
        data.setdefault("not_applicable", []).append(SECTION_BAR)
        return
    env = {**read_back_policy(verify).env(skip=_being_written(objects, names)),
           "COMPONENTS": " ".join(names.component_tarballs), "WRITE_PROBE": "1" if probe_writes else "0"}
    seconds = read_back_seconds(read_back_policy(verify), objects, names)
    manifest = bar_job(facts, "inspect", "bar-probe.sh", [], env, deadline_seconds=seconds + 120)
    try:
        result = oneshot.run_job(cluster, manifest, timeout=seconds + 60, progress=say)
    except ClusterError as exc:
        data["skipped"][SECTION_BAR] = f"the inspection pod could not be created: {exc}"
        return
    parsed = probe.parse_bar_probe(result.log)
    if not parsed["complete"]:
        last = next((line for line in reversed(result.log.strip().splitlines()) if line.strip()), "")
        why = "; ".join(x for x in (result.reason, f"its log ends: {last[-200:]}" if last else "its log is empty") if x)
        data["skipped"][SECTION_BAR] = f"the inspection pod {result.pod or result.job} {result.outcome.lower()}: {why}"
        return
    data[SECTION_BAR] = parsed
