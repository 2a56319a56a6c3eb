"""The in-pod scripts and the one parser of what they print.

The scripts are package data and their text never changes at run time: every value reaches them
through environment variables or argv. The same parser reads their output from a real pod or a lab
process, so the lab exercises exactly the code that reads a cluster.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass
from importlib import resources

from ..core.bounded import json_loads

#: bar-probe.sh sends a manifest's content only up to this size (a larger one is not dvdoctor's).
MANIFEST_MAX_BYTES = 65536

#: Bytes a reporting run (check, list, collect) reads back at most: about one real backup (3-4 GB).
REPORT_BUDGET = 4 * 1024**3


@dataclass(frozen=True)
class ReadBack:
    """Which backups bar-probe.sh reads back to the end, inner tarballs included (its VERIFY* inputs).

    `unrecorded` reads those whose manifest records no good read-back at the combined tarball's
    current size and mtime; `all` reads every one; `recorded` none. `budget` bounds the bytes read
    (0: no bound; at least one backup, the restore point's first, is always read); `also` names
    backups read whatever was recorded and whatever the budget (timestamps, `@link`, `@newest`).
    """

    mode: str = "unrecorded"
    budget: int = REPORT_BUDGET
    also: tuple[str, ...] = ()

    def env(self, skip: str = "") -> dict[str, str]:
        return {"VERIFY": self.mode, "VERIFY_BUDGET": str(self.budget), "VERIFY_ALSO": " ".join(self.also),
                "VERIFY_SKIP": skip}


#: Reporting: trust what was recorded, read the rest back within the budget.
REPORT = ReadBack()
#: Read back every one nothing proves (a record at the current size:mtime counts as proof).
EVERY_UNPROVEN = ReadBack(budget=0)
#: `--verify`, and before removing backups: read back every one, records ignored. A record proves the
#: file as it was when read; bit rot keeps its size and mtime, so only this run's read-back shows it.
EVERY_ONE = ReadBack(mode="all", budget=0)


def script(name: str) -> str:
    """The text of a shipped in-pod script, e.g. `bar-probe.sh`."""
    return resources.files("dvdoctor").joinpath("scripts", name).read_text(encoding="utf-8")


def _records(text: str) -> tuple[list[list[str]], bool]:
    """One record a line, tab-separated fields. Only `\\n` ends a record: str.splitlines() would also
    split on characters (\\r, \\x1c, \\u2028...) that a field may hold."""
    rows = [line.split("\t") for line in text.split("\n") if line.strip()]
    complete = bool(rows) and rows[-1] == ["end"]
    return rows, complete


def field(value: str) -> str:
    """A field as the scripts print it: as is when plain, else `=` and base64 of its bytes.

    Bytes that are not UTF-8 come back as `\\xNN`: such a name is shown and reported, never acted on.
    """
    if not value.startswith("="):
        return value
    return base64.b64decode(value[1:], validate=True).decode("utf-8", "backslashreplace")


def _int(value: str) -> int:
    if not value.isascii() or not value.isdigit():
        raise ValueError(f"not a count: {value!r}")
    return int(value)


def _time(value: str) -> float:
    """A file's mtime as find prints it (`1611345900.1234567890`): finite, or ValueError."""
    t = float(value)
    if not math.isfinite(t):
        raise ValueError(f"not a time: {value!r}")
    return t


def _bar_record(out: dict, tag: str, rest: list[str]) -> None:
    """Read one bar-probe record into `out`; ValueError/IndexError/binascii.Error when it is malformed."""
    if tag == "id":
        out["uid"] = _int(rest[0])
        out["gids"] = [_int(g) for g in rest[1].split()] if len(rest) > 1 and rest[1] else []
    elif tag == "missing":
        out["exists"] = False
    elif tag == "dir":
        out["dir"] = {"mode": rest[0], "uid": _int(rest[1]), "gid": _int(rest[2])}
    elif tag == "writes-unprobed":
        out["writes_probed"] = False
    elif tag == "writable":
        out["writable"] = rest[0] == "1"
        out["write_error"] = field(rest[1]) if len(rest) > 1 else ""
    elif tag == "df" and len(rest) >= 3 and all(r.isascii() and r.isdigit() for r in rest[:3]):
        out["df"] = {"total": int(rest[0]), "avail": int(rest[1]), "used": int(rest[2])}
    elif tag == "du" and rest and rest[0].isascii() and rest[0].isdigit():
        out["used_bytes"] = int(rest[0])
    elif tag == "entry":
        kind = {"f": "file", "d": "dir", "l": "link"}.get(rest[0], "other")
        out["entries"].append({
            "path": field(rest[5]),
            "type": kind,
            "size": _int(rest[1]),
            "mtime": _time(rest[2]),
            "mode": rest[3],
            "uid": int(rest[4]) if rest[4].isascii() and rest[4].isdigit() else -1,
            "target": field(rest[6]) if kind == "link" else None,
        })
    elif tag == "link":
        out["link"] = {"name": field(rest[0]), "target": field(rest[1]), "target_exists": rest[2] == "1"}
    elif tag == "manifest" and rest[1].isascii() and rest[1].isdigit():
        out["manifests"][rest[0]] = _manifest(int(rest[1]), rest[2] if len(rest) > 2 else "")
    elif tag == "stamp":
        out["stamps"][rest[0]] = rest[1]
    elif tag == "readback":
        out["read_back"][rest[0]] = {"state": rest[1], "sha256": rest[2] if len(rest) > 2 else "",
                                     "message": field(rest[3]) if len(rest) > 3 else ""}


def parse_bar_probe(text: str) -> dict:
    """Turn bar-probe.sh output into the `bar_volume` facts (see facts.schema.json).

    A record that does not parse (a script of another version, a cut line) is counted in
    `unparsed`, never fatal: the inspection's other records still count.
    """
    rows, complete = _records(text)
    out: dict = {"complete": complete, "exists": True, "entries": [], "link": None, "manifests": {},
                 "stamps": {}, "read_back": {}, "unparsed": 0}
    for row in rows:
        try:
            _bar_record(out, row[0], row[1:])
        except (ValueError, IndexError, binascii.Error):
            out["unparsed"] += 1
    return out


def _manifest(size: int, encoded: str) -> dict:
    """One backup's manifest as the probe sent it: its JSON object, or why it cannot be read.

    The file sits on a volume anyone with the claim can write, so anything may be there: an
    unreadable one is reported, never trusted and never fatal to the inspection.
    """
    if not encoded:  # the probe sends none past its bound, and an empty file has nothing to send
        return {"size": size, "error": "it is empty (0 bytes)" if size == 0 else f"{size} bytes, too large to be dvdoctor's"}
    try:
        content = json_loads(base64.b64decode(encoded, validate=True).decode("utf-8"), MANIFEST_MAX_BYTES)
    except (binascii.Error, UnicodeDecodeError) as exc:
        return {"size": size, "error": f"not JSON: {exc}"}
    except ValueError as exc:  # not JSON, or nested too deep
        return {"size": size, "error": str(exc)}
    if not isinstance(content, dict):
        return {"size": size, "error": "not a JSON object"}
    return {"size": size, "content": content}


_ESCAPED = re.compile(r"\\([\\tnr])")
_ESCAPES = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}


