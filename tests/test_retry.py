"""The retry policy on a fake clock: how many tries, how long in all, jitter, Retry-After."""

from __future__ import annotations

import random

import pytest

from dvdoctor.cluster.retry import RetryPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def policy(clock: Clock, **kw: float) -> RetryPolicy:
    return RetryPolicy(rng=random.Random(7), sleep=clock.sleep, clock=lambda: clock.now, **kw)  # type: ignore[arg-type]


def retries(p: RetryPolicy, retry_after: str | None = None) -> int:
    """Attempts made against a server that always fails."""
    attempts = p.start()
    while True:
        attempts.next()
        if not attempts.wait(retry_after):
            return attempts.made


def test_six_tries_with_jittered_doubling_backoff_under_the_cap() -> None:
    clock = Clock()
    assert retries(policy(clock)) == 6
    assert len(clock.slept) == 5
    for n, wait in enumerate(clock.slept):
        assert 0 <= wait <= min(8.0, 0.5 * 2**n)
    assert len(set(clock.slept)) == 5  # jittered, not in lock step
    assert clock.now <= 30


def test_the_same_seed_waits_the_same() -> None:
    a, b = Clock(), Clock()
    retries(policy(a))
    retries(policy(b))
    assert a.slept == b.slept


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    clock = Clock()
    attempts = policy(clock).start()
    attempts.next()
    assert attempts.wait("3")
    attempts.next()
    assert attempts.wait("120")
    assert clock.slept == [3.0, 8.0]


def test_the_time_bound_stops_retries_before_the_tries_run_out() -> None:
    clock = Clock()
    made = retries(policy(clock, budget=20.0), retry_after="8")
    assert made == 3  # 8 s + 8 s; a third wait would pass 20 s
    assert clock.now == 16.0


def test_fast_shortens_every_wait_alike() -> None:
    clock = Clock()
    p = policy(clock).fast(0.01)
    assert (p.tries, p.budget, p.base, p.cap) == (6, 30.0, 0.005, 0.08)
    assert retries(p, retry_after="1") == 6  # each wait capped at 0.08 s
    assert clock.now == pytest.approx(0.4)
