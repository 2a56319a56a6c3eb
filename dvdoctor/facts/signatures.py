"""Known failure signatures in BAR job logs, each pointing at the check that names its root cause.

One table, read by the `bar-job-failed` check and by the backup/restore watch, so a log line means
the same thing wherever it is seen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Signature:
    pattern: re.Pattern[str]
    check: str
    cause: str
    #: The fix id that repairs the cause, when there is one.
    fix: str | None


@dataclass(frozen=True)
class Match:
    line: str
    check: str
    cause: str
    fix: str | None


SIGNATURES: tuple[Signature, ...] = (
    Signature(re.compile(r"\[Errno 13\] Permission denied"), "bar-permissions",
              "the BAR job's uid cannot write to the backup volume", "bar-permissions"),
    Signature(re.compile(r"No space left on device|\[Errno 28\]"), "bar-low-space",
              "the backup volume is full", "bar-low-space"),
    Signature(re.compile(r"file changed as we read it"), "side-deployments-running",
              "DV's side deployments changed files while tar read them", "side-deployments-running"),
    Signature(re.compile(r"extra characters at the end of d command|Use DV init image:\s+in\b"), "init-volume-pod-missing",
              "dvcli.sh found no init-volume pod and set an empty image", "init-volume-pod-missing"),
)


def match_log(log: str) -> list[Match]:
    """Every known signature in a log, first occurrence each, in table order."""
    out = []
    lines = log.splitlines()
    for sig in SIGNATURES:
        line = next((ln for ln in lines if sig.pattern.search(ln)), None)
        if line is not None:
            out.append(Match(line.strip(), sig.check, sig.cause, sig.fix))
    return out
