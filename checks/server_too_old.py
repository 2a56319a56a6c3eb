"""The API server is older than what dvdoctor supports in full (Kubernetes 1.18, OpenShift 4.5).

Symptom: `fix`, `backup`, `restore` or `prune` stop at once saying the server serves no Lease API;
`schedule --apply` refuses; on OpenShift 4.x nothing of this shows.
Cause: DV 1.5.0 also runs on OpenShift 3.11 (Kubernetes 1.11). dvdoctor takes its one-run-at-a-time
lock as a `coordination.k8s.io` Lease, served from Kubernetes 1.12 (`v1` from 1.14; dvdoctor uses
whichever the server serves), and `schedule --apply` first sends every object as a server-side dry
run, on from 1.13: an older server ignores the request to only check and would create for real.
The CronJob is created as `batch/v1` from 1.21 and `batch/v1beta1` before, as the server serves it.
On such a server `check`, `collect` and `list` work; repairs, backups and restores through
dvdoctor do not, since nothing could keep two runs apart.
Repair: manual: run DV's own `dvcli.sh` for backup and restore as the runbook does, with `dvdoctor
check` before and after; apply `dvdoctor schedule` and `dvdoctor rbac` output with `oc apply -f -`.
"""

from dvdoctor.facts.model import Facts
from dvdoctor.verdicts.registry import ERROR, Note, Problem, Skip, check

#: Oldest Kubernetes release on which every dvdoctor command works (OpenShift 4.5).
SUPPORTED = (1, 18)


@check(
    "The API server serves what every dvdoctor command needs",
    severity=ERROR,
    tags=["platform"],
)
def run(facts: Facts):
    server = facts.data.get("server")
    if not server or not server.get("version"):
        raise Skip("the API server's version was not collected")
    major, minor = (int(x) for x in server["version"].split(".")[:2])
    cannot = []
    if server.get("lease") is None:
        cannot.append("take its lock (no coordination.k8s.io Lease before Kubernetes 1.12): fix, backup, restore, "
                      "prune and schedule --apply refuse to run")
    if (major, minor) < (1, 13):
        cannot.append("dry-run what schedule --apply would create (no server-side dry run before 1.13): it refuses")
    if not cannot:
        if (major, minor) < SUPPORTED:
            # Every command works; an untested release is worth a line, not a failed verdict.
            yield Note(f"Kubernetes {major}.{minor} is older than {SUPPORTED[0]}.{SUPPORTED[1]}, "
                       "the oldest release dvdoctor is tested on")
        return
    # An error by the severity rule: backup, restore and fix through dvdoctor refuse on this server.
    evidence = [f"Kubernetes {major}.{minor}; Lease API: {server.get('lease') or 'none'}"]
    evidence += [f"dvdoctor cannot {what}" for what in cannot]
    yield Problem(f"the API server is Kubernetes {major}.{minor}: "
                  + "; ".join(f"dvdoctor cannot {what.split(' (')[0]}" for what in cannot),
                  tuple(evidence), None)
