"""dvdoctor's own Kubernetes user lacks permissions some of its commands need.

Symptom: a repair, backup or restore stops half-way with `Forbidden`; or some checks are skipped.
Cause: the user or service account dvdoctor runs as is bound to a Role that does not grant every
verb on every resource dvdoctor uses. The table of what each command needs lives in one place,
dvdoctor/permissions.py; this check compares it with the caller's rules as the API's
SelfSubjectRulesReview reports them in DV's namespace. Rules limited to named objects
(resourceNames) don't count, since dvdoctor lists and creates. Before a backup or restore only that
command's permissions are checked; otherwise all of them. An empty rule list means the cluster's
authorizer cannot enumerate rules (the review is then incomplete), so the check is skipped. The
review can't tell a namespaced `*` from a cluster-wide grant, so rights on persistentvolumes may
look present and still be refused: bar-pv-reclaim-delete then says so by skipping.
Repair: manual: ask an administrator to grant the verbs named in the evidence (a Role and
RoleBinding in DV's namespace; a ClusterRole for persistentvolumes and storageclasses), or run
dvdoctor as a user who has them. `kubectl auth can-i VERB RESOURCE -n NS` confirms each one.
"""

from dvdoctor import permissions
from dvdoctor.facts import SECTION_ACCESS, Facts
from dvdoctor.registry import WARNING, Problem, Skip, check
from dvdoctor.words import plural


@check(
    "dvdoctor-permissions",
    "dvdoctor may do what its commands need",
    severity=WARNING,
    needs=[SECTION_ACCESS],
    tags=["rbac"],
)
def run(facts: Facts):
    rules = facts.section(SECTION_ACCESS)["rules"]
    if not rules:
        raise Skip("SelfSubjectRulesReview returned no rules: this cluster's authorizer cannot list them")
    commands = (facts.phase,) if facts.phase in (permissions.BACKUP, permissions.RESTORE) else permissions.ALL
    gaps = permissions.missing(rules, commands)
    if not gaps:
        return
    evidence = tuple(
        f"cannot {verb} {p.api}{' (cluster-wide)' if p.cluster_scoped else ''}: needed by {', '.join(p.commands)} "
        f"to {p.why}"
        for p, verb in gaps
    )
    affected = sorted({c for p, _ in gaps for c in p.commands if c in commands})
    yield Problem(f"{plural(len(gaps), 'permission')} missing in {facts.namespace}; affects: {', '.join(affected)}",
                  evidence, f"namespace/{facts.namespace}")
