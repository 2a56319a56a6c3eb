"""The in-pod scripts and the one parser of what they print.

The scripts are package data and their text never changes at run time: every value reaches them
through environment variables or argv. The same parser reads their output from a real pod or a lab
process, so the lab exercises exactly the code that reads a cluster.
"""

from __future__ import annotations

import base64
import binascii
from importlib import resources

from .bounded import json_loads

#: bar-probe.sh sends a manifest's content only up to this size (a larger one is not dvdoctor's).
MANIFEST_MAX_BYTES = 65536


def script(name: str) -> str:
    """The text of a shipped in-pod script, e.g. `bar-probe.sh`."""
    return resources.files("dvdoctor").joinpath("scripts", name).read_text(encoding="utf-8")


def _records(text: str) -> tuple[list[list[str]], bool]:
    rows = [line.split("\t") for line in text.splitlines() if line.strip()]
    complete = bool(rows) and rows[-1] == ["end"]
    return rows, complete


def parse_bar_probe(text: str) -> dict:
    """Turn bar-probe.sh output into the `bar_volume` facts (see facts.schema.json)."""
    rows, complete = _records(text)
    out: dict = {"complete": complete, "exists": True, "entries": [], "link": None, "verified": {}, "manifests": {}}
    for row in rows:
        tag, rest = row[0], row[1:]
        if tag == "id" and rest:
            out["uid"] = int(rest[0])
            out["gids"] = [int(g) for g in rest[1].split()] if len(rest) > 1 and rest[1] else []
        elif tag == "missing":
            out["exists"] = False
        elif tag == "dir" and len(rest) >= 3:
            out["dir"] = {"mode": rest[0], "uid": int(rest[1]), "gid": int(rest[2])}
        elif tag == "writable" and rest:
            out["writable"] = rest[0] == "1"
            out["write_error"] = rest[1] if len(rest) > 1 else ""
        elif tag == "df" and len(rest) >= 3 and all(r.isdigit() for r in rest[:3]):
            out["df"] = {"total": int(rest[0]), "avail": int(rest[1]), "used": int(rest[2])}
        elif tag == "du" and rest and rest[0].isdigit():
            out["used_bytes"] = int(rest[0])
        elif tag == "entry" and len(rest) >= 7:
            kind = {"f": "file", "d": "dir", "l": "link"}.get(rest[0], "other")
            out["entries"].append(
                {
                    "path": rest[5],
                    "type": kind,
                    "size": int(rest[1]),
                    "mtime": float(rest[2]),
                    "mode": rest[3],
                    "uid": int(rest[4]) if rest[4].isdigit() else -1,
                    "target": rest[6] if kind == "link" else None,
                }
            )
        elif tag == "link" and len(rest) >= 3:
            out["link"] = {"name": rest[0], "target": rest[1], "target_exists": rest[2] == "1"}
        elif tag == "verify" and len(rest) >= 2:
            out["verified"][rest[0]] = {"ok": rest[1] == "1", "message": rest[2] if len(rest) > 2 else ""}
        elif tag == "manifest" and len(rest) >= 2 and rest[1].isdigit():
            out["manifests"][rest[0]] = _manifest(int(rest[1]), rest[2] if len(rest) > 2 else "")
    return out


def _manifest(size: int, encoded: str) -> dict:
    """One backup's manifest as the probe sent it: its JSON object, or why it cannot be read.

    The file sits on a volume anyone with the claim can write, so anything may be there: an
    unreadable one is reported, never trusted and never fatal to the inspection.
    """
    if not encoded:
        return {"size": size, "error": f"{size} bytes, too large to be dvdoctor's"}
    try:
        content = json_loads(base64.b64decode(encoded, validate=True).decode("utf-8"), MANIFEST_MAX_BYTES)
    except (binascii.Error, UnicodeDecodeError) as exc:
        return {"size": size, "error": f"not JSON: {exc}"}
    except ValueError as exc:  # not JSON, or nested too deep
        return {"size": size, "error": str(exc)}
    if not isinstance(content, dict):
        return {"size": size, "error": "not a JSON object"}
    return {"size": size, "content": content}


def parse_engine_probe(text: str) -> dict:
    """Turn engine-probe.sh output into the `engine` facts: markers, templates, caching script."""
    rows, complete = _records(text)
    out: dict = {"complete": complete, "marker_dir_exists": True, "markers": [], "templates": {}, "missing_templates": []}
    for row in rows:
        tag, rest = row[0], row[1:]
        if tag == "marker" and len(rest) >= 3:
            out["markers"].append({"name": rest[0], "size": int(rest[1]), "mtime": float(rest[2])})
        elif tag == "nomarkerdir":
            out["marker_dir_exists"] = False
        elif tag == "template" and len(rest) >= 2:
            out["templates"][rest[0]] = base64.b64decode(rest[1]).decode("utf-8", "replace")
        elif tag == "notemplate" and rest:
            out["missing_templates"].append(rest[0])
        elif tag == "caching_script" and rest:
            out["caching_script"] = rest[0] == "1"
    return out
