"""The lock every changing command takes, and its `--break-lock` option, in one place."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

from ..cluster.port import Cluster
from ..lock import BREAK_RISK, Lock


def break_lock_option() -> bool:
    """`--break-lock`, with what it risks in its help."""
    return typer.Option(False, "--break-lock",
                        help=f"Take dvdoctor's lock in the namespace even when another run holds it: {BREAK_RISK}.")


def take_lock(cluster: Cluster, command: str, break_lock: bool, console: Console) -> Lock:
    """Take the namespace's lock for `command`, or raise LockHeld (exit 2, one line naming the holder)."""
    lock = Lock(cluster, command, warn=lambda msg: console.print(f"[yellow]! {escape(msg)}[/]"))
    return lock.acquire(break_lock)
