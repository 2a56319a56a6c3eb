"""Interruption at every step of a lab backup and restore, and two runs at once.

dvdoctor runs in a child process (as a user runs it) whose flow sends itself a real signal at one
exact step: after the side deployments are scaled to 0, after DV's job is created, while the job
is watched, and during postflight. SIGTERM and SIGINT must leave DV's deployments put back and
the lock released by the process itself; SIGKILL leaves the lock, the replica annotations, a job
running on, which the next `check` must name and `fix --all` must repair. After each: no backup
that existed is lost or changed, and DV ends up recoverable (the checks pass, a new backup works).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from dvdoctor.cluster import k8s
from dvdoctor.cluster.lock import LEASE_NAME

#: Code the child runs: patch the flow so that reaching STEP sends SIG to itself, then run the CLI.
CHILD = r"""
import os, signal, sys, time
from dvdoctor.repair import plan
from dvdoctor.flows import backup, jobs, restore
from dvdoctor.cli import run

step, sig, argv = sys.argv[1], getattr(signal, sys.argv[2]), sys.argv[3:]

# CHILD_TTY=1: stdout and stderr on a terminal that goes away at the step, as when its window is
# closed: the pty's master is closed (every later write fails with EIO), then SIGHUP arrives.
tty = os.environ.get("CHILD_TTY") == "1"
if tty:
    import pty, select, threading
    master, slave = pty.openpty()
    os.dup2(slave, 1)
    os.dup2(slave, 2)
    os.close(slave)
    closing = threading.Event()
    def drain():  # the terminal's window, reading until it closes
        while not closing.is_set():
            if select.select([master], [], [], 0.05)[0]:
                os.read(master, 65536)
    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()

def fire():
    if tty and not closing.is_set():  # the terminal goes once; a second signal finds it gone already
        closing.set()
        drainer.join()
        os.close(master)
    os.kill(os.getpid(), sig)
    time.sleep(5)  # SIGKILL never returns; a handled signal raises in here

real_execute = plan.execute
def execute(p, runner):
    done = real_execute(p, runner)
    kinds = {type(a).__name__ + ":" + str(getattr(a, "replicas", getattr(a, "kind", ""))) for a in p.actions}
    if step == "scaled-down" and "Scale:0" in kinds or step == "job-created" and "Create:jobs" in kinds:
        fire()
    return done
plan.execute = execute
backup.execute = restore.execute = execute

real_watch = jobs.watch_job
def watch_job(cluster, name, timeout, show, interval=2.0):
    if step == "job-running":
        time.sleep(0.5)  # the job's pod is up and writing
        fire()
    return real_watch(cluster, name, timeout, show, interval)
jobs.watch_job = watch_job

real_post, real_ready = backup.postflight, backup.dv_ready
def postflight(facts, started):
    if step == "postflight":
        fire()
    return real_post(facts, started)
def dv_ready(timeout, collect_again, console):
    if step == "postflight":
        fire()
    return real_ready(timeout, collect_again, console)
backup.postflight = postflight
backup.dv_ready = restore.dv_ready = dv_ready

sys.exit(run(argv))
"""

STEPS = ("scaled-down", "job-created", "job-running", "postflight")


def child(flow, step: str, sig: str, *argv: str, tty: bool = False) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200", CHILD_TTY="1" if tty else "0")
    return subprocess.run([sys.executable, "-c", CHILD, step, sig, "--lab", str(flow.lab), *argv,
                           "--log-dir", str(flow.logs), "--yes"],
                          capture_output=True, text=True, env=env, timeout=120)


def backup_files(flow) -> dict[str, str]:
    """sha256 of every file of every backup folder: a lost or changed backup shows here."""
    return {str(p.relative_to(flow.bar)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(flow.bar.rglob("*")) if p.is_file() and not p.is_symlink()}


def wait_jobs_ended(flow, job: str) -> None:
    done = flow.cluster().wait("jobs", job, lambda j: j is None or k8s.job_state(j) != "active", 30)
    assert done is None or k8s.job_state(done) != "active"


def assert_recoverable(flow, before: dict[str, str], replicas: dict[str, int]) -> None:
    """No backup lost or changed; `fix --all` leaves every check passing; DV backs up again."""
    after = backup_files(flow)
    assert {k: v for k, v in after.items() if k in before} == before
    code, out, err = flow.dv("fix", "--all", "--yes")
    assert code == 0, out + err
    code, out, err = flow.dv("check")
    assert code == 0 and "✗" not in out, out
    assert flow.replicas() == replicas
    assert flow.cluster().get("leases", LEASE_NAME) is None
    code, out, err = flow.backup("--yes")
    assert code == 0, out + err


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_backup_signalled_puts_dv_back_itself(flow, step: str, sig: str) -> None:
    replicas, before = flow.replicas(), backup_files(flow)
    proc = child(flow, step, sig, "backup")
    assert proc.returncode == 130, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert flow.replicas() == replicas  # put back by the process itself
    assert flow.cluster().get("leases", LEASE_NAME) is None  # released
    wait_jobs_ended(flow, "dv-backup-job")
    assert_recoverable(flow, before, replicas)


@pytest.mark.parametrize("command, step", [("backup", s) for s in STEPS] + [("restore", "job-running")])
def test_the_terminal_closing_is_handled_like_sigterm(flow, command: str, step: str) -> None:
    """SIGHUP after the terminal is gone: the cleanup's own output must not stop it (writes fail with EIO)."""
    replicas, before = flow.replicas(), backup_files(flow)
    extra = ("--accept-unverified-origin",) if command == "restore" else ()
    proc = child(flow, step, "SIGHUP", command, *extra, tty=True)
    assert proc.returncode == 130, proc.stdout + proc.stderr  # the output went to the closed terminal
    assert flow.replicas() == replicas  # put back by the process itself
    assert flow.cluster().get("leases", LEASE_NAME) is None  # released
    wait_jobs_ended(flow, f"dv-{command}-job")
    assert_recoverable(flow, before, replicas)


