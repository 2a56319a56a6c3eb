"""One run at a time per namespace: a `coordination.k8s.io/v1` Lease that backup, restore, prune and
every fix that changes something hold while they run.

Two runs that scale DV's deployments and start BAR jobs at once trample each other (a restore
overwriting the data a backup is reading, one run scaling back what the other scaled down), and
both may run from different machines or a CronJob, so the lock lives in the cluster, not on disk.
The Lease says who holds it (user@host:pid), what command, since when; the holder renews it from a
background thread while a long job runs, so a holder that died stops renewing and the lock expires
after `leaseDurationSeconds`. On the holder's own host a dead pid is seen at once. The lock is
released (deleted) at the end in every case the process survives; what a SIGKILL leaves is found
by the check `stale-dvdoctor-lock`.
"""

from __future__ import annotations

import getpass
import os
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Callable

from .port import Cluster
from ..core.errors import Conflict, DvdoctorError, NotFound

LEASE_NAME = "dvdoctor-lock"
COMMAND_ANNOTATION = "dvdoctor.io/command"
#: Seconds a lock lives without renewal: long enough for a slow API server, short enough to wait out.
LEASE_SECONDS = 60
#: What `--break-lock` risks, said in its help and when it is used.
BREAK_RISK = ("if that run is still going, both runs scale DV's deployments and start BAR jobs at the same "
              "time: a restore can overwrite data a backup is reading, and one run can scale DV back up "
              "under the other's job")


class LockHeld(DvdoctorError):
    """Another run holds the namespace's lock; the message names it, its command and since when."""


def identity() -> str:
    """user@host:pid of this process: enough for a person to find the run that holds the lock."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}:{os.getpid()}"


def micro_time(when: datetime) -> str:
    """Kubernetes' MicroTime format for Lease times."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True)
class Holder:
    """What a Lease says about the run holding it."""

    identity: str
    command: str
    acquired: datetime | None
    renewed: datetime | None
    seconds: int

    @classmethod
    def of(cls, lease: dict) -> "Holder":
        spec = lease.get("spec") or {}
        ann = (lease.get("metadata") or {}).get("annotations") or {}
        return cls(
            identity=str(spec.get("holderIdentity") or "unknown"),
            command=ann.get(COMMAND_ANNOTATION, "unknown command"),
            acquired=_parse(spec.get("acquireTime")),
            renewed=_parse(spec.get("renewTime")) or _parse(spec.get("acquireTime")),
            seconds=int(spec.get("leaseDurationSeconds") or LEASE_SECONDS),
        )

    def expires(self) -> datetime | None:
        return self.renewed + timedelta(seconds=self.seconds) if self.renewed else None

    def expired(self, now: datetime) -> bool:
        """A holder that stopped renewing (or never said when it did) has lost the lock."""
        end = self.expires()
        return end is None or now >= end

    def gone_here(self, host: str) -> bool:
        """The holder ran on this host and its process no longer exists (killed, crashed)."""
        who_host, _, pid = self.identity.rpartition(":")
        if who_host.rpartition("@")[2] != host or not pid.isdigit():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def describe(self, now: datetime) -> str:
        since = micro_time(self.acquired)[:19] + "Z" if self.acquired else "an unknown time"
        end = self.expires()
        left = f", expires in {max(0, int((end - now).total_seconds()))} s unless renewed" if end else ""
        return f"{self.identity} running `{self.command}` since {since}{left}"


