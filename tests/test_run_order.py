"""The suite's own schedule (tests/run_order.py): every test once, the real tier and the long tests
at the heads of the slices pytest-xdist hands its workers."""

from __future__ import annotations

from run_order import arrange


def _slices(order: list[str], workers: int) -> list[list[str]]:
    """The contiguous slices xdist's first hand-out gives each worker (a 1/W share of what is left)."""
    out, at = [], 0
    for k in range(workers):
        size = (len(order) - at) // (workers - k)
        out.append(order[at:at + size])
        at += size
    return out


def test_every_test_runs_once_and_the_real_tier_then_the_long_waits_lead_their_slices():
    items = [f"t{i:03d}" for i in range(200)]
    real = set(items[150:160])
    long = {items[10], items[70], items[71], items[199], items[5]}
    order = arrange(items, 8, real.__contains__, long.__contains__)
    assert sorted(order) == items
    slices = _slices(order, 8)
    # the real tier heads the first 3 slices, the long waits follow it there (in their collected order)
    assert [s[:n] for s, n in zip(slices, (6, 5, 4))] == [
        ["t150", "t153", "t156", "t159", "t005", "t071"], ["t151", "t154", "t157", "t010", "t199"],
        ["t152", "t155", "t158", "t070"]]
    assert not {t for s in slices[3:] for t in s} & (real | long)
    # the rest keeps its collected order
    rest = [t for t in order if t not in real | long]
    assert rest == [t for t in items if t not in real | long]


def test_without_workers_or_a_real_tier_the_long_waits_simply_come_first():
    items = list("abcdefg")
    assert arrange(items, 1, lambda t: False, lambda t: t in "dg") == list("dgabcef")
    assert arrange(items, 0, lambda t: t == "e", lambda t: t == "b") == list("ebacdfg")
    # no real tier: the long waits are dealt over every slice's head
    order = arrange(items, 3, lambda t: False, lambda t: t in "abcdef")
    assert sorted(order) == items and [s[0] for s in _slices(order, 3)] == ["a", "b", "c"]
