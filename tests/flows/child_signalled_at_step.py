"""`python child_signalled_at_step.py STEP SIG DVDOCTOR-ARGS...`: dvdoctor as a user runs it, sending
itself SIG (SIGTERM, SIGINT, SIGHUP, SIGKILL) when its flow reaches STEP (dvdoctor.flows.checkpoints);
at `copy-program`, once the copy program it starts is running.

CHILD_TTY=1: stdout and stderr on a terminal that goes away at the step, as when its window is
closed: the pty's master is closed (every later write fails with EIO), then the signal arrives.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import threading
import time

from dvdoctor.cli import run
from dvdoctor.flows import checkpoints

step, sig, argv = sys.argv[1], getattr(signal, sys.argv[2]), sys.argv[3:]

tty = os.environ.get("CHILD_TTY") == "1"
closing = threading.Event()
if tty:
    import pty

    master, slave = pty.openpty()
    os.dup2(slave, 1)
    os.dup2(slave, 2)
    os.close(slave)

    def drain() -> None:  # the terminal's window, reading until it closes
        while not closing.is_set():
            if select.select([master], [], [], 0.05)[0]:
                os.read(master, 65536)

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()


def _when_the_copy_program_runs() -> None:
    """Signal this process once the copy program it started is running (a child of ours): the
    program then goes on by itself, as in a Job when dvdoctor is killed."""
    me = os.getpid()
    for _ in range(600):
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    parent = int(f.read().rsplit(b")", 1)[1].split()[1])
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    argv_of = f.read()
            except (OSError, ValueError, IndexError):
                continue
            if parent == me and b"dvdoctor.copies.job" in argv_of:
                os.kill(me, sig)
                return
        time.sleep(0.01)


def fire() -> None:
    if step == "copy-program":  # reached just before the program starts: signal once it runs
        threading.Thread(target=_when_the_copy_program_runs, daemon=True).start()
        return
    if step == "job-running":
        time.sleep(0.5)  # the job's pod is up and writing
    if tty and not closing.is_set():  # the terminal goes once; a second signal finds it gone already
        closing.set()
        drainer.join()
        os.close(master)
    os.kill(os.getpid(), sig)
    time.sleep(5)  # SIGKILL never returns; a handled signal raises in here


checkpoints.on(step, fire)
sys.exit(run(argv))
