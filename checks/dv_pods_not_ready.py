"""DV's pods are not all Ready, so a restore must not start.

Symptom: a restore fails or leaves DV broken; `oc get pods | grep -i dv | grep -v Complete` (the
runbook's restore step 3) shows DV pods that are not Running and Ready, or fewer pods than their
StatefulSet wants.
Cause: DV is still starting, or down: after a failed backup or restore its `.bar` marker may keep
the liveness probes from restarting it (see `stale-bar-marker`), a pod may crash-loop, or its
volume may be unavailable. DV's pods are the StatefulSets' (`dv-engine-N`, `dv-metastore-N`,
`dv-utils-N`, `dv-worker-N`) and the side deployments' (dv-caching, dv-api, dv-unified-console),
matched by owner or exact name pattern, never by substring.
When it fails: before a restore for every such pod; at any other time too (DV down is always worth
knowing), except while a backup or restore job runs, which stops DV on purpose: then it is skipped.
Repair: manual, since the cause varies. Read the evidence (waiting reason, restarts), then
`oc describe pod NAME` and `oc logs NAME`; remove a stale marker with
`dvdoctor fix --issue stale-bar-marker --restart`; DV may need up to 30 minutes after that to come
back by itself. Start the restore only when every DV pod is Ready.
"""

import re

from dvdoctor.cluster import k8s
from dvdoctor.facts.model import Facts
from dvdoctor.core.names import DvNames
from dvdoctor.verdicts.registry import RESTORE, NotApplicable, Problem, Run, check
from dvdoctor.core.words import plural

#: Missing StatefulSet pods named one by one; more are counted in one finding.
MAX_NAMED = 5

#: A ReplicaSet's pod-template-hash, and the random suffix a ReplicaSet gives its pods.
HASH, POD_SUFFIX = r"[a-z0-9]{5,10}", r"[a-z0-9]{5}"


def workload(pod: dict, names: DvNames) -> str | None:
    """`statefulset/dv-engine` or `deployment/dv-api` when the pod is one of DV's, else None."""
    pod_name = k8s.name(pod)
    sts = k8s.owner(pod, "StatefulSet")
    for s in names.statefulsets:
        if sts == s or (sts is None and re.fullmatch(rf"{re.escape(s)}-\d+", pod_name)):
            return f"statefulset/{s}"
    rs = k8s.owner(pod, "ReplicaSet")
    for d in names.side_deployments:
        d_re = re.escape(d)
        if (rs and re.fullmatch(rf"{d_re}-{HASH}", rs)) or (rs is None and re.fullmatch(rf"{d_re}-{HASH}-{POD_SUFFIX}", pod_name)):
            return f"deployment/{d}"
    return None


def why_not_ready(pod: dict) -> str:
    parts = [f"phase {k8s.pod_phase(pod)}"]
    if k8s.pod_phase(pod) == "Running":
        parts.append("not Ready")
    if reasons := k8s.waiting_reasons(pod):
        parts.append(f"waiting: {', '.join(reasons)}")
    if unscheduled := k8s.pod_unschedulable(pod):
        parts.append(f"unschedulable: {unscheduled}")
    parts.append(f"{k8s.restarts(pod)} restarts")
    return ", ".join(parts)


@check(
    "Every DV pod is Running and Ready",
    applies=[RESTORE],
    tags=["runbook", "restore", "pods"],
)
def run(facts: Facts, run: Run):
    names = facts.names
    active = facts.active_bar_jobs()
    if run.phase != RESTORE and active:
        raise NotApplicable(f"job {', '.join(active)} is running and stops DV on purpose")
    seen: dict[str, list[str]] = {}
    for pod in facts.objects("pods"):
        owner = workload(pod, names)
        if owner is None:
            continue
        seen.setdefault(owner, []).append(k8s.name(pod))
        if not k8s.pod_ready(pod):
            yield Problem(f"DV pod {k8s.name(pod)} is not ready",
                          (f"pod/{k8s.name(pod)} of {owner}: {why_not_ready(pod)}",), f"pod/{k8s.name(pod)}")
    for s in names.statefulsets:
        sts = facts.get("statefulsets", s)
        if sts is None:
            continue
        want, pods = k8s.spec_replicas(sts), seen.get(f"statefulset/{s}", [])
        why = (f"statefulset/{s} wants {want} replicas, ready {k8s.ready_replicas(sts)}; "
               f"pods: {', '.join(sorted(pods)) or 'none'}",)
        # the first few missing pods by name, the rest counted: a count of millions is one line, not millions
        missing = want - len({p for p in pods if p.startswith(f"{s}-") and p[len(s) + 1:].isdigit()
                              and int(p[len(s) + 1:]) < want})
        i = named = 0
        while named < MAX_NAMED and named < missing:
            if f"{s}-{i}" not in pods:
                yield Problem(f"DV pod {s}-{i} does not exist", why, f"statefulset/{s}")
                named += 1
            i += 1
        if missing > named:
            yield Problem(f"{missing - named} more pods of {s} do not exist", why, f"statefulset/{s}")
    for d in names.side_deployments:
        dep = facts.get("deployments", d)
        if dep is not None and k8s.spec_replicas(dep) > 0 and f"deployment/{d}" not in seen:
            yield Problem(f"deployment {d} wants {plural(k8s.spec_replicas(dep), 'pod')} and has none",
                          (f"deployment/{d}: spec.replicas {k8s.spec_replicas(dep)}, ready {k8s.ready_replicas(dep)}, pods: none",),
                          f"deployment/{d}")
