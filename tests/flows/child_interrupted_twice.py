"""`python child_interrupted_twice.py DVDOCTOR-ARGS...`: a backup that interrupts itself (SIGINT) while
DV's job is half-way, and again as the cleanup starts to stop the job (dvdoctor.flows.checkpoints):
the second interrupt must leave the side deployments down and say what is left."""

from __future__ import annotations

import os
import signal
import sys
import time

from dvdoctor.cli import run
from dvdoctor.flows import checkpoints
from dvdoctor.lab import LabCluster

argv = sys.argv[1:]
lab = LabCluster(argv[argv.index("--lab") + 1], admin=True)


def job_running() -> None:
    while not [p for p in lab.list("pods", label_selector="job-name=dv-backup-job")
               if p["status"].get("phase") == "Running"]:
        time.sleep(0.05)
    time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGINT)


def stopping_job() -> None:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)


checkpoints.on("job-running", job_running)
checkpoints.on(checkpoints.STOPPING_JOB, stopping_job)
sys.exit(run(argv))
