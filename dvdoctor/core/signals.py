"""The signals that end a command: how they end it, and how a child that must be stopped stays ours.

`interrupted_by_signals()`: SIGTERM (kill, a Job's deadline) and SIGHUP (the terminal closed) raise
`Interrupted` as Ctrl-C raises KeyboardInterrupt, so a command's cleanup runs (the lock released,
DV's deployments put back, a copy program stopped) and one line says so; after a hangup the
terminal's descriptors point at /dev/null first, as every write to it would fail (EIO) and stop
that cleanup half-way.

`owned(start, stop)`: a handled signal raises wherever the main thread happens to be. If that is
inside `subprocess.Popen(...)`, after the fork but before Popen returns, the child runs on and the
caller never got the handle it needs to stop it: a copy program or a restic left running on its own
after dvdoctor said "interrupted". So such a child is started with the signals held (`held()`), and
what arrived meanwhile is delivered once the process is in hand; if the body then ends by an
exception, the child is stopped, with the signals held again, so a second Ctrl-C cannot cut the stop
short (the command is ending already).
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

from .errors import Interrupted

P = TypeVar("P")

#: The signals that end a command: Ctrl-C, kill / a Job's deadline, the terminal closed.
ENDING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _restore(handlers: list[tuple[int, object]]) -> None:
    """Put each handler back even if a signal's handler raises between two of them (each in its own
    `finally`), so no signal stays noted-and-forgotten for the rest of the run."""
    if not handlers:
        return
    (signum, handler), rest = handlers[0], handlers[1:]
    try:
        signal.signal(signum, handler)  # type: ignore[arg-type]
    finally:
        _restore(rest)


class Pending:
    """The signals that arrived while held, and the handlers that were in place before."""

    def __init__(self) -> None:
        self.caught: list[int] = []
        self.handlers: dict[int, object] = {}

    def note(self, signum: int, frame: object) -> None:  # noqa: ARG002 - signal handler signature
        self.caught.append(signum)

    def deliver(self) -> None:
        """Hand each held signal to the handler that was in place (raising as it would have); one the
        process had left to the system's default ends it as the default would. Each is delivered once."""
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
    the caller calls `deliver()` where it can stop what it started. If the inside raises (Popen could
    not start the program), what was held is delivered at once: a Ctrl-C is never dropped. Outside
    the main thread (where Python runs no handler) nothing is held; a signal the process ignores
    stays ignored."""
    pending = Pending()
    if threading.current_thread() is not threading.main_thread():
        yield pending
        return
    try:
        for signum in ENDING:
            current = signal.getsignal(signum)
            if current not in (signal.SIG_IGN, None):
                pending.handlers[signum] = current  # recorded before it is swapped: restored whatever comes
                signal.signal(signum, pending.note)
        yield pending
    except BaseException:
        _restore(list(pending.handlers.items()))
        pending.deliver()
        raise
    else:
        _restore(list(pending.handlers.items()))


@contextmanager
def owned(start: Callable[[], P], stop: Callable[[P, BaseException], None]) -> Iterator[P]:
    """`start()` with the signals held; inside, the process it returns; on any exception, `stop(process,
    exception)` runs to its end (signals held) before the exception goes on. A signal that came while
    `start()` ran is delivered inside, so it too ends by stopping the process."""
    proc = None
    try:
        with held() as pending:
            proc = start()
        pending.deliver()
        yield proc
    except BaseException as exc:
        if proc is not None:
            with held():
                stop(proc, exc)
        raise


def _detach_from_terminal(fds: list[int]) -> None:
    """Point these descriptors (the terminal's) at /dev/null.

    After a hangup every write to the terminal fails (EIO); the first progress line of the cleanup
    would then stop it before DV's deployments are put back. The audit log still records each change.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in fds:
            os.dup2(devnull, fd)
    finally:
        os.close(devnull)


@contextmanager
def interrupted_by_signals() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP (the terminal closed) raise Interrupted, like Ctrl-C; outside
    the main thread (where Python runs no handler) nothing changes.

    Which descriptors are a terminal is read now: after the hangup, isatty() fails on them too.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    ttys = [fd for fd in (1, 2) if os.isatty(fd)]

    def on_signal(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
        if signum == signal.SIGHUP:
            _detach_from_terminal(ttys)
        raise Interrupted(f"signal {signum}")

    previous: list[tuple[int, object]] = []
    try:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            previous.append((sig, signal.getsignal(sig)))
            signal.signal(sig, on_signal)
        yield
    finally:
        _restore([(sig, h if h is not None else signal.SIG_DFL) for sig, h in previous])
