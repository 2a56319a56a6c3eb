"""A support bundle: the facts, the logs of DV's BAR job pods and dvdoctor's audit log, in one tar.gz.

It is meant to be attached to a support case, so nothing in it may let a reader into the cluster:
every text that goes in (facts, logs, audit entries) passes through dvdoctor.core.redact, the one pass
every output of dvdoctor uses (secrets by their name, by their flag and by their shape).
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path

from .. import __version__
from ..cluster import k8s
from ..core import redact
from ..cluster.port import Cluster
from ..core.errors import ClusterError
from .model import FACTS_MEMBER, Facts
from ..core.files import write_atomic

#: Lines of each BAR job pod's log kept: the end, where a failure shows; and bytes read at most, since
#: one line may be any length (a job that printed a whole file on one line).
LOG_LINES = 5000
LOG_BYTES = 8 * 1024 * 1024


def facts_json(facts: Facts) -> str:
    """The facts as dvdoctor writes them out (`collect -o`, the bundle): through the redaction pass."""
    return json.dumps(redact.data(facts.data), indent=2, sort_keys=True) + "\n"


def bar_job_pods(facts: Facts) -> list[str]:
    """DV's BAR job pods (backup, restore, list, test jobs), whatever their state."""
    return sorted(k8s.name(p) for job in facts.names.bar_jobs for p in facts.pods_of_job(job))


def write(path: Path, facts: Facts, cluster: Cluster, audit_log: Path) -> list[str]:
    """Write the bundle; returns its member names. Logs that cannot be read are listed, not fatal."""
    members: dict[str, str] = {FACTS_MEMBER: facts_json(facts)}  # first: check --from reads it alone
    missing: dict[str, str] = {}
    for pod in bar_job_pods(facts):
        try:
            members[f"logs/{pod}.log"] = redact.text(cluster.logs(pod, tail_lines=LOG_LINES, limit_bytes=LOG_BYTES))
        except ClusterError as exc:
            missing[pod] = str(exc)
    if audit_log.is_file():
        members["audit.jsonl"] = redact.text(audit_log.read_text(encoding="utf-8", errors="replace"))
    else:
        missing["audit.jsonl"] = f"{audit_log} does not exist (dvdoctor has changed nothing from this machine)"
    members["manifest.json"] = json.dumps({
        "dvdoctor_version": __version__,
        "namespace": facts.namespace,
        "collected_at": facts.data["collected_at"],
        "contents": sorted(members),
        "not_included": missing,
        "redacted": "values named like secrets (env, keys, flags), passwords in URLs and connection strings, "
                    "Authorization headers, tokens and PEM blocks, in every file",
    }, indent=2) + "\n"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in members.items():
            raw = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(raw), 0o600, int(time.time())
            tar.addfile(info, io.BytesIO(raw))
    write_atomic(path, buffer.getvalue(), 0o600, what="--bundle")
    return sorted(members)
