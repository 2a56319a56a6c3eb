"""An interrupted backup leaves DV recoverable: killed outright, the next `check` finds what is left
and `fix` puts it back; SIGTERM, SIGHUP or Ctrl-C, dvdoctor aborts the backup itself: DV's job is
stopped and waited for, its partial folder and marker removed, and only then do the side
deployments come back. A second Ctrl-C stops the cleanup and says how to finish it.

dvdoctor runs as its own process here (as the user runs it) against a lab whose backup job holds a few
seconds half-way (`create_lab(bar_hold=...)`), so the signal lands mid-watch.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dvdoctor.cluster import k8s
from dvdoctor.core.names import REPLICAS_ANNOTATION

from test_flow_faults import backup_files

SCALED_BACK = {"dv-api": 2, "dv-caching": 1, "dv-unified-console": 1}


def start_backup(flow) -> subprocess.Popen:
    """`dvdoctor backup --yes` in a child process; returns once its job is running (the .bar marker is there)."""
    proc = subprocess.Popen([sys.executable, "-m", "dvdoctor", "--lab", str(flow.lab), "backup", "--yes",
                             "--log-dir", str(flow.logs)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ))
    deadline = time.monotonic() + 120  # a bound for a hang; the run ending first fails at once
    while ".bar" not in flow.markers:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the backup job never started: {proc.communicate()[0]}")
        time.sleep(0.05)
    return proc


def wait_job_ended(flow, timeout: float = 20) -> None:
    job = flow.cluster().wait("jobs", "dv-backup-job", lambda j: j is None or k8s.job_state(j) != "active", timeout)
    assert job is None or k8s.job_state(job) != "active", "the backup job did not end"


def test_a_killed_backup_is_found_by_check_and_undone_by_its_fix(slow_flow):
    flow = slow_flow
    flow.cluster().patch("deployments", "dv-api", {"spec": {"replicas": 2}})
    (previous,) = flow.timestamps()
    proc = start_backup(flow)

    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)

    assert set(flow.replicas().values()) == {0}
    recorded = {n: flow.cluster().get("deployments", n)["metadata"]["annotations"][REPLICAS_ANNOTATION]
                for n in SCALED_BACK}
    assert recorded == {n: str(c) for n, c in SCALED_BACK.items()}
    wait_job_ended(flow)  # dvdoctor is gone; DV's job runs on and ends by itself
    assert previous in flow.timestamps() and (flow.bar / previous / "dv_backup.tar.gz").is_file()

    code, out, _ = flow.dv("check")
    assert code == 1  # an error: DV's API and console are down
    assert "deployment dv-api was scaled down by dvdoctor from 2 and never scaled back" in out
    assert "fix: dvdoctor fix --issue side-deployments-left-down" in out

    code, out, _ = flow.dv("fix", "--issue", "side-deployments-left-down", "--yes")
    assert code == 0, out
    assert "side-deployments-left-down: ✓ verified" in out
    assert flow.replicas() == SCALED_BACK


def scale_ups_after_stop(flow) -> list[str]:
    """The audited steps from the job's stop on: the side deployments may come back only after it."""
    actions = [e["action"] for e in flow.audit_entries()]
    stop = next(i for i, a in enumerate(actions) if a.startswith("delete job dv-backup-job with its pods and wait"))
    ups = [i for i, a in enumerate(actions) if a.startswith("scale deployment/") and not a.endswith(" to 0 replicas")]
    assert ups and all(i > stop for i in ups), actions  # never scaled up before DV's job had ended
    return actions[stop:]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=["SIGTERM", "Ctrl-C", "SIGHUP"])
def test_a_signalled_backup_is_aborted_cleanly(slow_flow, sig):
    """Ctrl-C, SIGTERM or SIGHUP while DV's job tars: the job is deleted with its pods and waited for,
    its partial folder and the .bar marker removed, the restore point left alone, then DV comes back."""
    flow = slow_flow
    flow.cluster().patch("deployments", "dv-api", {"spec": {"replicas": 2}})
    (previous,) = flow.timestamps()
    link, before = os.readlink(flow.bar / "dv_backup.tar.gz"), backup_files(flow)
    proc = start_backup(flow)
    deadline = time.monotonic() + 120  # a bound for a hang; the run ending first fails at once
    while len(flow.timestamps()) < 2:  # the job's partial folder is there
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)

    started = time.monotonic()
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=30)

    assert proc.returncode == 130, out
    assert time.monotonic() - started < 20
    assert "interrupted: stopping DV's backup job dv-backup-job" in out
    assert flow.cluster().get("jobs", "dv-backup-job") is None
    assert not [p for p in flow.object_names("pods") if p.startswith("dv-backup-job")]
    assert flow.timestamps() == [previous] and backup_files(flow) == before  # the partial folder is gone
    assert os.readlink(flow.bar / "dv_backup.tar.gz") == link  # the restore point did not move
    assert ".bar" not in flow.markers
    assert flow.replicas() == SCALED_BACK
    for name in SCALED_BACK:
        assert REPLICAS_ANNOTATION not in flow.cluster().get("deployments", name)["metadata"].get("annotations", {})
    assert "✓ DV's pods are ready" in out.split("interrupted: stopping", 1)[1]  # DV is back, and said so
    steps = scale_ups_after_stop(flow)
    assert any(a.startswith("delete the partial backup folder ") for a in steps)
    code, out, _ = flow.dv("check")
    assert code == 0 and "✗" not in out, out


#: The child interrupts itself (SIGINT) while DV's job is half-way, and again as the cleanup starts
#: to stop the job: the second interrupt must leave the side deployments down and say what is left.
TWICE = Path(__file__).with_name("child_interrupted_twice.py")


