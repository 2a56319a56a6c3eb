"""A pytest plugin for benchmarks/suite_cpu.py: the CPU each test costs, its children and the lab's pods
included, one JSON line a test (`[nodeid, CPU seconds]`).

Each worker moves itself into a cgroup of its own under the run's (DVDOCTOR_CPU_PER_TEST names it), and a
test's CPU is what that cgroup counted while it ran. A process a test starts stays in the cgroup whatever
becomes of its parent (a lab pod re-parented to init), so its CPU is counted; whatever else runs in the
worker's cgroup meanwhile is counted too: the real tier's control plane, started by the worker of the
first real-tier test, is charged to the tests that worker runs while it lives.

Loaded only by suite_cpu.py (`-p cpu_per_test`, with a folder holding only this module on PYTHONPATH:
benchmarks/ itself would shadow packages); no test imports it.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import pytest

#: The run's cgroup (cgroup v1 cpuacct), where each worker makes its own; unset: the plugin does nothing.
ENV = "DVDOCTOR_CPU_PER_TEST"
#: The folder the lines go to, a file a worker (a cgroup's folder takes no file of ours).
OUT_ENV = "DVDOCTOR_CPU_PER_TEST_OUT"


@functools.cache
def _worker() -> tuple[Path, Path] | None:
    """This worker's cgroup (made, and the worker moved into it) and its output file; None: not asked."""
    run, out = os.environ.get(ENV), os.environ.get(OUT_ENV)
    if not run or not out:
        return None
    name = os.environ.get("PYTEST_XDIST_WORKER", "main")
    group = Path(run) / name
    group.mkdir(exist_ok=True)
    (group / "cgroup.procs").write_text(str(os.getpid()))
    return group, Path(out) / f"{name}.jsonl"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    worker = _worker()
    if worker is None:
        yield
        return
    group, lines = worker
    before = int((group / "cpuacct.usage").read_text())
    yield
    spent = (int((group / "cpuacct.usage").read_text()) - before) / 1e9
    with open(lines, "a", encoding="utf-8") as out:
        out.write(json.dumps([item.nodeid, spent]) + "\n")
