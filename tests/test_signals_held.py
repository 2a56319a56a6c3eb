"""A signal that arrives while dvdoctor starts a child it must stop on interruption (the copy program,
restic's backup) is delivered once the child is ours: the child is stopped, not left running on
its own. Found by CI: SIGTERM landed inside `subprocess.Popen`, after the fork, and the copy program
ran on unseen after dvdoctor said "interrupted"."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from dvdoctor.copies import where
from dvdoctor.core import signals


class Terminated(Exception):
    pass


def _raise(signum, frame):  # noqa: ARG001 - signal handler signature
    raise Terminated(signum)


@pytest.fixture
def term_raises():
    previous = signal.signal(signal.SIGTERM, _raise)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_a_signal_while_held_is_noted_then_delivered_to_the_handler_in_place(term_raises):
    with signals.held() as pending:
        os.kill(os.getpid(), signal.SIGTERM)
        assert pending.caught == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) is _raise  # the handler is back
    with pytest.raises(Terminated):
        pending.deliver()
    pending.deliver()  # delivered once


def test_an_ignored_signal_stays_ignored():
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with signals.held() as pending:
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)
        pending.deliver()
        assert pending.caught == []
    finally:
        signal.signal(signal.SIGHUP, previous)


_REAL_POPEN = subprocess.Popen


def _copy_program_signalled(monkeypatch, tmp_path, on_sigint: str, again_after: float | None = None) -> subprocess.Popen:
    """Run `where._run_program` on a stand-in program whose SIGINT handler does `on_sigint`, with a
    SIGTERM arriving inside Popen (once the program's handler is in place, so what it does is seen),
    and, with `again_after`, a second one that many seconds later, during the stop. Returns the
    program's process once `_run_program` has raised the first interruption."""
    import threading
    import time

    ready = tmp_path / "ready"
    started: list[subprocess.Popen] = []

    def popen_then_signalled(*args, **kwargs):
        proc = _REAL_POPEN(*args, **kwargs)
        while not ready.exists() and proc.poll() is None:
            time.sleep(0.01)
        started.append(proc)
        os.kill(os.getpid(), signal.SIGTERM)  # arrives before Popen has returned to the caller
        if again_after is not None:
            threading.Timer(again_after, os.kill, (os.getpid(), signal.SIGTERM)).start()
        return proc

    monkeypatch.setattr(where.subprocess, "Popen", popen_then_signalled)
    program = (f"import pathlib, signal, sys, time\nsignal.signal(signal.SIGINT, lambda *a: ({on_sigint}))\n"
               f"pathlib.Path({str(ready)!r}).touch()\ntime.sleep(60)\n")
    with pytest.raises(Terminated):
        where._run_program([sys.executable, "-c", program], dict(os.environ))
    [proc] = started
    return proc


def test_the_copy_program_started_as_the_signal_arrives_is_stopped_not_left_running(monkeypatch, term_raises, tmp_path):
    """SIGTERM between the fork and Popen's return: the program still gets SIGINT and is waited for."""
    proc = _copy_program_signalled(monkeypatch, tmp_path, "sys.exit(7)")
    assert proc.returncode == 7  # stopped by SIGINT and reaped: not running, not killed


def test_a_second_signal_during_the_stop_does_not_cut_it_short(monkeypatch, term_raises, tmp_path):
    """Ctrl-C pressed again while the program is being stopped: the stop still runs to its end (the
    program gets SIGINT and is reaped), and dvdoctor ends with the first interruption only."""
    proc = _copy_program_signalled(monkeypatch, tmp_path, "time.sleep(0.5), sys.exit(7)", again_after=0.2)
    assert proc.returncode == 7  # stopped by its SIGINT and reaped, not abandoned half-way
    assert signal.getsignal(signal.SIGTERM) is _raise


def test_a_signal_held_while_the_start_fails_is_delivered_not_dropped(term_raises):
    with pytest.raises(Terminated) as raised:
        with signals.held():
            os.kill(os.getpid(), signal.SIGTERM)
            raise FileNotFoundError("no such program")
    assert isinstance(raised.value.__context__, FileNotFoundError)
    assert signal.getsignal(signal.SIGTERM) is _raise


def test_sigterm_and_sighup_end_a_command_as_ctrl_c_does():
    from dvdoctor.core.errors import Interrupted

    for sig in (signal.SIGTERM, signal.SIGHUP):
        before = signal.getsignal(sig)
        with pytest.raises(Interrupted):
            with signals.interrupted_by_signals():
                os.kill(os.getpid(), sig)  # the handler runs as os.kill returns
        assert signal.getsignal(sig) == before


def test_the_copy_program_takes_back_ctrl_c_it_was_started_without():
    """Started with SIGINT ignored (`dvdoctor copy &` in a script), the copy program could not be
    stopped by the SIGINT dvdoctor sends: it puts Ctrl-C's default handler back first."""
    code = ("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
            "from dvdoctor.copies.job import main\nmain([])\n"
            "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip().splitlines()[-1:] == ["True"], done.stdout + done.stderr
