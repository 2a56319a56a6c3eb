"""End-to-end flow tests: each test gets its own lab (a copy of the session's, tests/labs.py) in a 0755
temp folder (the lab's pods run as the BAR uid when tests run as root), the audit log inside it, and
dvdoctor driven through its CLI."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest

from dvdoctor.cluster import k8s
from dvdoctor.cli import run
from dvdoctor.lab import LabCluster, runtime

from labs import copy_lab, remove_lab, traversable_dir

BAR_SUBPATH = "1.5.0"


@dataclass
class Flow:
    """One lab and the helpers the flow tests share."""

    base: Path
    lab: Path
    capsys: pytest.CaptureFixture

    @property
    def audit(self) -> Path:
        return self.base / "audit.jsonl"

    @property
    def logs(self) -> Path:
        return self.base / "logs"

    def dv(self, *args: str) -> tuple[int, str, str]:
        """Run one dvdoctor command line against the lab, in this process; (exit code, stdout, stderr)."""
        self.capsys.readouterr()
        code = run(["--lab", str(self.lab), *args])
        out, err = self.capsys.readouterr()
        return code, out, err

    def backup(self, *extra: str) -> tuple[int, str, str]:
        return self.dv("backup", "--log-dir", str(self.logs), *extra)

    def restore(self, *extra: str) -> tuple[int, str, str]:
        return self.dv("restore", "--log-dir", str(self.logs), *extra)

    def cluster(self) -> LabCluster:
        """The lab as an administrator sees it (to arrange a test, never to act for dvdoctor)."""
        return LabCluster(self.lab, admin=True)

    @property
    def bar(self) -> Path:
        return self.lab / "volumes" / "dv-bar-pvc" / BAR_SUBPATH

    @property
    def data(self) -> Path:
        return self.lab / "volumes" / "dv-pvc"

    @property
    def markers(self) -> list[str]:
        return sorted(p.name for p in (self.data / "marker_files").iterdir())

    def timestamps(self) -> list[str]:
        return sorted(p.name for p in self.bar.iterdir() if p.is_dir() and not p.name.startswith("."))

    def point_at(self, ts: str) -> None:
        """Repoint the restore-point symlink, atomically, as DV writes it (an absolute pod path)."""
        tmp = self.bar / ".link.tmp"
        tmp.symlink_to(f"/mnt/PV/bar/{ts}/dv_backup.tar.gz")
        os.replace(tmp, self.bar / "dv_backup.tar.gz")

    def current(self) -> str:
        """The timestamp folder the restore-point symlink names (DV writes an absolute pod path)."""
        return os.readlink(self.bar / "dv_backup.tar.gz").split("/")[4]

    def replicas(self) -> dict[str, int]:
        return {p.stem: json.loads(p.read_text())["spec"]["replicas"]
                for p in sorted((self.lab / "objects" / "deployments").glob("*.json"))}

    def object_names(self, kind: str) -> list[str]:
        return sorted(p.stem for p in (self.lab / "objects" / kind).glob("*.json"))

    def data_digest(self) -> dict[str, str]:
        """sha256 of every file on DV's data volume (markers aside: the flows manage those)."""
        return {str(p.relative_to(self.data)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(self.data.rglob("*")) if p.is_file() and "marker_files" not in p.parts}

    def snapshot(self) -> dict[str, str]:
        """Every object file and every volume entry (content hash, link target, mode): any change shows."""
        out = {}
        for top in ("objects", "volumes"):
            for p in sorted((self.lab / top).rglob("*")):
                key = str(p.relative_to(self.lab))
                if p.is_symlink():
                    out[key] = "-> " + os.readlink(p)
                elif p.is_file():
                    out[key] = f"{p.stat().st_mode:o} " + hashlib.sha256(p.read_bytes()).hexdigest()
                else:
                    out[key] = f"{p.stat().st_mode:o} dir"
        return out

    def holding(self, job: str) -> bool:
        """DV's job is half-way (the lab's bar_hold): its stand-in wrote what comes first and says it holds."""
        pods = self.cluster().list("pods", label_selector=f"job-name={job}")
        return bool(pods) and "holding" in self.cluster().logs(k8s.name(pods[-1]))

    def end_hold(self, job: str) -> None:
        """Let DV's job go on, as time would: end the stand-in's half-way `sleep`."""
        (pod,) = self.cluster().list("pods", label_selector=f"job-name={job}")
        for pid in runtime.running_pids(self.lab / "pods" / k8s.name(pod)):
            try:
                argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if argv[0].endswith(b"sleep"):
                os.kill(pid, signal.SIGTERM)

    def audit_entries(self) -> list[dict]:
        return [json.loads(line) for line in self.audit.read_text().splitlines()] if self.audit.exists() else []


def _flow(golden: Path, capsys, monkeypatch, bar_hold: float = 0):
    base = traversable_dir("dvdoctor-flowtest-")
    monkeypatch.setenv("DVDOCTOR_AUDIT", str(base / "audit.jsonl"))
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps at 80 columns without a terminal
    monkeypatch.delenv("DVDOCTOR_LAB", raising=False)
    (base / "logs").mkdir()
    copy_lab(golden, base / "lab", bar_hold=bar_hold)
    yield Flow(base, base / "lab", capsys)
    remove_lab(base)


@pytest.fixture
def flow(golden_lab, capsys, monkeypatch):
    """A fresh healthy lab (one complete backup: a copy of the session's) with the audit log and job
    logs in its temp folder."""
    yield from _flow(golden_lab, capsys, monkeypatch)


@pytest.fixture
def slow_flow(golden_lab, capsys, monkeypatch):
    """As `flow`, but each backup job holds 3 s half-way (marker and partial folder written): long enough to interrupt."""
    yield from _flow(golden_lab, capsys, monkeypatch, bar_hold=3)


@pytest.fixture
def held_flow(golden_lab, capsys, monkeypatch):
    """As `flow`, but each backup job holds 120 s half-way: a job that runs on while the test acts around it."""
    yield from _flow(golden_lab, capsys, monkeypatch, bar_hold=120)
