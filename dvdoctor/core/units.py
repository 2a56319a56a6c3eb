"""Quantities, times and byte counts, as Kubernetes and DV write them and as dvdoctor shows them.

One home for the small conversions every layer needs (a check sizing a claim, the lab growing one,
the CLI reading `--size`), so that none of them has to import the facts to parse `20Gi` or a timestamp.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone


def parse_time(value: str | None) -> datetime | None:
    """Kubernetes timestamps (RFC 3339, `Z` suffix) as aware datetimes; None for none, and for a value
    that is no such time (an API server never sends one; an edited object may hold anything, which
    then counts as a time not known, never as a crash). A time without a zone is UTC, as the API's are."""
    if not value or not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


#: How dvdoctor writes a UTC time (audit log, records, messages): 2021-01-22T19:27:31Z.
ISO_Z = "%Y-%m-%dT%H:%M:%SZ"

#: DV's folder name: its UTC start time, ASCII digits only (`\\d` would also take other scripts' digits).
TIMESTAMP_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}-[0-9]{2}-[0-9]{2}-[0-9]{2}", re.ASCII)
TIMESTAMP_FORMAT = "%Y-%m-%d-%H-%M-%S"


def timestamp_time(ts: str) -> datetime:
    return datetime.strptime(ts, TIMESTAMP_FORMAT).replace(tzinfo=timezone.utc)


def is_timestamp(name: str) -> bool:
    """A backup folder's name: the whole name is a timestamp of a date that exists (no month 13)."""
    if not TIMESTAMP_RE.fullmatch(name):
        return False
    try:
        timestamp_time(name)
    except ValueError:
        return False
    return True


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


_SUFFIX = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "Pi": 1024**5,
           "k": 1000, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4, "P": 1000**5, "": 1}
#: At most 18 digits before the point: no storage size needs more, and a float of more overflows.
QUANTITY_RE = re.compile(r"^([0-9]{1,18}(?:\.[0-9]{1,9})?)(Ki|Mi|Gi|Ti|Pi|k|K|M|G|T|P|)$")


def parse_quantity(q: str) -> int:
    """A Kubernetes storage quantity (`20Gi`, `500M`, `1073741824`) in bytes; ValueError otherwise."""
    m = QUANTITY_RE.fullmatch(str(q))  # whole: "30Gi\n" is not a size
    if not m:
        raise ValueError(f"{q!r} is not a storage size (use a number with Ki, Mi, Gi, Ti, or k, M, G, T)")
    return int(float(m.group(1)) * _SUFFIX[m.group(2)])
