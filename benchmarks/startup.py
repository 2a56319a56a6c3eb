"""How long `dvdoctor --help` takes, against the floor of any typer app, and whether it imports kubernetes.

Run on demand: `.venv/bin/python benchmarks/startup.py [--runs N] [--command "dvdoctor --help"]`.
The command defaults to the console script next to this interpreter, else `python -m dvdoctor`.
It prints the ratio of the two, round by round, beside the goal (GOAL, from issue 13).

Two minimal apps, each two commands: typer as it comes (its help drawn by rich, which it loads when
rich is installed, as it is beside dvdoctor), and typer with rich's help turned off
(`rich_markup_mode=None`), the faster floor, since dvdoctor's help is plain text. The goal is judged
against the faster one (break-it, session 21: against typer as it comes, a `--help` that loaded rich
for nothing still looked fast).
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

app = typer.Typer({options})


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


def rounds_of(commands: list[list[str]], runs: int) -> list[list[float]] | None:
    """`runs` rounds of one run of each command, the order turned each round; each round's times in
    the commands' order, or None when one fails.

    Why rounds: on a shared machine the load changes from second to second; commands timed in
    blocks measure the load as much as the commands. Timed side by side in each round, they meet
    the same load, and the ratio of each round cancels most of it.
    """
    rounds = []
    for i in range(runs):
        turn = i % len(commands)
        order = list(range(len(commands)))[turn:] + list(range(len(commands)))[:turn]
        times: dict[int, float] = {}
        for k in order:
            took = seconds(commands[k])
            if took is None:
                return None
            times[k] = took
        rounds.append([times[k] for k in range(len(commands))])
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
        apps = []
        for name, options in (("as_it_comes", ""), ("plain_help", "rich_markup_mode=None")):
            app = Path(tmp) / f"minimal_{name}.py"
            app.write_text(MINIMAL_APP.replace("{options}", options), encoding="utf-8")
            apps.append([sys.executable, str(app), "--help"])
        commands = [*apps, argv]
        rounds_of(commands, len(commands))  # warm the disk cache for each
        rounds = rounds_of(commands, opts.runs)
    if rounds is None:
        return 1
    ms = [spread([r[k] * 1000 for r in rounds]) for k in range(3)]
    ratios = [spread([r[2] / r[k] for r in rounds]) for k in range(2)]
    print(f"command timed:             {shlex.join(argv)}")
    print(f"rounds:                    {opts.runs} (one run of each, the order turned each round)")
    print("                           median [25th-75th percentile]")
    print(f"minimal typer app --help:  {ms[0][0]:4.0f} ms [{ms[0][1]:.0f}-{ms[0][2]:.0f}]   (typer as it comes: rich help)")
    print(f"  the same, plain help:    {ms[1][0]:4.0f} ms [{ms[1][1]:.0f}-{ms[1][2]:.0f}]   (rich_markup_mode=None)")
    print(f"dvdoctor --help:           {ms[2][0]:4.0f} ms [{ms[2][1]:.0f}-{ms[2][2]:.0f}]")
    print(f"ratio to typer as it comes: {ratios[0][0]:.2f}x [{ratios[0][1]:.2f}-{ratios[0][2]:.2f}]")
    print(f"ratio to plain help:       {ratios[1][0]:.2f}x [{ratios[1][1]:.2f}-{ratios[1][2]:.2f}]"
          f"   goal: <= {GOAL:.2f}x, {'met' if ratios[1][0] <= GOAL else 'NOT met'}")
    found = imports_kubernetes(argv)
    print(f"imports kubernetes:        {'unknown (command failed)' if found is None else ('YES' if found else 'no')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