@pytest.mark.parametrize("step", STEPS)
def test_backup_killed_is_found_by_check_and_repaired(flow, step: str) -> None:
    replicas, before = flow.replicas(), backup_files(flow)
    proc = child(flow, step, "SIGKILL", "backup")
    assert proc.returncode == -signal.SIGKILL
    wait_jobs_ended(flow, "dv-backup-job")
    code, out, _ = flow.dv("check")
    assert "stale-dvdoctor-lock" in out and "a run that is gone" in out
    if step == "postflight":  # DV's job had ended: the side deployments were back before the read-back
        assert flow.replicas() == replicas and "scaled down by dvdoctor" not in out
    else:
        assert "side-deployments-left-down" in out and "scaled down by dvdoctor" in out
    assert_recoverable(flow, before, replicas)


@pytest.mark.parametrize("step", ("job-created", "job-running", "postflight"))
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGKILL"])
def test_restore_interrupted_leaves_dv_recoverable(flow, step: str, sig: str) -> None:
    replicas, before = flow.replicas(), backup_files(flow)
    proc = child(flow, step, sig, "restore", "--accept-unverified-origin")
    assert proc.returncode == (130 if sig == "SIGTERM" else -signal.SIGKILL), proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    wait_jobs_ended(flow, "dv-restore-job")
    if sig == "SIGTERM":
        assert flow.cluster().get("leases", LEASE_NAME) is None
    assert_recoverable(flow, before, replicas)


def test_a_second_run_refuses_while_the_first_holds_the_lock(slow_flow) -> None:
    flow = slow_flow
    first = subprocess.Popen([sys.executable, "-m", "dvdoctor", "--lab", str(flow.lab), "backup", "--yes",
                              "--log-dir", str(flow.logs)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while flow.cluster().get("leases", LEASE_NAME) is None:
            assert first.poll() is None and time.monotonic() < deadline, "the first backup never took the lock"
            time.sleep(0.05)
        for argv in (("backup", "--yes"), ("restore", "--yes"), ("prune", "--keep", "1", "--yes"),
                     ("fix", "--issue", "side-deployments-running", "--yes")):
            code, out, err = flow.dv(*argv)
            lines = [line for line in err.splitlines() if line.strip()]
            assert code == 2 and len(lines) == 1, (argv, out, err)
            assert f"@{os.uname().nodename}:{first.pid} running `dvdoctor backup` since " in lines[0]
            assert "--break-lock" in lines[0]
        out, _ = first.communicate(timeout=60)
        assert first.returncode == 0, out
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert flow.cluster().get("leases", LEASE_NAME) is None
    assert len(flow.timestamps()) == 2


def test_a_backup_that_runs_out_of_space_never_becomes_current(flow) -> None:
    from dvdoctor.lab.bar import du, set_bar_capacity

    (previous,) = flow.timestamps()
    before, link, replicas = backup_files(flow), os.readlink(flow.bar / "dv_backup.tar.gz"), flow.replicas()
    set_bar_capacity(flow.cluster().store, du(flow.bar) + du(flow.bar / previous) // 2)  # room for half a backup
    code, out, err = flow.backup("--yes", "--ignore-check", "bar-low-space")
    assert code == 1, out + err
    assert "No space left on device" in out
    partial = [t for t in flow.timestamps() if t != previous]  # the job's retries may each leave one
    assert partial and f"the failed backup {partial[0]} left " in out
    assert "dvdoctor fix --issue incomplete-backups" in out
    assert f"the restore point did not move: dv_backup.tar.gz -> {link}" in out
    assert os.readlink(flow.bar / "dv_backup.tar.gz") == link
    assert {k: v for k, v in backup_files(flow).items() if k.startswith(previous)} == before
    assert flow.replicas() == replicas and ".bar" not in flow.markers
    # what is left is damaged, the previous backup good; prune removes the partial ones only
    code, out, _ = flow.dv("list", "-o", "json")
    states = {r["timestamp"]: r["state"] for r in json.loads(out)["backups"]}
    assert states == {previous: "good", **{t: "damaged" for t in partial}}
    code, out, err = flow.dv("prune", "--keep", "1", "--yes")
    assert code == 0, out + err
    assert flow.timestamps() == [previous] and os.readlink(flow.bar / "dv_backup.tar.gz") == link
    assert {k: v for k, v in backup_files(flow).items() if k.startswith(previous)} == before


def test_restore_refuses_a_backup_that_does_not_read_back(flow) -> None:
    (current,) = flow.timestamps()
    tarball = flow.bar / current / "dv_backup.tar.gz"
    tarball.write_bytes(tarball.read_bytes()[:-4096])  # cut short, as by a job killed while writing it
    data, replicas = flow.data_digest(), flow.replicas()
    code, out, err = flow.restore("--yes")
    assert code == 2
    assert err.startswith(f"dvdoctor: error: backup {current} cannot be restored: it is damaged: reading it: ")
    assert "unexpected end of file" in err and len(err.strip().splitlines()) == 1
    assert err.strip().endswith("nothing was changed. Choose a good one with --from (see `dvdoctor list`)")
    assert flow.data_digest() == data and flow.replicas() == replicas
    assert flow.object_names("jobs") == ["dv-init-volume"]
