"""The lock every changing command takes, and its `--break-lock` option, in one place."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

from ..cluster.port import Cluster
from ..cluster.lock import BREAK_RISK, Lock
from ..core.names import DvNames


def break_lock_option() -> bool:
    """`--break-lock`, with what it risks in its help."""
    return typer.Option(False, "--break-lock",
                        help=f"Take dvdoctor's lock in the namespace even when another run holds it: {BREAK_RISK}.")


def take_lock(cluster: Cluster, command: str, break_lock: bool, console: Console,
              names: DvNames | None = None, ending: frozenset[str] = frozenset()) -> Lock:
    """Take the namespace's lock for `command`, or raise LockHeld (exit 2, one line naming the holder).

    With `names`, a lock another run holds is never taken (over, or with --break-lock) while one of
    DV's BAR jobs is active, other than those in `ending` (the jobs this command stops): BarJobActive.
    """
    from ..repair.owner import refuse_while_active_live

    lock = Lock(cluster, command, warn=lambda msg: console.print(f"[yellow]! {escape(msg)}[/]"))
    guard = (lambda: refuse_while_active_live(cluster, names, command, ending)) if names is not None else None
    return lock.acquire(break_lock, guard)
