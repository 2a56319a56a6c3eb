"""How long a lab backup and a lab restore take through the CLI, end to end (gate, job, postflight).

Run on demand: `.venv/bin/python benchmarks/flows.py [--runs N]`. Each run creates a fresh lab in a
temp folder, then times `dvdoctor --lab DIR backup --yes` and `dvdoctor --lab DIR restore --yes` as
separate processes (what a user runs, interpreter start-up included), and removes the lab. The lab's
data is a few MiB, so this measures dvdoctor's own overhead around DV's job, not tar's speed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dvdoctor.lab import create_lab, destroy_lab


def dvdoctor_command() -> list[str]:
    """The console script next to this interpreter, else `python -m dvdoctor`."""
    script = Path(sys.executable).with_name("dvdoctor")
    return [str(script)] if script.exists() else [sys.executable, "-m", "dvdoctor"]


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return took


def one_run() -> tuple[float, float]:
    base = Path(tempfile.mkdtemp(prefix="dvdoctor-bench-"))
    base.chmod(0o755)  # the lab's pods run as the BAR uid when this runs as root
    lab = base / "lab"
    env = {**os.environ, "DVDOCTOR_AUDIT": str(base / "audit.jsonl")}
    env.pop("DVDOCTOR_LAB", None)
    try:
        create_lab(lab)
        cli = [*dvdoctor_command(), "--lab", str(lab)]
        backup = timed([*cli, "backup", "--yes", "--log-dir", str(base)], env)
        restore = timed([*cli, "restore", "--yes", "--log-dir", str(base)], env)
        return backup, restore
    finally:
        if (lab / "lab.json").exists():
            destroy_lab(lab)
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh labs to time (default 3)")
    args = parser.parse_args()
    results = [one_run() for _ in range(args.runs)]
    for label, values in (("backup", [r[0] for r in results]), ("restore", [r[1] for r in results])):
        print(f"lab {label:7} through the CLI: median {statistics.median(values):.2f} s, "
              f"min {min(values):.2f} s, max {max(values):.2f} s over {len(values)} runs")


if __name__ == "__main__":
    main()
