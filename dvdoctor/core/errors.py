"""Errors that end a command with one clear line.

Every failure a user can cause or meet (bad input, no cluster, no permission) is one of these,
so the CLI can print one line and exit without a traceback; `-v` shows the traceback. The exit
code follows the contract in `dvdoctor --help`: 2 when dvdoctor could not run or the input was
wrong; 3 when the cluster refused (rights) or did not answer, so what was asked is unknown.
"""

from __future__ import annotations


class DvdoctorError(Exception):
    """A problem that stops the command; its message is the one line the user sees."""

    exit_code = 2


class UsageError(DvdoctorError):
    """Bad input: a value that is not allowed. The message names the value and what is allowed."""


class NoRoom(DvdoctorError):
    """The disk is too full for what was asked: the message says what failed and the room free/needed."""


class Incomplete(DvdoctorError):
    """What the command needs could not be learnt (no rights, an inspection pod that failed): exit 3."""

    exit_code = 3


class ClusterError(DvdoctorError):
    """The cluster (or the lab) answered with an error, or could not be reached: the verdict is incomplete."""

    exit_code = 3


class NotFound(ClusterError):
    """What the user named is not there (a namespace, an object): wrong input, not an unknown."""

    exit_code = 2


class Forbidden(ClusterError):
    pass


class Conflict(ClusterError):
    exit_code = 2


class Invalid(ClusterError):
    exit_code = 2


class Unreachable(ClusterError):
    pass


class Unavailable(ClusterError):
    """The API server kept answering 429 or 5xx after every retry (busy, or etcd in trouble)."""


class NotServed(ClusterError):
    """The server serves no version of a kind that dvdoctor knows: it is older than dvdoctor supports for this."""


class Interrupted(Exception):
    """SIGTERM or SIGHUP turned into an exception, so cleanup runs as it does for Ctrl-C (not a
    DvdoctorError: nothing was wrong with the input; typer leaves it alone, unlike KeyboardInterrupt,
    which it turns into a silent exit 130)."""
