"""What a flaky API costs a `check`: wall time, requests and verdict with the real retry policy.

Run on demand: `.venv/bin/python benchmarks/flaky.py [SEEDS]`. It serves tests/fakeapi.py with the
small DV world of tests/test_flaky_api.py (the in-pod scripts run for real with bash), runs `check`
once on a calm API and once per seed with about 15% of requests answered 429/500/503 (half of the
failed writes carried out first) and watches cut, with dvdoctor's own backoff (not the tests'
shortened one), and prints per run: exit code, whether the verdict matches the calm one, requests
sent, faults injected, seconds.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# benchmarks/requests.py would shadow the `requests` package the kubernetes client imports: drop this folder.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT / "tests"))

import builders as b  # noqa: E402
from fakeapi import FakeApi  # noqa: E402
from test_flaky_api import start_world  # noqa: E402

from dvdoctor.cli import run  # noqa: E402

RATE = 0.15


def check(api: FakeApi) -> tuple[int, dict[str, str], int, float]:
    out = io.StringIO()
    before = len(api.requests)
    started = time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = run(["check", "-o", "json"])
    seconds = time.monotonic() - started
    text = out.getvalue()
    statuses = {r["id"]: r["status"] for r in json.loads(text)["results"]} if text else {}
    return code, statuses, len(api.requests) - before, seconds


def main(seeds: list[int]) -> None:
    world = start_world()
    api = world.api
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(KUBECONFIG=str(api.kubeconfig(Path(tmp) / "config", namespace=b.NS)),
                          DVDOCTOR_AUDIT=str(Path(tmp) / "audit.jsonl"))
        os.environ.pop("DVDOCTOR_LAB", None)
        try:
            calm = check(api)
            print(f"{'run':<10} {'exit':>4} {'verdict':>8} {'requests':>8} {'faults':>6} {'seconds':>8}")
            print(f"{'calm':<10} {calm[0]:>4} {'-':>8} {calm[2]:>8} {0:>6} {calm[3]:>8.2f}")
            for seed in seeds:
                chaos = api.flaky(RATE, seed)
                code, statuses, requests, seconds = check(api)
                same = "same" if (code, statuses) == calm[:2] else "DIFFERS"
                print(f"{'seed ' + str(seed):<10} {code:>4} {same:>8} {requests:>8} {chaos.injected + chaos.cuts:>6} {seconds:>8.2f}")
                api.chaos = None
        finally:
            api.stop()
            world.close()


if __name__ == "__main__":
    main([int(s) for s in sys.argv[1:]] or [1, 2, 3, 4, 5])
