"""Least-privilege RBAC for dvdoctor: the Role, RoleBinding and optional ClusterRole each command needs.

The rows come from dvdoctor/permissions.py, the one table of what each command calls (the
`dvdoctor-permissions` check reads it too); tests/test_rbac.py runs the code paths of check, fix,
backup, restore and schedule --apply against a recording port and fails when a call is not granted here. Pods
exec'd through a websocket are authorised as `get pods/exec` on clusters before Kubernetes 1.30
(OpenShift 4.6, under CP4D 3.5) and as `create` after, so both are in the table.

Cluster-scoped reads (persistentvolumes, storageclasses) need a ClusterRole bound cluster-wide;
it is optional: without it dvdoctor still runs and skips what needs it.
"""

from __future__ import annotations

from collections import defaultdict

from .errors import UsageError
from .names import OWNED_LABEL, OWNED_VALUE
from .permissions import ALL, IMPLIES, PERMISSIONS, SCHEDULE, Permission

#: `dvdoctor rbac --for` choices: one command's needs, or those of every command that acts on DV.
TARGETS = (*ALL, SCHEDULE, "all")
#: The order RBAC tools print verbs in, so generated rules read the way people expect.
VERB_ORDER = ("get", "list", "watch", "create", "update", "patch", "delete")


def needed(commands: tuple[str, ...]) -> list[Permission]:
    """The table's rows any of `commands` needs."""
    return [p for p in PERMISSIONS if set(p.commands) & set(commands)]


def rules(commands: tuple[str, ...], cluster_scoped: bool) -> list[dict]:
    """RBAC rules granting exactly the table's verbs, one rule per API group and verb set."""
    verbs: dict[tuple[str, str], set[str]] = defaultdict(set)
    for p in needed(commands):
        if p.cluster_scoped == cluster_scoped:
            verbs[(p.group, p.resource)].update(p.verbs)
    grouped: dict[tuple[str, tuple[str, ...]], list[str]] = defaultdict(list)
    for (group, resource), vs in sorted(verbs.items()):
        grouped[(group, tuple(sorted(vs, key=VERB_ORDER.index)))].append(resource)
    out = [{"apiGroups": [group], "resources": sorted(resources), "verbs": list(vs)}
           for (group, vs), resources in grouped.items()]
    return sorted(out, key=lambda r: (r["apiGroups"][0], r["resources"][0]))


def commands_for(target: str) -> tuple[str, ...]:
    if target not in TARGETS:
        raise UsageError(f"--for {target!r}: allowed: {', '.join(TARGETS)}")
    return ALL if target == "all" else (target, *IMPLIES.get(target, ()))


def subject(user: str | None, group: str | None, service_account: str | None, namespace: str) -> dict:
    """Who the binding is for: exactly one user, group or service account (default: SA dvdoctor)."""
    given = [(k, v) for k, v in (("User", user), ("Group", group), ("ServiceAccount", service_account)) if v]
    if len(given) > 1:
        raise UsageError("give one of --user, --group, --service-account, not several")
    kind, name = given[0] if given else ("ServiceAccount", "dvdoctor")
    if kind == "ServiceAccount":
        return {"kind": kind, "name": name, "namespace": namespace}
    return {"kind": kind, "name": name, "apiGroup": "rbac.authorization.k8s.io"}


def manifests(namespace: str, target: str, who: dict, cluster_reads: bool = True) -> list[dict]:
    """The objects to apply: [ServiceAccount,] Role, RoleBinding [, ClusterRole, ClusterRoleBinding]."""
    commands = commands_for(target)
    name = f"dvdoctor-{target}"
    labels = {OWNED_LABEL: OWNED_VALUE}
    about = {"dvdoctor.io/grants": f"what `dvdoctor {target}` needs" if target != "all" else "what every dvdoctor command needs"}
    meta = {"name": name, "namespace": namespace, "labels": labels, "annotations": about}
    out: list[dict] = []
    if who["kind"] == "ServiceAccount":
        out.append({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": who["name"], "namespace": namespace, "labels": labels}})
    role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}
    out += [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta, "rules": rules(commands, False)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
         "roleRef": role_ref, "subjects": [who]},
    ]
    cluster_rules = rules(commands, True)
    if cluster_reads and cluster_rules:
        # cluster-wide objects have no namespace: name them after it, so two DV namespaces don't clash
        kinds = {resource for rule in cluster_rules for resource in rule["resources"]}
        cluster_meta = {"name": f"dvdoctor-{namespace}-{target}", "labels": labels, "annotations": {
            "dvdoctor.io/grants": f"the cluster-scoped part ({', '.join(sorted(kinds))}) for dvdoctor in {namespace}"}}
        out += [
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": cluster_meta,
             "rules": cluster_rules},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": cluster_meta,
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_meta["name"]},
             "subjects": [who]},
        ]
    return out
