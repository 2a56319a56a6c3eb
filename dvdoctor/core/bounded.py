"""Reading what dvdoctor did not write itself, within a size and a depth bound.

Facts files given to `check --from`, backup manifests found on the volume, dvdoctor.yaml, the
kubeconfig and a lab's state may hold anything: a file of gigabytes, or JSON nested a million
levels deep, which Python's parsers meet with a RecursionError (a traceback) and every recursive
walk after them (schema validation, redaction) too. Here a value is read only up to `max_bytes`,
parsed with the recursion error turned into one reason, and measured without recursion. Every
failure is a ValueError whose message says what was wrong and what is allowed, for the caller to
turn into its one line (or, for a manifest, into a finding).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

#: How deep a document may nest; DV's objects nest about 15 levels, dvdoctor's files fewer.
MAX_DEPTH = 64
MIB = 1024 * 1024


class TooBig(ValueError):
    """The input is larger or deeper than allowed; the message says by how much and the bound."""


def read_text(path: Path | str, max_bytes: int) -> str:
    """A file's text, refusing more than `max_bytes` (read at most one byte more: safe on /dev/zero).

    OSError (missing, a folder, no permission) goes to the caller, who knows which option named it.
    """
    with open(path, "rb") as fh:
        raw = fh.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise TooBig(f"larger than {_size(max_bytes)}, the most dvdoctor reads")
    return raw.decode("utf-8")


def check_size(text: str | bytes, max_bytes: int) -> None:
    if len(text) > max_bytes:
        raise TooBig(f"{_size(len(text))}, larger than {_size(max_bytes)}, the most dvdoctor reads")


def check_depth(value: Any, max_depth: int = MAX_DEPTH, max_nodes: int | None = None) -> None:
    """Refuse a structure nested deeper than `max_depth`, walked without recursion.

    `max_nodes` bounds the walk for YAML, whose aliases can make a small file a huge tree."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if max_nodes is not None and seen > max_nodes:
            raise TooBig(f"more than {max_nodes} values (YAML aliases?), the most dvdoctor reads")
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            raise TooBig(f"nested deeper than {max_depth} levels, the most dvdoctor reads")
        stack.extend((child, depth + 1) for child in children)


def json_loads(text: str | bytes, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """JSON within the bounds; NaN and Infinity (which Python's json accepts) are not JSON here."""
    check_size(text, max_bytes)
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise TooBig(f"nested deeper than {max_depth} levels, the most dvdoctor reads") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    except ValueError as exc:
        raise _too_many_digits(exc) from None
    check_depth(value, max_depth)
    return value


def yaml_load(text: str) -> Any:
    """YAML as data, dates and times left as the text they are written as.

    PyYAML's safe loader builds a date from anything shaped like one, and an impossible one
    (`2026-13-01`, `2026-02-30`, `9999-12-31T99:00:00`) ends in its ValueError; no file dvdoctor reads
    has a date field, so a date-shaped value is a string here, for the schema to judge."""
    import yaml

    try:
        return yaml.load(text, Loader=_plain_dates_loader())  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:  # libyaml stops at its own depth where the Python parser recursed
        if "maximum nesting depth" in str(exc):
            raise TooBig(f"nested deeper than {MAX_DEPTH} levels, the most dvdoctor reads") from None
        raise
    except ValueError as exc:
        raise _too_many_digits(exc) from None


def _too_many_digits(exc: ValueError) -> ValueError:
    """int() of a decimal string longer than Python's limit (4300 digits) is its own ValueError, whose
    message names sys.set_int_max_str_digits: said here as the bound it is."""
    if "digits" not in str(exc):
        return exc
    return TooBig(f"a number longer than {sys.get_int_max_str_digits()} digits, which nothing dvdoctor reads can need")


_LOADER: Any = None


def _plain_dates_loader() -> Any:
    global _LOADER
    if _LOADER is None:
        import yaml

        # libyaml's parser when PyYAML has it (ten times the pure-Python one's speed on a kubeconfig's
        # certificates); the constructor and resolver are the same safe ones either way
        base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

        class PlainDates(base):  # type: ignore[misc,valid-type]
            """The safe loader, timestamps resolved as strings."""

        PlainDates.yaml_implicit_resolvers = {
            first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
            for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
        }
        PlainDates.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)  # !!timestamp too
        _LOADER = PlainDates
    return _LOADER


def _no_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name} is not a number JSON allows")


#: Whole numbers past 64 bits are no count, size, uid or limit dvdoctor takes; YAML reads them from
#: hex, octal, binary or base-60 digits too, and past 4300 digits Python cannot even print one.
MAX_WHOLE = 2**63


def non_finite(value: Any) -> list[Any] | None:
    """The path to the first number no setting can hold in a structure: NaN or an infinity (YAML's
    .nan, .inf), or a whole number beyond 64 bits; None when there is none."""
    stack: list[tuple[Any, list[Any]]] = [(value, [])]
    while stack:
        item, path = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return path
        if _too_whole(item):
            return path
        if isinstance(item, dict):
            if any(_too_whole(k) for k in item):  # a key: the mapping's path
                return path
            stack.extend((v, path + [k]) for k, v in reversed(list(item.items())))
        elif isinstance(item, list):
            stack.extend((v, path + [i]) for i, v in reversed(list(enumerate(item))))
    return None


def _too_whole(item: Any) -> bool:
    return isinstance(item, int) and not isinstance(item, bool) and not -MAX_WHOLE <= item <= MAX_WHOLE


def _size(n: int) -> str:
    return f"{n / MIB:.0f} MiB" if n >= MIB else f"{n} bytes"
