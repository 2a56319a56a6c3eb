"""What copies cost: repository size over one backup, copy throughput, and a rehydrated copy's bytes.

Run on demand: `.venv/bin/python benchmarks/copies.py [--data-size 128Mi] [--days 30] [--models ...]`.
For each churn model, a fresh lab with `--data-size` of database-shaped data lives through DAYS
daily cycles of `lab churn --percent 2` + DV's backup job + `dvdoctor copy` (the on-volume tier
pruned to the newest backup, as the schedule with copies keeps it). Printed side by side:
- the repository's stored bytes over the size of one combined `dv_backup.tar.gz`, against DV's own
  way of keeping DAYS backups on the volume (components + combined: twice each backup);
- `copy` throughput: the time of `gzip -dc` of the same combined tarball over the copy's time, for the
  first copy (everything new to the repository) and for the daily copies (the median); and the
  same over "decompress once", gzip -dc of the combined tarball AND of the component tarballs in
  it. DV's combined tarball holds gzip'd tarballs, so `gzip -dc` of it alone leaves the data
  compressed: a copy must inflate both layers, which is the floor the goal names (read and
  decompress once). Both are printed; each restic call also opens the repository (its key
  derivation, about 0.2-0.5 s), three per copy.
- the oldest copy rehydrated: its uncompressed component streams byte-identical to the original's.

Models (dvdoctor/lab/dbdata.py): contiguous (runs and log appends only), mixed (a tenth of the
rewritten data as single scattered 8 KiB pages, the lab's default day), uniform (the worst case:
every changed page at a random place, where chunk-level deduplication cannot help much).
Needs restic on PATH. Timings are this machine's; ratios are what to compare.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dvdoctor.core.units import parse_quantity
from dvdoctor.cli import run
from dvdoctor.lab import churn_lab, create_lab, destroy_lab
from dvdoctor.lab.bar import bar_job, run_job
from dvdoctor.lab import LabCluster
from dvdoctor.lab.contents import init_volume_image

MODELS = {"contiguous": {"scattered": 0.0}, "mixed": {"scattered": 0.1}, "uniform": {"uniform": True}}
GOALS = {"contiguous": 2.0, "mixed": 8.0}


def quiet(*argv: str) -> int:
    """One dvdoctor command in this process, its output dropped (only figures are printed)."""
    with open(os.devnull, "w") as null:
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = null
        try:
            return run(list(argv))
        finally:
            sys.stdout, sys.stderr = saved


def dv_backup(lab: Path) -> None:
    """DV's own backup job, as dvcli.sh starts it (the model's cost is the data, not dvdoctor's gate)."""
    cluster = LabCluster(lab, admin=True)
    job = bar_job(cluster, "dv-backup-job.yaml", init_volume_image(cluster.namespace))
    run_job(cluster, job, timeout=900)
    cluster.delete("jobs", job["metadata"]["name"])


def component_digests(folder: Path) -> dict[str, str]:
    out = {}
    for p in sorted(folder.glob("dv_backup_dv_*.tar.gz")):
        h = hashlib.sha256()
        with gzip.open(p) as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        out[p.name] = h.hexdigest()
    return out


def timed(argv: list[str], **kw) -> float:
    """Seconds `argv` takes, from a clean start: what earlier steps wrote (the lab's data, DV's backup,
    the last copy) is flushed to disk first, so the kernel's write-back of it is not timed here.
    (Measured: 1.5 GB left dirty by the step before made the same first copy 40% slower, restic's
    fsync of each pack file waiting behind it.)"""
    os.sync()
    started = time.perf_counter()
    subprocess.run(argv, check=True, **kw)
    return time.perf_counter() - started


def references(tarball: Path) -> tuple[float, float]:
    """Seconds for `gzip -dc` of the combined tarball, and for decompressing once, both layers."""
    outer = timed(["gzip", "-dc", str(tarball)], stdout=subprocess.DEVNULL)
    both = timed(["sh", "-c", 'gzip -dc "$1" | tar -xO -f - --wildcards "*.tar.gz" | gzip -dc >/dev/null', "sh",
                  str(tarball)])
    return outer, both


def copy_program(lab: Path, bar: Path, repo: Path, pw: Path) -> tuple[dict, list[str]]:
    """The copy program's environment and command for this lab, its repository created."""
    env = {**os.environ, "DV_BAR": str(bar), "RESTIC_REPOSITORY": str(repo), "RESTIC_PASSWORD_FILE": str(pw),
           "DVDOCTOR_INSTANCE": LabCluster(lab).get("statefulsets", "dv-engine")["metadata"]["uid"],
           "DVDOCTOR_NAMESPACE": "cpd30"}
    job = [sys.executable, "-m", "dvdoctor.copies.job"]
    subprocess.run([*job, "init"], env=env, check=True, capture_output=True)
    return env, job


