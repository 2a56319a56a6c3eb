"""A support bundle: the facts, the logs of DV's BAR job pods and dvdoctor's audit log, in one tar.gz.

It is meant to be attached to a support case, so nothing in it may let a reader into the cluster:
env values named like secrets are already redacted by collect, and every text that goes in (facts,
logs, audit entries) passes through `redact`, which also catches tokens by their shape wherever
they appear (`token=...`, `Authorization: Bearer ...`, OpenShift `sha256~` tokens, JWTs).
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
from pathlib import Path

from . import __version__, k8s
from .cluster.port import Cluster
from .collect import REDACTED, SECRET_WORDS
from .errors import ClusterError, UsageError
from .facts import Facts

#: Lines of each BAR job pod's log kept: the end, where a failure shows.
LOG_LINES = 5000

_SECRET_KEY = "|".join(w.lower() for w in SECRET_WORDS) + "|passwd|pwd|api[_-]?key|access[_-]?key"
_PATTERNS = (
    # key=value, key: value, "key": "value", with the key naming a secret
    # (on one line: a YAML key such as `secretKeyRef:` followed by a nested block is not a value)
    re.compile(rf"(?i)(\b[\w.-]*(?:{_SECRET_KEY})[\w.-]*[\"']?[ \t]*[:=][ \t]*[\"']?)([^\s\"',;&]+)"),
    re.compile(r"(?i)(\bbearer\s+)([A-Za-z0-9._~+/=-]+)"),
    re.compile(r"()(sha256~[A-Za-z0-9_-]+)"),
    re.compile(r"()(\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)"),
)


def redact(text: str) -> str:
    """The text with every secret-looking value replaced by <redacted>, the key kept for the reader."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def _redact_data(value: object) -> object:
    """Every string in a JSON-like structure through `redact`; env values named like secrets dropped."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_redact_data(v) for v in value]
    if isinstance(value, dict):
        out = {k: _redact_data(v) for k, v in value.items()}
        name = value.get("name")
        if isinstance(name, str) and "value" in value and any(w in name.upper() for w in SECRET_WORDS):
            out["value"] = REDACTED
        return out
    return value


def bar_job_pods(facts: Facts) -> list[str]:
    """DV's BAR job pods (backup, restore, list, test jobs), whatever their state."""
    return sorted(k8s.name(p) for job in facts.names.bar_jobs for p in facts.pods_of_job(job))


def write(path: Path, facts: Facts, cluster: Cluster, audit_log: Path) -> list[str]:
    """Write the bundle; returns its member names. Logs that cannot be read are listed, not fatal."""
    members: dict[str, str] = {"facts.json": json.dumps(_redact_data(facts.data), indent=2, sort_keys=True) + "\n"}
    missing: dict[str, str] = {}
    for pod in bar_job_pods(facts):
        try:
            members[f"logs/{pod}.log"] = redact(cluster.logs(pod, tail_lines=LOG_LINES))
        except ClusterError as exc:
            missing[pod] = str(exc)
    if audit_log.is_file():
        members["audit.jsonl"] = redact(audit_log.read_text(encoding="utf-8", errors="replace"))
    else:
        missing["audit.jsonl"] = f"{audit_log} does not exist (dvdoctor has changed nothing from this machine)"
    members["manifest.json"] = json.dumps({
        "dvdoctor_version": __version__,
        "namespace": facts.namespace,
        "collected_at": facts.data["collected_at"],
        "contents": sorted(members),
        "not_included": missing,
        "redacted": "env values named like secrets, and token-shaped values in every file",
    }, indent=2) + "\n"
    try:
        with tarfile.open(path, "w:gz") as tar:
            for name, text in members.items():
                raw = text.encode("utf-8")
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(raw), 0o600, int(time.time())
                tar.addfile(info, io.BytesIO(raw))
    except OSError as exc:
        raise UsageError(f"--bundle {path}: cannot write: {exc.strerror or exc}") from None
    return sorted(members)
