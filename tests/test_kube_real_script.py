"""scripts/kube-real.sh `down`: it says where it looked and fails when there is no run there, and it
stops the run's processes and removes the run's secrets. (`up`'s printed stop command needs the
built control plane: tests/real/test_real_kube_script.py.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "kube-real.sh"
NAMES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


@pytest.fixture
def root(tmp_path) -> Path:
    """A copy of the script in its own tree, so its default run folder is never a real one."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(SCRIPT, tmp_path / "scripts" / "kube-real.sh")
    return tmp_path


def down(root: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KUBE_REAL_")}
    return subprocess.run(["bash", str(root / "scripts" / "kube-real.sh"), "down"], env={**clean, **env},
                          capture_output=True, text=True, timeout=60)


def test_down_with_no_run_fails_and_says_where_it_looked(root, tmp_path):
    result = down(root)
    assert result.returncode != 0
    assert f"no run in {root}/.cache/kube-run" in result.stderr  # the default: its own folder, not the build cache
    result = down(root, KUBE_REAL_RUN=str(tmp_path / "elsewhere"), KUBE_REAL_CACHE=str(tmp_path / "cache"))
    assert result.returncode != 0 and f"no run in {tmp_path}/elsewhere" in result.stderr


def test_down_stops_the_run_and_removes_its_secrets(root, tmp_path):
    run = tmp_path / "run"
    for d in ("pids", "logs", "pki", "etcd/member"):
        (run / d).mkdir(parents=True)
    secrets = [run / "tokens.csv", run / "pki" / "ca.key", run / "pki" / "sa.key", run / "kubeconfig",
               run / "controller-manager.kubeconfig", run / "scheduler.kubeconfig", run / "etcd" / "member" / "db"]
    for f in secrets:
        f.write_text("secret\n")
    (run / "logs" / "kube-apiserver.log").write_text("log\n")
    pids = []
    for name in NAMES:  # stand-ins whose command line names the binary, as `down` requires; started
        # detached like `up`'s (not this process's children, whose zombies would look alive)
        out = subprocess.run(["bash", "-c", f"(exec -a {name} sleep 300) >/dev/null 2>&1 & echo $!"],
                             capture_output=True, text=True, check=True).stdout
        pids.append(int(out))
        (run / "pids" / f"{name}.pid").write_text(out)
    try:
        time.sleep(0.2)
        result = down(root, KUBE_REAL_RUN=str(run))
        assert result.returncode == 0, result.stderr
        assert [pid for pid in pids if running(pid)] == []
        assert [f for f in secrets if f.exists()] == []
        assert not (run / "pids").exists() and (run / "logs" / "kube-apiserver.log").exists()
        again = down(root, KUBE_REAL_RUN=str(run))
        assert again.returncode != 0 and "nothing to stop" in again.stderr
    finally:
        for pid in pids:
            if running(pid):
                os.kill(pid, 9)


def running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
