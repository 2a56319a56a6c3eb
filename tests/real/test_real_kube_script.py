"""scripts/kube-real.sh `up` prints the exact command that stops it: pasted as printed (no
KUBE_REAL_RUN in the environment), it stops all four processes and removes the run's secrets."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from test_kube_real_script import running

from .conftest import CACHE, SCRIPT, _unavailable


def test_the_printed_stop_command_stops_the_run_it_started(tmp_path):
    why = _unavailable()
    if why:
        pytest.skip(why)
    run = tmp_path / "run with space"
    env = {**os.environ, "KUBE_REAL_RUN": str(run), "KUBE_REAL_CACHE": str(CACHE)}
    up = subprocess.run(["bash", str(SCRIPT), "up"], env=env, capture_output=True, text=True, timeout=300)
    pids = [int(p.read_text()) for p in (run / "pids").glob("*.pid")] if (run / "pids").exists() else []
    try:
        assert up.returncode == 0, up.stderr
        assert len(pids) == 4 and all(map(running, pids))
        [stop] = re.findall(r"stop with: (.*)", up.stderr)
        bare = {k: v for k, v in os.environ.items() if not k.startswith("KUBE_REAL_")}
        done = subprocess.run(["bash", "-c", stop], env=bare, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert [p for p in pids if running(p)] == []
        assert not (run / "tokens.csv").exists() and not (run / "pki").exists() and not (run / "kubeconfig").exists()
        again = subprocess.run(["bash", "-c", stop], env=bare, capture_output=True, text=True, timeout=60)
        assert again.returncode != 0 and f"no run in {run}" in again.stderr
    finally:
        subprocess.run(["bash", str(SCRIPT), "down"], env=env, capture_output=True)
