"""Interruption at every step of a lab backup and restore, and two runs at once.

dvdoctor runs in a child process (as a user runs it) whose flow sends itself a real signal at one
exact step (the flows' own checkpoints): after the side deployments are scaled to 0, after DV's job is created, while the job
is watched, and during postflight. SIGTERM and SIGINT must leave DV's deployments put back and
the lock released by the process itself; SIGKILL leaves the lock, the replica annotations, a job
running on, which the next `check` must name and `fix --all` must repair. After each: no backup
that existed is lost or changed, and DV ends up recoverable (the checks pass, a new backup works).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dvdoctor.cluster import k8s
from dvdoctor.cluster.lock import LEASE_NAME
from dvdoctor.flows import checkpoints

#: The child: dvdoctor sending itself a signal when its flow reaches one step (dvdoctor.flows.checkpoints).
CHILD = Path(__file__).with_name("child_signalled_at_step.py")

STEPS = ("scaled-down", "job-created", "job-running", "postflight")


def child(flow, step: str, sig: str, *argv: str, tty: bool = False) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200", CHILD_TTY="1" if tty else "0")
    return subprocess.run([sys.executable, str(CHILD), step, sig, "--lab", str(flow.lab), *argv,
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


def test_a_second_run_refuses_while_the_first_holds_the_lock(held_flow) -> None:
    """The first run's DV job holds half-way until the test has tried the others: the lock is held all
    along, however slow the machine (no race with a job that ends on its own). The side deployment
    dv-api is put back up meanwhile, so that the repair tried has something to do (the first run
    scaled them down), and down again before the first run goes on. That repair is refused by DV's
    running job before it would meet the lock: no repair but those acting on the job runs under it."""
    flow = held_flow
    first = subprocess.Popen([sys.executable, "-m", "dvdoctor", "--lab", str(flow.lab), "backup", "--yes",
                              "--log-dir", str(flow.logs)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while flow.cluster().get("leases", LEASE_NAME) is None or not flow.holding("dv-backup-job"):
            assert first.poll() is None and time.monotonic() < deadline, "the first backup never got half-way"
            time.sleep(0.05)
        flow.cluster().patch("deployments", "dv-api", {"spec": {"replicas": 1}})
        for argv in (("backup", "--yes"), ("restore", "--yes"), ("prune", "--keep", "1", "--yes"),
                     ("fix", "--issue", "side-deployments-running", "--yes"), ("fix", "--all", "--yes")):
            code, out, err = flow.dv(*argv)
            lines = [line for line in err.splitlines() if line.strip()]
            assert code == 2 and len(lines) == 1, (argv, out, err)
            if argv[0] == "fix":  # the refusal names the command as it was run
                assert f"so `dvdoctor fix {' '.join(argv[1:-1])}` changed nothing" in lines[0]
                assert f"(started by `dvdoctor backup` of " in lines[0] and f"@{os.uname().nodename}:{first.pid};" in lines[0]
                continue
            assert f"@{os.uname().nodename}:{first.pid} running `dvdoctor backup` since " in lines[0]
            assert "--break-lock" in lines[0]
        assert flow.cluster().get("deployments", "dv-api")["spec"]["replicas"] == 1  # no repair acted
        flow.cluster().patch("deployments", "dv-api", {"spec": {"replicas": 0}})
        flow.end_hold("dv-backup-job")
        out, _ = first.communicate(timeout=60)
        assert first.returncode == 0, out
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert flow.cluster().get("leases", LEASE_NAME) is None
    assert len(flow.timestamps()) == 2


@pytest.mark.mib_backups  # room for half a backup, in the claim's whole MiB
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


def test_a_backup_passes_every_step_in_order_and_a_restore_the_last_three(flow) -> None:
    """The child above interrupts a run at the flows' own checkpoints: were a step no longer reached
    (moved, renamed, dropped), its tests would interrupt nothing; here that fails."""
    seen: list[str] = []
    with contextlib.ExitStack() as stack:
        for step in checkpoints.STEPS:
            stack.enter_context(checkpoints.at(step, lambda step=step: seen.append(step)))
        code, out, err = flow.backup("--yes")
        assert code == 0, out + err
        assert seen == list(STEPS)
        seen.clear()
        code, out, err = flow.restore("--yes", "--accept-unverified-origin")
        assert code == 0, out + err
        assert seen == ["job-created", "job-running", "postflight"]
    with pytest.raises(ValueError, match="unknown flow step 'job-startd'"):
        checkpoints.on("job-startd", lambda: None)
