"""Errors that end a command with one clear line.

Every failure a user can cause or meet (bad input, no cluster, no permission) is one of these,
so the CLI can print one line and exit 2 without a traceback; `-v` shows the traceback.
"""

from __future__ import annotations


class DvdoctorError(Exception):
    """A problem that stops the command; its message is the one line the user sees."""

    exit_code = 2


class UsageError(DvdoctorError):
    """Bad input: a value that is not allowed. The message names the value and what is allowed."""


class ClusterError(DvdoctorError):
    """The cluster (or the lab) answered with an error, or could not be reached."""


class NotFound(ClusterError):
    pass


class Forbidden(ClusterError):
    pass


class Conflict(ClusterError):
    pass


class Invalid(ClusterError):
    pass


class Unreachable(ClusterError):
    pass


class Unavailable(ClusterError):
    """The API server kept answering 429 or 5xx after every retry (busy, or etcd in trouble)."""
