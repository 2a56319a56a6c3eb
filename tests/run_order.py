"""The order the suite's tests are handed to pytest-xdist's workers: the long waits first.

pytest-xdist (load and worksteal) first hands each of the W workers one contiguous slice of the
collected order (a 1/W share, then 1/(W-1) of what is left, ...); a worker that runs dry later takes
the back half of the longest queue. So what stands at the head of a slice runs in the run's first
seconds, side by side with the other slices' heads, and what stands at the back may be what the
run ends with.

Two kinds of test go to the heads:
- the real tier (tests/real): its tests mostly wait (the control plane starting, its controllers'
  resyncs); at the heads of about 3 slices in 8 they run side by side while the other workers keep
  the cores busy, and the plane stops early (tests/real/conftest.py) instead of idling beside the rest
  of the run. At the head of every slice they left 2 cores half idle for the run's first 25 s
  (session 13: 8 workers, 3 taking the real tier: 108-111 s; 6 workers, all 6 taking it: 122-124 s);
- tests marked `long_wait`: each waits seconds at little CPU, by design (a repository that never
  answers, a retry's backoff, a progress line's interval). At a slice's back one may be the last test
  left: the run then ends with the cores idle for as long as it waits (session 16: a run's last 5 s
  at 0-51% busy behind one 11 s wait). They follow the real tier in its slices: those few workers
  wait through the run's first half minute while the others keep 2 cores busy. Only waits: tests
  that are long because they work (the copies' flows take 5-11 s beside 7 others on 2 cores, 1-3 s
  alone) were tried at the heads too, and the run cost 10 CPU-s more and took longer (their work
  then met the control plane's start and each other).

An order only: under another split (`-n 3`, `-p no:xdist`) every test still runs.
"""

from __future__ import annotations

from typing import Callable, Sequence, TypeVar

T = TypeVar("T")

#: The share of workers whose slices start with the real tier (3 of 8).
REAL_SHARE = 3 / 8


def arrange(items: Sequence[T], workers: int, is_real: Callable[[T], bool], is_long: Callable[[T], bool]) -> list[T]:
    """Every item once: the real tier, then the long waits, at the heads of the first slices (of
    every slice without a real tier); the rest in its collected order."""
    workers = max(1, workers)
    real = [i for i in items if is_real(i)]
    long = [i for i in items if not is_real(i) and is_long(i)]
    rest = [i for i in items if not is_real(i) and not is_long(i)]
    takers = max(1, int(workers * REAL_SHARE)) if real else workers
    heads = [real[k::takers] + long[k::takers] if k < takers else [] for k in range(workers)]
    out: list[T] = []
    left = len(items)
    for k in range(workers):
        size = left // (workers - k)  # the slice xdist hands worker k
        fill = max(0, size - len(heads[k]))
        out += heads[k] + rest[:fill]
        del rest[:fill]
        left -= size
    return out + rest
