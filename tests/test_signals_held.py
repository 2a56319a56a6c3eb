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


def test_the_copy_program_started_as_the_signal_arrives_is_stopped_not_left_running(monkeypatch, term_raises):
    """SIGTERM between the fork and Popen's return: the program still gets SIGINT and is waited for."""
    started: list[subprocess.Popen] = []
    real_popen = subprocess.Popen

    def popen_then_signalled(*args, **kwargs):
        proc = real_popen(*args, **kwargs)
        started.append(proc)
        os.kill(os.getpid(), signal.SIGTERM)  # arrives before Popen has returned to the caller
        return proc

    monkeypatch.setattr(where.subprocess, "Popen", popen_then_signalled)
    program = "import signal, sys, time\nsignal.signal(signal.SIGINT, lambda *a: sys.exit(7))\ntime.sleep(60)\n"
    with pytest.raises(Terminated):
        where._run_program([sys.executable, "-c", program], dict(os.environ))
    [proc] = started
    assert proc.returncode == 7  # stopped by SIGINT and reaped: not running, not killed
