"""How long and how often a request is tried again when the API server is busy or a connection drops.

A real API server answers 429 when its priority-and-fairness queues are full and 500/503 while
etcd or an aggregated API hiccups; load balancers cut idle or long connections. One such answer
must not end a backup, so a request is tried again with jittered exponential backoff (jitter keeps
many clients from retrying in step), honouring the server's Retry-After, within a bound on both the
number of tries and the time spent: a server that stays down still ends the command with one line,
never a hang. The policy is a value: tests shorten it with `fast()` instead of sleeping.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field, replace
from typing import Callable


@dataclass(frozen=True)
class RetryPolicy:
    """Tries, backoff and the time bound of one request's retries."""

    #: Attempts in all, the first included.
    tries: int = 6
    #: Seconds after the first attempt past which no new attempt starts.
    budget: float = 30.0
    #: First backoff ceiling; it doubles with each attempt up to `cap`, and the delay is drawn below it.
    base: float = 0.5
    #: Longest single wait, Retry-After included (a server asking for minutes is not waited for).
    cap: float = 8.0
    #: Source of jitter; a seeded Random makes a test's waits repeatable.
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)

    def fast(self, scale: float = 0.01) -> "RetryPolicy":
        """The same tries and time bound with every wait shortened by `scale` (for tests: the
        bound stays, so a slow request on a loaded machine does not use up the tries' time)."""
        return replace(self, base=self.base * scale, cap=self.cap * scale)

    def with_base(self, base: float) -> "RetryPolicy":
        """The policy with another first backoff, its cap and budget scaled alike."""
        factor = base / self.base if self.base else 1.0
        return replace(self, base=base, cap=self.cap * factor, budget=self.budget * factor)

    def start(self) -> "Attempts":
        return Attempts(self, self.clock())


@dataclass
class Attempts:
    """The retry state of one request: how many tries so far, and when it began."""

    policy: RetryPolicy
    started: float
    made: int = 0

    def next(self) -> int:
        """Count one more attempt and return its number (1 for the first)."""
        self.made += 1
        return self.made

    def delay(self, retry_after: str | None = None) -> float | None:
        """Seconds to wait before the next attempt, or None when the tries or the time are used up.

        Retry-After (whole seconds, as the API server sends it) replaces the backoff, capped; the
        backoff is "full jitter": uniform between 0 and base * 2^(attempt-1), capped.
        """
        p = self.policy
        if self.made >= p.tries:
            return None
        ceiling = min(p.cap, p.base * 2 ** (self.made - 1))
        wait = p.rng.uniform(0, ceiling)
        if retry_after is not None and retry_after.strip().isdigit():
            wait = min(float(retry_after.strip()), p.cap)
        if self.policy.clock() + wait - self.started > p.budget:
            return None
        return wait

    def wait(self, retry_after: str | None = None) -> bool:
        """Sleep before the next attempt; False (no sleep) when no attempt is left."""
        wait = self.delay(retry_after)
        if wait is None:
            return False
        self.policy.sleep(wait)
        return True
