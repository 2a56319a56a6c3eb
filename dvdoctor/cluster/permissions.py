"""The Kubernetes permissions dvdoctor needs, per command, in one table, and how RBAC rules grant them.

Read by the `dvdoctor-permissions` check (against the caller's SelfSubjectRulesReview) and fit for
docs: an administrator can build a Role from it. Each row says why, so a missing verb is explained
by what stops working. The table follows what the code does: `collect` lists every kind once,
reads BAR job logs, execs the probe in dv-engine-0 and runs a short-lived inspection Job; fixes
scale, patch, create and delete; the flows create and watch DV's own jobs.
"""

from __future__ import annotations

from dataclasses import dataclass

CHECK, FIX, BACKUP, RESTORE, LIST, COPY = "check", "fix", "backup", "restore", "list", "copy"
#: The commands that look at or change DV: `dvdoctor rbac --for all` and the permissions check.
#: `copy` needs no more in the namespace than reading it and running its Job: the repository's
#: Secret reaches that Job's pod by envFrom, which the kubelet resolves, not dvdoctor.
ALL = (CHECK, FIX, BACKUP, RESTORE, LIST, COPY)
#: `schedule --apply` creates Roles, so it stays out of ALL: whoever runs check, fix or backup
#: should not get the right to write RBAC objects along with it.
SCHEDULE = "schedule"
#: Commands whose rows a command needs too. Kubernetes lets a user create a Role, or bind one,
#: only with rights the user already holds (RBAC escalation prevention), so `schedule --apply`
#: needs those of the Roles it creates: backup's, or check's with --check-only. It may delete what
#: it creates, so that an apply refused half-way is undone (all or nothing).
IMPLIES: dict[str, tuple[str, ...]] = {SCHEDULE: (BACKUP, CHECK)}


@dataclass(frozen=True)
class Permission:
    group: str
    resource: str
    verbs: tuple[str, ...]
    commands: tuple[str, ...]
    why: str
    #: Cluster-scoped: granted by a ClusterRole only; dvdoctor works without it, minus what `why` says.
    cluster_scoped: bool = False

    @property
    def api(self) -> str:
        """`batch/jobs`, or plain `pods` for the core group, as `kubectl auth can-i` spells it."""
        return f"{self.group}/{self.resource}" if self.group else self.resource


