"""How long `dvdoctor --help` takes, against the floor of any typer app, and whether it imports kubernetes.

Run on demand: `.venv/bin/python benchmarks/startup.py [--runs N] [--command "dvdoctor --help"]`.
The command defaults to the console script next to this interpreter, else `python -m dvdoctor`.
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


def median_seconds(argv: list[str], runs: int) -> float | None:
    """Median wall time of `runs` runs, or None when the command fails."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            print(f"  {shlex.join(argv)} failed (rc {done.returncode}): {done.stderr.decode()[-300:].strip()}")
            return None
    return statistics.median(times)


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
    parser.add_argument("--runs", type=int, default=15)
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
        median_seconds(baseline_argv, 1)  # warm the disk cache for both
        median_seconds(argv, 1)
        baseline = median_seconds(baseline_argv, opts.runs)
        ours = median_seconds(argv, opts.runs)
    if baseline is None or ours is None:
        return 1
    print(f"runs each:                 {opts.runs}")
    print(f"minimal typer app --help:  {baseline * 1000:.0f} ms (median)")
    print(f"{shlex.join(argv)[-40:]:<26} {ours * 1000:.0f} ms (median)")
    print(f"ratio:                     {ours / baseline:.2f}x")
    found = imports_kubernetes(argv)
    print(f"imports kubernetes:        {'unknown (command failed)' if found is None else ('YES' if found else 'no')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