def test_a_second_ctrl_c_says_what_is_left_and_fix_all_finishes_it(held_flow):
    flow = held_flow
    (previous,) = flow.timestamps()
    link, before = os.readlink(flow.bar / "dv_backup.tar.gz"), backup_files(flow)
    proc = subprocess.run([sys.executable, str(TWICE), "--lab", str(flow.lab), "backup", "--yes",
                           "--log-dir", str(flow.logs)], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, COLUMNS="200"))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 130, out
    assert "Traceback" not in out
    assert "interrupted again: the cleanup stops here." in out
    assert "left: job dv-backup-job is still running; its partial backup folder and /mnt/marker_files/.bar may be " \
           "there; dv-caching, dv-api, dv-unified-console stay at 0" in out
    assert "finish with: dvdoctor fix --all" in out
    assert set(flow.replicas().values()) == {0}  # never scaled up under a running tar
    assert flow.cluster().get("leases", "dvdoctor-lock") is None

    code, out, _ = flow.dv("check")
    assert code == 1 and "✗ bar-job-unattended" in out, out
    code, out, err = flow.dv("fix", "--all", "--yes")
    assert code == 0, out + err
    assert flow.replicas() == {"dv-api": 1, "dv-caching": 1, "dv-unified-console": 1}
    assert ".bar" not in flow.markers and flow.cluster().get("jobs", "dv-backup-job") is None
    assert os.readlink(flow.bar / "dv_backup.tar.gz") == link
    assert {k: v for k, v in backup_files(flow).items() if k.startswith(previous)} == before
    code, out, _ = flow.dv("check")
    assert code == 0 and "✗" not in out, out


def test_a_failed_job_whose_pods_outlive_its_stop_keeps_the_side_deployments_down(flow, monkeypatch):
    """DV's job fails (the runbook's Errno 13) and its pods do not go away within the stop's timeout
    (a stuck node, a finalizer): the side deployments are not scaled up beside them."""
    from dvdoctor.repair import plan
    from dvdoctor.lab import break_lab

    break_lab(flow.lab, "bar-permissions")

    def pods_outlive(self, run):
        raise plan.ActionFailed(f"job {self.name} is deleted but its pods are still there after 180 s")

    monkeypatch.setattr(plan.StopJob, "apply", pods_outlive)
    code, out, err = flow.backup("--yes", "--ignore-check", "bar-permissions")
    assert code == 1, out + err
    assert "[Errno 13] Permission denied" in out
    assert "pods of job dv-backup-job are still there (dv-backup-job-" in out
    assert "the side deployments stay at 0 so that nothing writes beside them; finish with: dvdoctor fix --all" in out
    assert set(flow.replicas().values()) == {0}
    assert not [e for e in flow.audit_entries() if e["action"].startswith("scale deployment/")
                and not e["action"].endswith(" to 0 replicas")]


def _pid_namespaces() -> str | None:
    """Why a new PID namespace cannot be made here (None when it can): the container's PID 1 is only
    PID 1 in one."""
    if os.geteuid() != 0:
        return "needs root for a PID namespace (unshare -p); CI runs the suite as root"
    if shutil.which("unshare") is None:
        return "needs util-linux unshare"
    return None


@pytest.mark.skipif(_pid_namespaces() is not None, reason=str(_pid_namespaces()))
def test_the_scheduled_job_aborts_cleanly_on_the_kubelets_sigterm(slow_flow):
    """Break-it review: the CronJob's shell is the container's PID 1, which ignores a SIGTERM it has no
    handler for, so a deleted pod, a drained node or the job's deadline never reached dvdoctor.
    Here the script runs as PID 1 of its own PID namespace, as in the pod, against the lab; the
    kubelet's SIGTERM goes to it alone, and dvdoctor aborts the backup as it does for Ctrl-C."""
    from dvdoctor.flows import schedule

    flow = slow_flow
    (previous,) = flow.timestamps()
    link, before = os.readlink(flow.bar / "dv_backup.tar.gz"), backup_files(flow)
    container = (schedule.manifests("cpd30", "0 2 * * *", "reg.example/dvdoctor:0.2", 2)[-1]
                 ["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0])
    home = flow.base / "home"
    home.mkdir()
    env = {**{e["name"]: e["value"] for e in container["env"]}, "HOME": str(home), "XDG_STATE_HOME": str(home),
           "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "DVDOCTOR_LAB": str(flow.lab),
           "DVDOCTOR_AUDIT": os.environ["DVDOCTOR_AUDIT"], "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
           "COLUMNS": "200"}
    proc = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", *container["command"]], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120  # a bound for a hang; the run ending first fails at once
    while len(flow.timestamps()) < 2:  # DV's job is half-way: its partial folder is there
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    [pid1] = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    assert Path(f"/proc/{pid1}/status").read_text().count("NSpid:\t") == 1  # it is PID 1 in there
    assert "\t1\n" in next(ln for ln in Path(f"/proc/{pid1}/status").read_text().splitlines(True)
                           if ln.startswith("NSpid:"))
    os.kill(int(pid1), signal.SIGTERM)  # as the kubelet does: to the container's first process only
    out, _ = proc.communicate(timeout=60)

    assert proc.returncode == 130, out
    assert "interrupted: stopping DV's backup job dv-backup-job" in out
    assert flow.timestamps() == [previous] and backup_files(flow) == before
    assert os.readlink(flow.bar / "dv_backup.tar.gz") == link and ".bar" not in flow.markers
    assert flow.replicas() == {"dv-api": 1, "dv-caching": 1, "dv-unified-console": 1}
    code, out, _ = flow.dv("check")
    assert code == 0 and "✗" not in out, out