PERMISSIONS: tuple[Permission, ...] = (
    Permission("", "pods", ("get", "list", "watch"), ALL, "read DV's pods and follow the pods of BAR jobs"),
    Permission("", "pods/log", ("get",), ALL, "read the logs of BAR jobs and of dvdoctor's inspection pod"),
    # exec goes over a websocket: authorised as `get` before Kubernetes 1.30 (CP4D 3.5's OpenShift), `create` after
    Permission("", "pods/exec", ("get", "create"), ALL, "look inside dv-engine-0 for markers and job templates, and remove markers"),
    Permission("", "pods", ("delete",), (FIX,), "restart DV pods that stay down after a marker is removed (--restart)"),
    Permission("batch", "jobs", ("get", "list", "watch"), ALL, "find and wait for BAR jobs"),
    Permission("batch", "jobs", ("create", "delete"), ALL,
               "run the short-lived pod that inspects or repairs dv-bar-pvc, and DV's backup/restore jobs"),
    Permission("apps", "deployments", ("get", "list"), ALL, "read the replicas of dv-caching, dv-api, dv-unified-console"),
    Permission("apps", "deployments", ("patch",), (FIX, BACKUP), "scale the side deployments down before a backup and back up after"),
    Permission("apps", "statefulsets", ("list",), ALL, "recognise DV's namespace and its pods"),
    Permission("apps", "statefulsets", ("patch",), (FIX, RESTORE),
               "record a restore that failed part-way on dv-engine (an annotation), and clear it after one that succeeds"),
    Permission("", "persistentvolumeclaims", ("get", "list"), ALL, "read dv-bar-pvc and dv-pvc"),
    Permission("", "persistentvolumeclaims", ("create",), (FIX, BACKUP), "create dv-bar-pvc before the first backup"),
    Permission("", "persistentvolumeclaims", ("watch",), (FIX,), "wait for dv-bar-pvc to be bound to its kept volume"),
    Permission("", "persistentvolumeclaims", ("patch",), (FIX,), "grow dv-bar-pvc when it is too small"),
    Permission("", "serviceaccounts", ("list",), ALL, "see that dv-bar-sa exists"),
    Permission("", "events", ("list",), (CHECK, FIX), "explain pods and claims that are stuck"),
    Permission("coordination.k8s.io", "leases", ("list",), ALL,
               "see dvdoctor's own lock (else stale-dvdoctor-lock is skipped)"),
    Permission("coordination.k8s.io", "leases", ("get", "create", "patch", "delete"), (FIX, BACKUP, RESTORE, SCHEDULE, COPY),
               "hold dvdoctor's lock (Lease dvdoctor-lock) so two runs never change DV at once"),
    Permission("", "persistentvolumes", ("list",), (CHECK, FIX),
               "read the reclaim policy of dv-bar-pvc's volume (else bar-pv-reclaim-delete is skipped)", cluster_scoped=True),
    Permission("", "persistentvolumes", ("get", "patch"), (FIX,),
               "set that reclaim policy to Retain, and bind a kept (Released) volume to dv-bar-pvc again",
               cluster_scoped=True),
    Permission("storage.k8s.io", "storageclasses", ("list",), (CHECK, FIX),
               "check the storage class before creating or growing dv-bar-pvc", cluster_scoped=True),
    Permission("", "serviceaccounts", ("get", "create", "patch", "delete"), (SCHEDULE,),
               "create or update the service account the scheduled job runs as (schedule --apply)"),
    Permission("batch", "cronjobs", ("get", "create", "patch", "delete"), (SCHEDULE,),
               "create or update the CronJob that runs dvdoctor (schedule --apply)"),
    Permission("rbac.authorization.k8s.io", "roles", ("get", "create", "patch", "delete"), (SCHEDULE,),
               "create or update the Role the scheduled job runs with (schedule --apply)"),
    Permission("rbac.authorization.k8s.io", "rolebindings", ("get", "create", "patch", "delete"), (SCHEDULE,),
               "bind that Role to the job's service account (schedule --apply)"),
    Permission("rbac.authorization.k8s.io", "clusterroles", ("get", "create", "patch", "delete"), (SCHEDULE,),
               "create or update the job's cluster-scoped reads (schedule --apply --check-only; else --no-cluster)",
               cluster_scoped=True),
    Permission("rbac.authorization.k8s.io", "clusterrolebindings", ("get", "create", "patch", "delete"), (SCHEDULE,),
               "bind them to the job's service account (schedule --apply --check-only; else --no-cluster)",
               cluster_scoped=True),
)


def _matches(pattern_list: list[str], value: str) -> bool:
    return "*" in pattern_list or value in pattern_list


def _resource_matches(rule_resources: list[str], resource: str) -> bool:
    """RBAC's own rule: `*` is every resource and subresource, `*/log` every resource's log subresource."""
    if "*" in rule_resources or resource in rule_resources:
        return True
    if "/" in resource:
        return "*/" + resource.split("/", 1)[1] in rule_resources
    return False


def allows(rules: list[dict], group: str, resource: str, verb: str) -> bool:
    """Whether any resource rule grants `verb` on every object of `group`/`resource`.

    A rule limited by resourceNames grants only named objects, never list, watch or create on the
    kind, so it does not count: dvdoctor acts on objects it finds, not on a fixed list of names.
    """
    for rule in rules:
        if rule.get("resourceNames"):
            continue
        if (_matches(rule.get("verbs") or [], verb) and _matches(rule.get("apiGroups") or [], group)
                and _resource_matches(rule.get("resources") or [], resource)):
            return True
    return False


def missing(rules: list[dict], commands: tuple[str, ...] = ALL) -> list[tuple[Permission, str]]:
    """Every (permission, verb) that the rules don't grant and one of `commands` needs."""
    return [
        (p, verb)
        for p in PERMISSIONS
        if set(p.commands) & set(commands)
        for verb in p.verbs
        if not allows(rules, p.group, p.resource, verb)
    ]
