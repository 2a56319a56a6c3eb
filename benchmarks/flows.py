"""How long a lab backup and a lab restore take through the CLI, end to end (gate, job, postflight).

Run on demand: `.venv/bin/python benchmarks/flows.py [--runs N]`. Each run creates a fresh lab in a
temp folder, then times `dvdoctor --lab DIR backup --yes` and `dvdoctor --lab DIR restore --yes` as
separate processes (what a user runs, interpreter start-up included), and removes the lab. The lab's
data is a few MiB, so this measures dvdoctor's own overhead around DV's job, not tar's speed.

It also prints what DV's users pay for a backup: how long dv-api, dv-caching and dv-unified-console
are down over how long DV's backup job itself runs (goal: at most 1.1). While the backup runs, the
deployments' object files are polled (their mtime says when each scale landed); the job's pod folder
says when its process started (launch.json) and ended (exitcode). Reading the new backup back
happens after the deployments are up again, so it does not count against DV.
"""

from __future__ import annotations

import argparse
import json
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


SIDE = ("dv-api", "dv-caching", "dv-unified-console")


def side_down_while(argv: list[str], env: dict[str, str], lab: Path) -> tuple[float, float]:
    """Run the backup; (seconds it took, seconds the side deployments were down)."""
    files = [lab / "objects" / "deployments" / f"{name}.json" for name in SIDE]
    down_at: float | None = None
    up_at: float | None = None
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    while proc.poll() is None:
        seen = []
        for f in files:
            try:
                st = f.stat()
                seen.append((json.loads(f.read_text())["spec"]["replicas"], st.st_mtime_ns / 1e9))
            except (OSError, ValueError, KeyError):
                continue  # caught mid-rename: next poll
        if down_at is None and seen and any(r == 0 for r, _ in seen):
            down_at = min(t for r, t in seen if r == 0)
        if down_at is not None and up_at is None and len(seen) == len(files) and all(r > 0 for r, _ in seen):
            up_at = max(t for _, t in seen)
        time.sleep(0.005)
    took = time.perf_counter() - started
    out = proc.stdout.read() if proc.stdout else ""
    if proc.returncode != 0 or down_at is None or up_at is None:
        sys.exit(f"{' '.join(argv)} exited {proc.returncode} (down {down_at}, up {up_at}):\n{out}")
    return took, up_at - down_at


def job_seconds(lab: Path, job: str) -> float:
    """How long DV's job's (last) pod ran: from its launch to its exit code, as the lab recorded them."""
    pods = sorted((p for p in (lab / "pods").iterdir() if p.name.startswith(f"{job}-") and (p / "exitcode").exists()),
                  key=lambda p: (p / "exitcode").stat().st_mtime_ns)
    last = pods[-1]
    return ((last / "exitcode").stat().st_mtime_ns - (last / "launch.json").stat().st_mtime_ns) / 1e9


def one_run(bar_hold: float = 0) -> tuple[float, float, float, float]:
    """(backup s, restore s, side-down / job ratio, side-down minus job s) on a fresh lab."""
    base = Path(tempfile.mkdtemp(prefix="dvdoctor-bench-"))
    base.chmod(0o755)  # the lab's pods run as the BAR uid when this runs as root
    lab = base / "lab"
    env = {**os.environ, "DVDOCTOR_AUDIT": str(base / "audit.jsonl")}
    env.pop("DVDOCTOR_LAB", None)
    try:
        create_lab(lab, bar_hold=bar_hold)
        cli = [*dvdoctor_command(), "--lab", str(lab)]
        backup, down = side_down_while([*cli, "backup", "--yes", "--log-dir", str(base)], env, lab)
        job = job_seconds(lab, "dv-backup-job")
        restore = timed([*cli, "restore", "--yes", "--log-dir", str(base)], env)
        return backup, restore, down / job, down - job
    finally:
        if (lab / "lab.json").exists():
            destroy_lab(lab)
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh labs to time (default 3)")
    parser.add_argument("--bar-hold", type=float, default=5.0,
                        help="also time labs whose backup job holds this long (s), nearer a real job's minutes (default 5)")
    args = parser.parse_args()
    results = [one_run() for _ in range(args.runs)]
    for label, values in (("backup", [r[0] for r in results]), ("restore", [r[1] for r in results])):
        print(f"lab {label:7} through the CLI: median {statistics.median(values):.2f} s, "
              f"min {min(values):.2f} s, max {max(values):.2f} s over {len(values)} runs")
    held = [one_run(args.bar_hold) for _ in range(args.runs)] if args.bar_hold > 0 else []
    for label, rs in (("the lab's job", results), (f"a job of {args.bar_hold:g} s more", held)):
        if rs:
            print(f"side deployments down / DV backup job's own duration, {label}: median "
                  f"{statistics.median(r[2] for r in rs):.2f}, max {max(r[2] for r in rs):.2f} (goal: at most 1.1); "
                  f"down longer than the job by a median {statistics.median(r[3] for r in rs):.2f} s")


if __name__ == "__main__":
    main()
