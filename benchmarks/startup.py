"""How long `dvdoctor --help` takes, against the floor of any typer app, and whether it imports kubernetes.

Run on demand: `.venv/bin/python benchmarks/startup.py [--runs N] [--command "dvdoctor --help"]`.
The command defaults to the console script next to this interpreter, else `python -m dvdoctor`.
It prints the ratio of the two, round by round, beside the goal (GOAL, from issue 13).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: dvdoctor --help may take at most this many times the minimal app's --help (issue 13).
GOAL = 1.15

MINIMAL_APP = '''\
import typer

app = typer.Typer()


@app.command()
def hello(name: str) -> None:
    """Say hello."""
    print(name)


@app.command()
def bye() -> None:
    """Say goodbye."""


app()
'''


def default_command() -> list[str] | None:
    script = Path(sys.executable).with_name("dvdoctor")
    if script.exists():
        return [str(script), "--help"]
    if (Path(__file__).resolve().parent.parent / "dvdoctor" / "__main__.py").exists():
        return [sys.executable, "-m", "dvdoctor", "--help"]
    return None


def seconds(argv: list[str]) -> float | None:
    """Wall time of one run, or None when the command fails (its error is printed)."""
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    took = time.perf_counter() - start
    if done.returncode != 0:
        print(f"  {shlex.join(argv)} failed (rc {done.returncode}): {done.stderr.decode()[-300:].strip()}")
        return None
    return took


def paired_runs(baseline: list[str], ours: list[str], runs: int) -> list[tuple[float, float]] | None:
    """`runs` rounds of one run of each, alternating which goes first, or None when one fails.

    Why paired: on a shared machine the load changes from second to second; two commands timed in
    two blocks measure the load as much as the commands. Timed side by side in each round, both
    meet the same load, and the ratio of each round cancels most of it.
    """
    rounds = []
    for i in range(runs):
        order = (baseline, ours) if i % 2 == 0 else (ours, baseline)
        first, second = seconds(order[0]), seconds(order[1])
        if first is None or second is None:
            return None
        rounds.append((first, second) if i % 2 == 0 else (second, first))
    return rounds


def spread(values: list[float]) -> tuple[float, float, float]:
    """Median and the interquartile range (25th, 75th percentile) of `values`."""
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return statistics.median(values), q1, q3


def imports_kubernetes(argv: list[str]) -> bool | None:
    """Does the command import any kubernetes module? Read from `python -X importtime`."""
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    if done.returncode != 0:
        return None
    modules = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.decode().splitlines() if line.startswith("import time:")]
    return any(m == "kubernetes" or m.startswith("kubernetes.") for m in modules)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=31, help="rounds; each runs both commands once (default 31)")
    parser.add_argument("--command", help="the command to time, e.g. 'dvdoctor --help'")
    opts = parser.parse_args()
    argv = shlex.split(opts.command) if opts.command else default_command()
    if not argv or shutil.which(argv[0]) is None and not Path(argv[0]).exists():
        print("dvdoctor's CLI is not installed (no console script, no dvdoctor/__main__.py): nothing to time")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp) / "minimal_app.py"
        app.write_text(MINIMAL_APP, encoding="utf-8")
        baseline_argv = [sys.executable, str(app), "--help"]
        paired_runs(baseline_argv, argv, 1)  # warm the disk cache for both
        rounds = paired_runs(baseline_argv, argv, opts.runs)
    if rounds is None:
        return 1
    base_ms = spread([b * 1000 for b, _ in rounds])
    ours_ms = spread([o * 1000 for _, o in rounds])
    ratio = spread([o / b for b, o in rounds])
    print(f"command timed:             {shlex.join(argv)}")
    print(f"rounds:                    {opts.runs} (one run of each, alternating which goes first)")
    print("                           median [25th-75th percentile]")
    print(f"minimal typer app --help:  {base_ms[0]:4.0f} ms [{base_ms[1]:.0f}-{base_ms[2]:.0f}]")
    print(f"dvdoctor --help:           {ours_ms[0]:4.0f} ms [{ours_ms[1]:.0f}-{ours_ms[2]:.0f}]")
    print(f"ratio, round by round:     {ratio[0]:.2f}x [{ratio[1]:.2f}-{ratio[2]:.2f}]"
          f"   goal: <= {GOAL:.2f}x, {'met' if ratio[0] <= GOAL else 'NOT met'}")
    found = imports_kubernetes(argv)
    print(f"imports kubernetes:        {'unknown (command failed)' if found is None else ('YES' if found else 'no')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
