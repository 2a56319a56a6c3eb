"""Signals held while a child process is being started.

A handled signal (Ctrl-C's KeyboardInterrupt, SIGTERM's Interrupted) raises wherever the main thread
happens to be. If that is inside `subprocess.Popen(...)`, after the fork but before Popen returns, the
child runs on and the caller never got the handle it needs to stop it: a copy program or a restic
left running on its own after dvdoctor said "interrupted". So a child that must be stopped on
interruption is started with the signals held, and what arrived meanwhile is delivered right after,
where the caller's own `except BaseException` already holds the process:

    with signals.held() as pending:
        proc = subprocess.Popen(argv, ...)
    try:
        pending.deliver()
        ...
    except BaseException:
        stop(proc)
        raise
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Iterator

#: The signals that end a command: Ctrl-C, kill / a Job's deadline, the terminal closed.
ENDING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Pending:
    """The signals that arrived while held, and the handlers that were in place before."""

    def __init__(self) -> None:
        self.caught: list[int] = []
        self.handlers: dict[int, object] = {}

    def note(self, signum: int, frame: object) -> None:  # noqa: ARG002 - signal handler signature
        self.caught.append(signum)

    def deliver(self) -> None:
        """Hand each held signal to the handler that was in place (raising as it would have); one the
        process had left to the system's default ends it as the default would."""
        caught, self.caught = self.caught, []
        for signum in caught:
            handler = self.handlers.get(signum)
            if callable(handler):
                handler(signum, None)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), signum)


@contextmanager
def held() -> Iterator[Pending]:
    """Inside, the ending signals are noted, not acted on; the previous handlers are back on exit and
    the caller calls `deliver()` where it can stop what it started. Outside the main thread (where
    Python runs no handler) nothing is held. A signal the process ignores stays ignored."""
    pending = Pending()
    if threading.current_thread() is not threading.main_thread():
        yield pending
        return
    for signum in ENDING:
        current = signal.getsignal(signum)
        if current not in (signal.SIG_IGN, None):
            pending.handlers[signum] = current
            signal.signal(signum, pending.note)
    try:
        yield pending
    finally:
        for signum, handler in pending.handlers.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