def stored(repo: Path, pw: Path) -> int:
    out = subprocess.run(["restic", "-r", str(repo), "--password-file", str(pw), "stats", "--json", "--no-lock",
                          "--mode", "raw-data"], capture_output=True, text=True, check=True).stdout
    return int(json.loads(out)["total_size"])


def model_run(name: str, size: int, days: int, base: Path) -> dict:
    lab, repo, pw = base / name, base / f"{name}-repo", base / "pw"
    pw.write_text("benchmark\n")
    config = base / f"{name}.yaml"
    config.write_text(f"copies:\n  repository: {repo}\n  password_file: {pw}\n")
    os.environ["DVDOCTOR_CONFIG"] = str(config)
    create_lab(lab, data_size=size)
    bar = lab / "volumes" / "dv-bar-pvc" / "1.5.0"
    first = sorted(p for p in bar.iterdir() if p.is_dir() and not p.name.startswith("."))[-1]
    first_digests = component_digests(first)
    one = (first / "dv_backup.tar.gz").stat().st_size
    gzip_s, once_s = references(first / "dv_backup.tar.gz")
    # the first copy: the copy program itself, timed alone (what gzip -dc is compared with)
    env, job = copy_program(lab, bar, repo, pw)
    copy_s = timed([*job, "copy", first.name], env=env, capture_output=True)
    on_volume = 0
    sizes = [one]
    daily: list[tuple[float, float, float]] = []  # (gzip -dc, decompress once, the copy job) per day
    for day in range(1, days):
        churn_lab(lab, 2, seed=day, **MODELS[name])
        dv_backup(lab)
        newest = sorted(p for p in bar.iterdir() if p.is_dir() and not p.name.startswith("."))[-1]
        sizes.append((newest / "dv_backup.tar.gz").stat().st_size)
        if day % 2:  # the copy program alone, timed against this day's tarball
            outer, both = references(newest / "dv_backup.tar.gz")
            daily.append((outer, both, timed([*job, "copy", newest.name], env=env, capture_output=True)))
        elif quiet("--lab", str(lab), "copy", "--yes") != 0:  # the whole command, as a site runs it
            sys.exit(f"{name}: the copy of day {day} failed")
        for old in sorted(p for p in bar.iterdir() if p.is_dir() and not p.name.startswith("."))[:-1]:
            shutil.rmtree(old)
    on_volume = sum(s * 2 for s in sizes)  # DV keeps components and the combined tarball of each
    repo_bytes = stored(repo, pw)
    mean_one = sum(sizes) / len(sizes)
    # the oldest copy, brought back into a scratch folder by the same program restore uses
    scratch = base / f"{name}-rehydrate"
    scratch.mkdir()
    env["DV_BAR"] = str(scratch)
    snaps = json.loads(subprocess.run(["restic", "snapshots", "--json", "--no-lock"], env=env, capture_output=True,
                                      text=True, check=True).stdout)
    oldest = min(snaps, key=lambda s: s["time"])
    ts = next(t.split("=", 1)[1] for t in oldest["tags"] if t.startswith("backup="))
    done = subprocess.run([sys.executable, "-m", "dvdoctor.copies.job", "rehydrate", oldest["short_id"], ts], env=env,
                          capture_output=True, text=True)
    identical = done.returncode == 0 and component_digests(scratch / ts) == first_digests
    destroy_lab(lab)
    mid = sorted(daily, key=lambda d: d[2])[len(daily) // 2] if daily else (0.0, 0.0, 1.0)
    return {"model": name, "days": days, "one_backup": mean_one, "repo": repo_bytes, "ratio": repo_bytes / mean_one,
            "dv_ratio": on_volume / mean_one, "first": (gzip_s / copy_s, once_s / copy_s, copy_s),
            "daily": (mid[0] / mid[2], mid[1] / mid[2], mid[2]), "identical": identical}


def speed_run(size: int, days: int, base: Path) -> dict:
    """Copy throughput alone on a larger lab, where each restic call's fixed cost (opening the
    repository: key derivation, index, lock) weighs less: the first copy, then `days` daily ones."""
    lab, repo, pw = base / "speed", base / "speed-repo", base / "pw"
    pw.write_text("benchmark\n")
    create_lab(lab, data_size=size)
    bar = lab / "volumes" / "dv-bar-pvc" / "1.5.0"
    env, job = copy_program(lab, bar, repo, pw)
    runs: list[tuple[float, float, float]] = []
    for day in range(days + 1):
        if day:
            churn_lab(lab, 2, seed=day, **MODELS["mixed"])
            dv_backup(lab)
        newest = sorted(p for p in bar.iterdir() if p.is_dir() and not p.name.startswith("."))[-1]
        outer, both = references(newest / "dv_backup.tar.gz")
        runs.append((outer, both, timed([*job, "copy", newest.name], env=env, capture_output=True)))
        for old in sorted(p for p in bar.iterdir() if p.is_dir() and not p.name.startswith("."))[:-1]:
            shutil.rmtree(old)
    one = (newest / "dv_backup.tar.gz").stat().st_size
    destroy_lab(lab)
    first = runs[0]
    mid = sorted(runs[1:], key=lambda d: d[2])[len(runs[1:]) // 2]
    return {"one_backup": one, "first": (first[0] / first[2], first[1] / first[2], first[2]),
            "daily": (mid[0] / mid[2], mid[1] / mid[2], mid[2])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-size", default="128Mi", help="lab data size (default 128Mi)")
    parser.add_argument("--days", type=int, default=30, help="daily cycles (default 30)")
    parser.add_argument("--models", default="contiguous,mixed,uniform", help="comma-separated churn models (none: only the throughput run)")
    parser.add_argument("--speed-size", default="1Gi", help="lab data size for the throughput run (0: none)")
    parser.add_argument("--speed-days", type=int, default=3, help="daily copies timed in the throughput run")
    args = parser.parse_args()
    if shutil.which("restic") is None:
        sys.exit("restic is not installed (apt-get install restic)")
    size = parse_quantity(args.data_size)
    base = Path(tempfile.mkdtemp(prefix="dvdoctor-copies-bench-"))
    base.chmod(0o755)
    os.environ["DVDOCTOR_AUDIT"] = str(base / "audit.jsonl")
    os.environ.pop("DVDOCTOR_LAB", None)
    results = []
    load_before = os.getloadavg()[0]
    try:
        for name in [m for m in args.models.split(",") if m and m != "none"]:
            print(f"{name}: {args.days} days of 2% churn on {args.data_size} ...", file=sys.stderr, flush=True)
            results.append(model_run(name, size, args.days, base))
        speed = None
        if parse_quantity(args.speed_size):
            print(f"throughput: {args.speed_days} daily copies on {args.speed_size} ...", file=sys.stderr, flush=True)
            speed = speed_run(parse_quantity(args.speed_size), args.speed_days, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if results:
        print(f"data {args.data_size}, {args.days} daily backups, churn 2% a day; sizes over one combined tarball")
        print(f"{'model':<11} {'one backup':>11} {'repository':>11} {'copies':>7} {'DV on volume':>13} {'goal':>10} "
              f"{'oldest back':>12}")
        for r in results:
            goal = GOALS.get(r["model"])
            verdict = "" if goal is None else ("met" if r["ratio"] <= goal else "MISSED")
            print(f"{r['model']:<11} {r['one_backup'] / 2**20:>7.1f} MiB {r['repo'] / 2**20:>7.1f} MiB {r['ratio']:>7.2f} "
                  f"{r['dv_ratio']:>13.1f} {('≤' + format(goal, 'g') + ' ' + verdict) if goal else 'none':>10} "
                  f"{'identical' if r['identical'] else 'DIFFERENT':>12}")
        print("copies: the repository over one combined tarball; DV on volume: what DV's own way keeps for the same "
              "backups")
    print()
    print(f"{'lab':<16} {'copy':<6} {'seconds':>8} {'gzip -dc / copy':>16} {'decompress once / copy':>23} "
          f"{'goal ≥ 0.5':>11}")
    rows = [(f"{r['model']} {args.data_size}", r, False) for r in results]
    if speed:
        rows.append((f"mixed {args.speed_size}", speed, True))
    for label, r, judged in rows:
        for which in ("first", "daily"):
            outer, once, seconds = r[which]
            verdict = ("met" if once >= 0.5 else "MISSED") if judged else "not judged"
            print(f"{label:<16} {which:<6} {seconds:>8.2f} {outer:>16.2f} {once:>23.2f} {verdict:>11}")
    print(f"load average (1 min) on this machine: {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end "
          f"({os.cpu_count()} cores): timings are this machine's, ratios are what to compare")
    print("first: the first copy (all of it new to the repository); daily: the median of the daily copies timed; "
          "each timed step starts after a sync (what the step before wrote is on disk, not written back meanwhile); "
          "the goal is judged on decompress once (both gzip layers), the floor of any copy, and on the throughput "
          f"run ({args.speed_size}): on the {args.data_size} labs a copy's fixed cost (three repository opens, each "
          "about half a second of restic's key derivation) is most of its time, so their ratios say little of "
          "throughput")


if __name__ == "__main__":
    main()