def _unescape(field_text: str) -> str:
    """A template sent as text by engine-probe.sh: `\\`, `\t`, `\n` and `\r` back to what they stand for."""
    return _ESCAPED.sub(lambda m: _ESCAPES[m.group(1)], field_text)


def parse_engine_probe(text: str) -> dict:
    """Turn engine-probe.sh output into the `engine` facts: markers, templates, caching script."""
    rows, complete = _records(text)
    out: dict = {"complete": complete, "marker_dir_exists": True, "markers": [], "templates": {}, "missing_templates": []}
    for row in rows:
        tag, rest = row[0], row[1:]
        if tag == "marker" and len(rest) >= 3:
            try:
                out["markers"].append({"name": field(rest[0]), "size": _int(rest[1]), "mtime": _time(rest[2])})
            except (ValueError, binascii.Error):
                continue
        elif tag == "nomarkerdir":
            out["marker_dir_exists"] = False
        elif tag == "template" and len(rest) >= 2:
            out["templates"][rest[0]] = base64.b64decode(rest[1]).decode("utf-8", "replace")
        elif tag == "templatetext" and len(rest) >= 2:
            out["templates"][rest[0]] = _unescape(rest[1])
        elif tag == "notemplate" and rest:
            out["missing_templates"].append(rest[0])
        elif tag == "caching_script" and rest:
            out["caching_script"] = rest[0] == "1"
    return out
