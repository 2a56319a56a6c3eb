"""The copy stream's two errors, apart from the stream itself (stream.py).

Why a module of their own: the copy program starts once per action (each `check` of a namespace
with copies lists them), and most actions (snapshots, check, stats, forget) never stream a backup.
They import these to catch them, not the stream's gzip, tar, hashing and threads.
"""

from __future__ import annotations


class StreamError(Exception):
    """The backup or the stream is not what it must be; the message says what and where."""


class SinkError(OSError):
    """What the stream was written to stopped taking it (restic ended)."""
