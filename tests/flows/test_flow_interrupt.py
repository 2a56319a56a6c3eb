"""An interrupted backup leaves DV recoverable: killed outright, the next `check` finds the deployments
left down and its fix puts back the recorded counts; SIGTERM or Ctrl-C, dvdoctor scales them back itself.

dvdoctor runs as its own process here (as the user runs it) against a lab whose backup job holds a few
seconds after writing its marker (`create_lab(bar_hold=...)`), so the signal lands mid-watch.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from dvdoctor import k8s
from dvdoctor.names import REPLICAS_ANNOTATION

SCALED_BACK = {"dv-api": 2, "dv-caching": 1, "dv-unified-console": 1}


def start_backup(flow) -> subprocess.Popen:
    """`dvdoctor backup --yes` in a child process; returns once its job is running (the .bar marker is there)."""
    proc = subprocess.Popen([sys.executable, "-m", "dvdoctor", "--lab", str(flow.lab), "backup", "--yes",
                             "--log-dir", str(flow.logs)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ))
    deadline = time.monotonic() + 20
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
    assert code == 0  # a warning: the deployments may be a site's choice
    assert "deployment dv-api was scaled down by dvdoctor from 2 and never scaled back" in out
    assert "fix: dvdoctor fix --issue side-deployments-left-down" in out

    code, out, _ = flow.dv("fix", "--issue", "side-deployments-left-down", "--yes")
    assert code == 0, out
    assert "side-deployments-left-down: ✓ verified" in out
    assert flow.replicas() == SCALED_BACK


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_signalled_backup_scales_the_deployments_back_itself(slow_flow, sig):
    flow = slow_flow
    flow.cluster().patch("deployments", "dv-api", {"spec": {"replicas": 2}})
    proc = start_backup(flow)

    started = time.monotonic()
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=15)

    assert proc.returncode == 130, out
    assert time.monotonic() - started < 10
    assert "interrupted: putting DV's deployments back" in out
    assert flow.replicas() == SCALED_BACK
    for name in SCALED_BACK:
        assert REPLICAS_ANNOTATION not in flow.cluster().get("deployments", name)["metadata"].get("annotations", {})