class Lock:
    """The namespace's Lease, taken for one command; use as a context manager.

    Re-entrant within a process: a fix run by a backup's `--fix` gate shares the backup's lock.
    """

    def __init__(self, cluster: Cluster, command: str, *, seconds: int = LEASE_SECONDS,
                 warn: Callable[[str], None] = lambda _msg: None) -> None:
        self.cluster = cluster
        self.command = command[:200]
        self.seconds = seconds
        self.warn = warn
        self.me = identity()
        self._owner = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Set when the renewal thread found the lock taken by someone else (--break-lock elsewhere).
        self.lost: str | None = None

    # ---- taking and giving back -----------------------------------------------------------
    def acquire(self, break_lock: bool = False, guard: Callable[[], None] | None = None) -> "Lock":
        """Take the lock, or raise LockHeld naming who has it; an expired or dead holder's lock is taken over.

        `guard` is asked before a lock another run holds is taken (over or broken) and may refuse by
        raising: a dead holder's lock is never taken while the DV job it started still runs.
        """
        now = datetime.now(timezone.utc)
        try:
            self.cluster.create("leases", self._body(now))
        except Conflict:
            lease = self.cluster.get("leases", LEASE_NAME)
            if lease is None:  # released between our create and get: try once more
                return self.acquire(break_lock, guard)
            holder = Holder.of(lease)
            if holder.identity == self.me:
                return self  # held by this process already: nested use, released by the outer one
            gone = holder.expired(now) or holder.gone_here(socket.gethostname())
            if guard is not None and (gone or break_lock):
                guard()
            if gone:
                self.warn(f"taking over the lock {LEASE_NAME} left by {holder.describe(now)}: its holder is gone")
            elif break_lock:
                self.warn(f"--break-lock: taking the lock from {holder.describe(now)}; {BREAK_RISK}")
            else:
                raise LockHeld(
                    f"namespace {self.cluster.namespace} is locked by {holder.describe(now)}; wait for it to end, "
                    f"or if that run is gone, rerun with --break-lock") from None
            self._take_over(lease, now)
        self._owner = True
        self._thread = threading.Thread(target=self._renew_loop, name="dvdoctor-lock-renew", daemon=True)
        self._thread.start()
        return self

    def _take_over(self, lease: dict, now: datetime) -> None:
        """Replace the holder, only if the Lease is still the one we judged (resourceVersion)."""
        body = self._body(now)
        body["metadata"]["resourceVersion"] = lease["metadata"].get("resourceVersion")
        try:
            self.cluster.patch("leases", LEASE_NAME, {"metadata": body["metadata"], "spec": body["spec"]})
        except (Conflict, NotFound):
            raise LockHeld(f"namespace {self.cluster.namespace}: another run took the lock {LEASE_NAME} "
                           "at the same moment; try again") from None

    def release(self) -> None:
        """Stop renewing and delete the Lease if it is still ours."""
        if not self._owner:
            return
        self._owner = False
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            lease = self.cluster.get("leases", LEASE_NAME)
            if lease is not None and Holder.of(lease).identity == self.me:
                self.cluster.delete("leases", LEASE_NAME)
        except DvdoctorError as exc:
            self.warn(f"could not release the lock {LEASE_NAME} ({exc}); it expires in {self.seconds} s")

    def __enter__(self) -> "Lock":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    # ---- renewing ---------------------------------------------------------------------------
    def renew(self) -> bool:
        """Move renewTime forward if we still hold the lock; False (and `lost` set) when we don't."""
        lease = self.cluster.get("leases", LEASE_NAME)
        holder = Holder.of(lease) if lease else None
        if holder is None or holder.identity != self.me:
            self.lost = holder.identity if holder else "nobody (the lock was deleted)"
            return False
        self.cluster.patch("leases", LEASE_NAME, {
            "metadata": {"resourceVersion": lease["metadata"].get("resourceVersion")},
            "spec": {"renewTime": micro_time(datetime.now(timezone.utc))},
        })
        return True

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.seconds / 4):
            try:
                if not self.renew():
                    self.warn(f"the lock {LEASE_NAME} is now held by {self.lost}; this run goes on without it")
                    return
            except DvdoctorError:
                continue  # a busy or unreachable API server: try again before the lease runs out

    def _body(self, now: datetime) -> dict:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": LEASE_NAME, "annotations": {COMMAND_ANNOTATION: self.command},
                         "labels": {"app.kubernetes.io/managed-by": "dvdoctor"}},
            "spec": {"holderIdentity": self.me, "leaseDurationSeconds": self.seconds,
                     "acquireTime": micro_time(now), "renewTime": micro_time(now)},
        }
