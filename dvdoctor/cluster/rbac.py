"""Least-privilege RBAC for dvdoctor: the Role, RoleBinding and optional ClusterRole each command needs.

The rows come from dvdoctor/cluster/permissions.py, the one table of what each command calls (the
`dvdoctor-permissions` check reads it too); tests/test_rbac.py runs the code paths of check, fix,
backup, restore and schedule --apply against a recording port and fails when a call is not granted here. Pods
exec'd through a websocket are authorised as `get pods/exec` on clusters before Kubernetes 1.30
(OpenShift 4.6, under CP4D 3.5) and as `create` after, so both are in the table.

Cluster-scoped reads (persistentvolumes, storageclasses) need a ClusterRole bound cluster-wide;
it is optional: without it dvdoctor still runs and skips what needs it.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict

from ..core.errors import UsageError
from ..core.names import OWNED_LABEL, OWNED_VALUE
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


#: Each subject kind's option and its name in words, for the one line a bad value gets.
_SUBJECT_OPTIONS = {"User": ("--user", "user"), "Group": ("--group", "group"),
                    "ServiceAccount": ("--service-account", "service account")}


def subject(user: str | None, group: str | None, service_account: str | None, namespace: str) -> dict:
    """Who the binding is for: exactly one user, group or service account (default: SA dvdoctor)."""
    given = [(k, v) for k, v in (("User", user), ("Group", group), ("ServiceAccount", service_account)) if v is not None]
    if len(given) > 1:
        raise UsageError("give one of --user, --group, --service-account, not several")
    for kind, name in given:  # an empty one would bind the default account instead, silently
        option, noun = _SUBJECT_OPTIONS[kind]
        if not name.strip() or any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise UsageError(f"{option} {name!r}: give a {noun} name (not empty, no control characters)")
    kind, name = given[0] if given else ("ServiceAccount", "dvdoctor")
    if kind == "ServiceAccount":
        return {"kind": kind, "name": name, "namespace": namespace}
    return {"kind": kind, "name": name, "apiGroup": "rbac.authorization.k8s.io"}


#: Kubernetes' limit for a DNS-1123 subdomain, the strictest name a binding may need to be.
_NAME_MAX = 253
_KIND_TAGS = {"ServiceAccount": "sa", "User": "user", "Group": "group"}


def binding_name(base: str, who: dict) -> str:
    """`base` followed by who the binding is for (`dvdoctor-check-sa-dvchk`, `dvdoctor-check-user-alice`).

    A binding's subjects are replaced whole by `kubectl apply`, so one name shared by every subject
    would take the rights of whoever was bound before (the schedule's own account included). The
    subject's name is lower-cased and anything but letters, digits and `-` becomes `-` (a user may be
    `kube:admin` or an e-mail address); when that changed the name, or the result would pass 253
    characters, a short hash of the exact subject keeps two subjects from sharing a binding.
    """
    raw = who["name"]
    safe = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", raw.lower())).strip("-")
    name = f"{base}-{_KIND_TAGS[who['kind']]}-{safe}".rstrip("-")
    if safe != raw or len(name) > _NAME_MAX:
        digest = hashlib.sha256(f"{who['kind']}:{raw}".encode()).hexdigest()[:10]
        name = f"{name[:_NAME_MAX - len(digest) - 1].rstrip('-')}-{digest}"
    return name


def manifests(namespace: str, target: str, who: dict, cluster_reads: bool = True,
              per_subject: bool = True) -> list[dict]:
    """The objects to apply: [ServiceAccount,] Role, RoleBinding [, ClusterRole, ClusterRoleBinding].

    The Roles are the same for everyone and shared; each binding is named after its subject
    (`binding_name`), so applying the output for one subject never replaces another's binding.
    `per_subject=False` keeps the plain names `schedule` has always used for its own account.
    """
    commands = commands_for(target)
    name = f"dvdoctor-{target}"
    labels = {OWNED_LABEL: OWNED_VALUE}
    about = {"dvdoctor.io/grants": f"what `dvdoctor {target}` needs" if target != "all" else "what every dvdoctor command needs"}
    meta = {"name": name, "namespace": namespace, "labels": labels, "annotations": about}
    bound = {**meta, "name": binding_name(name, who) if per_subject else name}
    out: list[dict] = []
    if who["kind"] == "ServiceAccount":
        out.append({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": who["name"], "namespace": namespace, "labels": labels}})
    role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}
    out += [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta, "rules": rules(commands, False)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": bound,
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
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
             "metadata": {**cluster_meta, "name": binding_name(cluster_meta["name"], who) if per_subject
                          else cluster_meta["name"]},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_meta["name"]},
             "subjects": [who]},
        ]
    return out
