"""dvdoctor's lock (Lease `dvdoctor-lock`) is left by a run that is gone, so changing commands refuse.

Every backup, restore, prune and fix refuses to start while the lock is held.

Symptom: `dvdoctor backup` (or restore, prune, fix) stops with "namespace ... is locked by
USER@HOST:PID running `...`" although no dvdoctor runs.
Cause: a dvdoctor run takes the Lease and renews it while it works; killed at once (kill -9, a
closed cloud shell, a node lost under a CronJob pod) it can neither release nor renew it. The lock
expires on its own `leaseDurationSeconds` after the last renewal, and a holder on this host whose
process is gone counts as expired at once.
Repair: delete the Lease. Only an expired lock is reported, so no live run loses it; one still
held is shown by `kubectl get lease dvdoctor-lock -o yaml` and can be taken with `--break-lock`.
Then look at what the killed run left: `dvdoctor check` reports deployments left at 0, a running
or failed BAR job and a `.bar` marker, each with its own fix.
"""

from dvdoctor.facts.model import Facts
from dvdoctor.cluster.lock import LEASE_NAME, Holder
from dvdoctor.verdicts.registry import WARNING, NotApplicable, Problem, Skip, check
from dvdoctor.core.units import ISO_Z


@check(
    "No dvdoctor lock left by a run that is gone",
    severity=WARNING,
    tags=["dvdoctor", "lock"],
)
def run(facts: Facts):
    server = facts.data.get("server") or {}
    if server.get("version") and server.get("lease") is None:
        # Known, not unknown: a server with no Lease API (Kubernetes 1.11) can hold no dvdoctor lock.
        raise NotApplicable(f"the API server (Kubernetes {server['version']}) serves no Lease API, so there is no lock")
    if not facts.has_kind("leases"):
        raise Skip("Leases could not be listed, so dvdoctor's lock is unknown")
    lease = facts.get("leases", LEASE_NAME)
    if lease is None:
        return
    holder = Holder.of(lease)
    gone = facts.data["source"].get("lock_holder_gone") is True
    if not (gone or holder.expired(facts.now)):
        return
    end = holder.expires()
    why = (f"its process is gone from {facts.data['source'].get('host', 'this host')}" if gone else
           f"not renewed since {holder.renewed:{ISO_Z}}, expired {end:{ISO_Z}}"
           if end and holder.renewed else "it never recorded a renewal time")
    yield Problem(
        f"lease {LEASE_NAME} is held by {holder.identity} (`{holder.command}`), a run that is gone: {why}",
        (f"lease/{LEASE_NAME}: holderIdentity {holder.identity}, leaseDurationSeconds {holder.seconds}, "
         f"renewTime {(lease.get('spec') or {}).get('renewTime')}",),
        f"lease/{LEASE_NAME}",
        data={"holder": holder.identity},
    )
