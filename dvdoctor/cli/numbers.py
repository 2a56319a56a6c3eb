"""Numbers given on the command line: plain ASCII digits (a decimal point for seconds and fractions), nothing else.

Why: typer reads an `int` option the lenient way Python does, so `--keep-daily $'3\\n'`, `' 3'`,
`+3`, `3_0` (thirty) and `3.0` were all taken as numbers. A value that reached the command through a
script's variable with a stray newline, or a typo, must be refused in one line (exit 2), never
read as something else. Every numeric option is declared with `number_option`, which parses the
text strictly and then holds the value to the option's own `min`/`max` (typer leaves bounds to its
own parser, which a custom one replaces); `dvdoctor.cli.bad_value` words the refusal from them.
"""

from __future__ import annotations

import re
from typing import Any

import typer

_WHOLE = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def whole(value: Any) -> int:
    """A whole number written as plain digits (a default, already a number, passes as it is)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _WHOLE.fullmatch(value):
        return int(value)
    raise ValueError("not plain digits")


def decimal(value: Any) -> float:
    """A number written as digits with at most one decimal point (no sign, exponent, nan or spaces)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return float(value)
    raise ValueError("not a plain number")


def _within(ctx: typer.Context, param: Any, value: Any) -> Any:
    """The option's own bounds, which typer does not apply once a parser of ours reads the text."""
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if value is not None and ((low is not None and value < low) or (high is not None and value > high)):
        raise typer.BadParameter("out of its range")
    return value


def number_option(default: Any, *names: str, kind: type = int, **options: Any) -> Any:
    """typer.Option for a number the user types: `kind` int (plain digits) or float (digits and a point)."""
    return typer.Option(default, *names, parser=whole if kind is int else decimal, callback=_within, **options)
