"""A typer command group that imports a command's module only when that command is looked up.

Why: a command's module pulls in its layer (checks, fixes, flows, the lab), and `dvdoctor --help`,
shell completion of command names and `dvdoctor checks` need none of that. The group knows each
command from a table (name -> module, one-line help): listing the commands, completing their names
and suggesting a near name read the table; parsing or running a command, or its own `--help`,
imports its module, which registers the command on the app as before, and the group builds it
then, as typer would have built it up front.

Only click's plain help (rich_markup_mode=None, which dvdoctor uses) lists from the table; typer's
rich help asks every command for its help and so imports them all.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from gettext import gettext as _
from typing import TYPE_CHECKING, Any, ClassVar

from typer.core import TyperGroup

if TYPE_CHECKING:
    from typer import _click
    from typer._click.shell_completion import CompletionItem


@dataclass(frozen=True)
class LazyCommand:
    """Where a command is defined and the line `dvdoctor --help` shows for it (its short_help)."""

    #: the module that registers the command when imported, relative to this package (".check_cmd")
    module: str
    short_help: str


class LazyCommands(MutableMapping[str, "_click.Command"]):
    """A group's commands: those built so far, and those known from the table and built on first access.

    Iterating (the names, in the table's order, then any other built command) imports nothing;
    reading a command that is not built yet imports and builds it.
    """

    def __init__(self, built: Mapping[str, _click.Command], table: Mapping[str, LazyCommand],
                 load: Callable[[str], _click.Command | None]) -> None:
        self.built = dict(built)
        self.table = table
        self._load = load

    def is_built(self, name: str) -> bool:
        return name in self.built

    def __getitem__(self, name: str) -> _click.Command:
        if name not in self.built and name in self.table:
            command = self._load(name)
            if command is not None:
                self.built[name] = command
        return self.built[name]

    def __setitem__(self, name: str, command: _click.Command) -> None:
        self.built[name] = command

    def __delitem__(self, name: str) -> None:
        del self.built[name]

    def __iter__(self) -> Iterator[str]:
        yield from self.table
        yield from (name for name in self.built if name not in self.table)

    def __len__(self) -> int:
        return len(self.table) + sum(1 for name in self.built if name not in self.table)

    def __contains__(self, name: object) -> bool:
        return name in self.table or name in self.built


class LazyGroup(TyperGroup):
    """A TyperGroup whose commands come from `table` and are built by `build` after their module is imported.

    A subclass sets both: typer constructs the group itself (Typer(cls=...)), so they cannot be
    passed to __init__.
    """

    #: name -> where the command lives and its one line in the command list, in the list's order
    table: ClassVar[Mapping[str, LazyCommand]] = {}

    def build(self, name: str) -> _click.Command | None:
        """The command `name`, built after its module was imported (and so registered it)."""
        raise NotImplementedError

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands: LazyCommands = LazyCommands(self.commands, self.table, self._import_and_build)

    def _import_and_build(self, name: str) -> _click.Command | None:
        importlib.import_module(self.table[name].module, __package__)
        return self.build(name)

    def list_commands(self, ctx: _click.Context) -> list[str]:
        return list(self.commands)

    def listed_help(self, name: str, limit: int = 45) -> str | None:
        """The command's line in a list, from the table while it is not built; None when it is hidden."""
        if not self.commands.is_built(name):
            return self.table[name].short_help
        command = self.commands[name]
        return None if command.hidden else command.get_short_help_str(limit)

    def format_commands(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        """TyperGroup's command list (same widths, same section), each line from listed_help()."""
        names = [name for name in self.list_commands(ctx) if self.listed_help(name) is not None]
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, self.listed_help(name, limit) or "") for name in names]
        if rows:
            with formatter.section(_("Commands")):
                formatter.write_dl(rows)

    def shell_complete(self, ctx: _click.Context, incomplete: str) -> list[CompletionItem]:
        """Command names with their one line (as TyperGroup gives them), then the group's own options."""
        from typer._click.shell_completion import CompletionItem

        results = [CompletionItem(name, help=line) for name in self.list_commands(ctx)
                   if name.startswith(incomplete) and (line := self.listed_help(name)) is not None]
        results.extend(super(TyperGroup, self).shell_complete(ctx, incomplete))  # the options: click's Command
        return results
