"""dvdoctor's own Kubernetes user lacks permissions the command it runs needs.

Symptom: a repair, backup or restore stops half-way with `Forbidden`; or some checks are skipped.
Cause: the user or service account dvdoctor runs as is bound to a Role that does not grant every
verb on every resource dvdoctor uses. The table of what each command needs lives in one place,
dvdoctor/cluster/permissions.py; this check compares it with the caller's rules as the API's
SelfSubjectRulesReview reports them in DV's namespace. Rules limited to named objects
(resourceNames) don't count, since dvdoctor lists and creates. It judges the command at hand:
`check` on what check needs, `fix` on what fix needs, a backup's or restore's gate on that
command's rights; rights only other commands need are listed as a note, not flagged, so an account
granted `dvdoctor rbac --for check` passes. In a backup's or restore's gate, a missing right that
the command would meet only at a change (scaling the side deployments, the lock, deleting the
finished job; creating dv-bar-pvc while it does not exist) stops the gate: the command would start
and be refused part-way. A right the gate's checks look with (a read, exec, creating the
inspection Job) stops it already, as the checks that need it cannot run. An empty rule list means the cluster's
authorizer cannot enumerate rules (the review is then incomplete), so the check is skipped. The
review can't tell a namespaced `*` from a cluster-wide grant, so rights on persistentvolumes may
look present and still be refused: bar-pv-reclaim-delete then says so by skipping.
Where the review is known to be wrong (another authorizer grants what RBAC does not list),
`--ignore-check dvdoctor-permissions` lets the command through.
Repair: manual: ask an administrator to grant the verbs named in the evidence (a Role and
RoleBinding in DV's namespace; a ClusterRole for persistentvolumes and storageclasses), or run
dvdoctor as a user who has them. `kubectl auth can-i VERB RESOURCE -n NS` confirms each one.
"""

from dvdoctor.cluster import permissions
from dvdoctor.facts.model import SECTION_ACCESS, Facts
from dvdoctor.verdicts.registry import BACKUP, RESTORE, WARNING, Note, Problem, Run, Skip, check
from dvdoctor.core.words import plural


def _line(p: permissions.Permission, verb: str) -> str:
    scope = " (cluster-wide)" if p.cluster_scoped else ""
    return f"cannot {verb} {p.api}{scope}: needed by {', '.join(p.commands)} to {p.why}"


def _stops_gate(facts: Facts, p: permissions.Permission, verb: str) -> bool:
    """Whether a missing right stops a backup's or restore's gate: one the command would meet only at a
    change. A right the gate's own checks look with (a read, exec into dv-engine-0, creating the
    inspection Job) leaves those checks unable to run, which stops the gate already; creating
    dv-bar-pvc is needed only while it does not exist."""
    looks = verb in ("get", "list", "watch") or p.resource == "pods/exec" or (p.resource == "jobs" and verb == "create")
    claim_there = p.resource == "persistentvolumeclaims" and verb == "create" and \
        facts.get("persistentvolumeclaims", facts.names.bar_pvc) is not None
    return not looks and not claim_there


@check(
    "dvdoctor may do what the running command needs",
    severity=WARNING,
    needs=[SECTION_ACCESS],
    tags=["rbac"],
)
def run(facts: Facts, run: Run):
    rules = facts.section(SECTION_ACCESS)["rules"]
    if not rules:
        raise Skip("SelfSubjectRulesReview returned no rules: this cluster's authorizer cannot list them")
    command = run.command if run.command in permissions.ALL else permissions.CHECK
    gaps = permissions.missing(rules, (command,))
    if gaps:
        stops = run.phase in (BACKUP, RESTORE) and any(_stops_gate(facts, p, verb) for p, verb in gaps)
        yield Problem(f"{plural(len(gaps), 'permission')} `dvdoctor {command}` needs missing in {facts.namespace}"
                      + (": it would be refused part-way" if stops else ""),
                      tuple(_line(p, verb) for p, verb in gaps), f"namespace/{facts.namespace}", blocks=stops)
    others = [(p, verb) for p, verb in permissions.missing(rules, permissions.ALL) if (p, verb) not in gaps]
    if others:
        commands = sorted({c for p, _ in others for c in p.commands if c != command})
        yield Note(f"also missing, needed only by {', '.join(commands)} (not by `dvdoctor {command}`): "
                   + "; ".join(f"{verb} {p.api}" for p, verb in others))
