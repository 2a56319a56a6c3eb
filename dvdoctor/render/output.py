"""How dvdoctor writes for people, in a terminal and in a pipe or a log, from one place.

A CronJob's log, `| grep` and `| less` are where dvdoctor's verdicts are read as often as in a
terminal, and there a cut cell (`2026-12-02-0…`) or a command split mid-token is worse than useless.
So: every console comes from `console()`, which never wraps when its stream is not a terminal;
every table goes through `print_table()`, which prints plain whitespace-aligned columns at full
width in a pipe (one record a line, as `kubectl get` does) and, in a terminal narrower than the
table, folds only the columns whose cells are prose, never ids, timestamps, names or commands.
A reader that closes the pipe early (`| head -1`) is not an error: `pipe_safe_streams()` sends the
rest to /dev/null, so the command ends normally with its verdict's exit code.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich is loaded by the first console made: `dvdoctor --help` never needs it
    from rich.console import Console

#: Set by the global --no-color option for this run (run() resets it); NO_COLOR is read by rich itself.
NO_COLOR = False


def color_off() -> bool:
    return NO_COLOR or os.environ.get("NO_COLOR", "") != ""


def console(*, stderr: bool = False, file=None) -> Console:
    """A rich Console for people: wrapped at the terminal's width in a terminal, never wrapped elsewhere.

    Without a terminal the lines are as long as what they say (soft_wrap), without color or
    highlighting, so a log holds exactly the words and a pipe can grep any whole line.
    """
    stream = file if file is not None else (sys.stderr if stderr else sys.stdout)
    terminal = _isatty(stream)
    kwargs: dict = {"no_color": True} if color_off() else {}
    if file is not None:
        kwargs["file"] = file
    if not terminal:
        kwargs.update(soft_wrap=True, highlight=False)
    from rich.console import Console

    return Console(stderr=stderr, **kwargs)


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


@dataclass(frozen=True)
class Column:
    """One column of a table. `whole`: ids, timestamps, names and commands, which are never cut."""

    header: str
    whole: bool = False
    justify: str = "left"


#: What an empty cell shows in plain columns, so a whitespace split still finds every field.
EMPTY = "-"


def plain(cell: object) -> str:
    """A cell's words: a styled cell (rich `Text`, a state in color in a terminal) is just its words in a log.

    Any other cell is shown literally, never parsed as markup: cells carry names, tags and messages
    from the cluster, the volume and the repository, and a tag such as `[/]` or `[bold]x` is data
    to show as it is, not an instruction (nor a crash). Color is asked for with a `Text` only.
    """
    from rich.text import Text

    return cell.plain if isinstance(cell, Text) else str(cell)


def cell_text(cell: object):
    """The rich renderable of a cell for a terminal table: a `Text` as styled, anything else literally."""
    from rich.text import Text

    return cell if isinstance(cell, Text) else Text(str(cell))


def plain_table(columns: Sequence[Column], rows: Sequence[Sequence[object]]) -> list[str]:
    """The table as plain lines: upper-case headers, columns aligned by spaces, nothing cut or wrapped.

    Cells may be rich `Text` (colors for a terminal); here only their words are printed."""
    header = [c.header.upper() for c in columns]
    cells = [[plain(v) or EMPTY for v in row] for row in rows]
    widths = [max([len(header[i])] + [len(r[i]) for r in cells]) for i in range(len(columns))]
    lines = []
    for row in [header, *cells]:
        parts = []
        for i, (col, value) in enumerate(zip(columns, row)):
            last = i == len(columns) - 1
            if col.justify == "right":
                parts.append(value.rjust(widths[i]))
            else:
                parts.append(value if last else value.ljust(widths[i]))
        lines.append("   ".join(parts).rstrip())
    return lines


#: The least width a prose column gets in a terminal table before the table gives way to plain lines.
PROSE_MIN = 12


def print_table(out: Console, columns: Sequence[Column], rows: Sequence[Sequence[object]]) -> None:
    """Print a table: plain columns when `out` is not a terminal, else a rich table that folds only prose.

    A terminal too narrow for the whole columns and a readable width of prose gets the plain lines
    too: the terminal wraps them, and no cell is cut or folded a letter at a time.
    """
    whole = sum(max([len(c.header)] + [len(plain(r[i])) for r in rows]) for i, c in enumerate(columns) if c.whole)
    prose = sum(1 for c in columns if not c.whole)
    if not out.is_terminal or whole + PROSE_MIN * prose + 2 * (len(columns) - 1) > out.width:
        for line in plain_table(columns, rows):
            out.print(line, markup=False, highlight=False, soft_wrap=True)
        return
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for i, col in enumerate(columns):
        if col.whole:
            longest = max([len(col.header)] + [len(plain(r[i])) for r in rows])
            table.add_column(col.header, justify=col.justify, no_wrap=True, min_width=longest)
        else:
            table.add_column(col.header, justify=col.justify, overflow="fold")
    for row in rows:
        table.add_row(*[cell_text(v) for v in row])
    out.print(table)


# ---- a reader that stops reading ------------------------------------------------------------


class _PipeSafe(io.TextIOBase):
    """A text stream that, once its reader has gone (EPIPE), quietly discards what follows.

    The descriptor is pointed at /dev/null as well, so the interpreter's last flush at exit finds
    nothing to complain about; the command goes on to its end and its exit code.
    """

    def __init__(self, stream) -> None:
        self._stream = stream
        self.reader_gone = False
        #: A write that failed otherwise (a full disk: `check > /dev/full`): the output is lost, which
        #: the command's exit code must say (dvdoctor.cli.run), not a traceback at exit.
        self.failed: OSError | None = None

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                self._stream.write(text)
            except BrokenPipeError:
                self._silence()
            except OSError as exc:
                self.failed = exc
                self._silence()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._silence()
            except OSError as exc:
                self.failed = exc
                self._silence()

    def _silence(self) -> None:
        self.reader_gone = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, self._stream.fileno())
            finally:
                os.close(devnull)
        except (OSError, ValueError, io.UnsupportedOperation):
            pass

    def isatty(self) -> bool:
        return _isatty(self._stream)

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8") or "utf-8"

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


@contextmanager
def pipe_safe_streams() -> Iterator[list[_PipeSafe]]:
    """While inside, stdout and stderr survive a reader that closes the pipe early; yields the two
    wrappers, whose `failed` says after the block whether a write failed otherwise (a full disk)."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _PipeSafe(sys.stdout), _PipeSafe(sys.stderr)
    wrapped = [sys.stdout, sys.stderr]
    try:
        yield wrapped
    finally:
        for wrapped in (sys.stdout, sys.stderr):
            try:
                wrapped.flush()
            except Exception:  # noqa: BLE001 - flushing on the way out must never hide the real outcome
                pass
        sys.stdout, sys.stderr = saved
