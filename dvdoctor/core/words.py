"""Small helpers so every sentence dvdoctor prints reads as a person writes it: "1 warning", "2 backups"."""

from __future__ import annotations

#: Nouns whose plural is not the singular plus "s".
_IRREGULAR = {"copy": "copies", "fix": "fixes", "was": "were"}


def plural(count: int, noun: str, many: str | None = None) -> str:
    """`count` and the noun agreeing with it: plural(1, "warning") == "1 warning"."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {many or _IRREGULAR.get(noun, noun + 's')}"


def leaves(patch: dict, prefix: str = "") -> list[tuple[str, object]]:
    """The fields a merge patch sets, as dotted paths with their new values, for a sentence about it."""
    out: list[tuple[str, object]] = []
    for key, value in patch.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out += leaves(value, path)
        else:
            out.append((path, value))
    return out


def value(v: object) -> str:
    """A field's value in words: none for null, yes/no for booleans, the text otherwise."""
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (list, tuple)):
        return ", ".join(value(x) for x in v) or "none"
    return str(v)
