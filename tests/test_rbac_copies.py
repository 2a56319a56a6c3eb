"""`dvdoctor rbac --for copy` grants what a copy calls: the facts, the copy Job run through the real
Kubernetes client against the fake API server (its Job controller played as in tests/namespaces.py, the
Job's pod printing the copy program's records), and the no-recent-copy repair."""

from __future__ import annotations

import copy
import io
import json
import threading
from pathlib import Path

import pytest
from rich.console import Console

import builders as b
from dvdoctor.repair.audit import AuditLog
from dvdoctor.facts.model import Facts
from dvdoctor.core.names import DEFAULT, CopySettings
from dvdoctor.cluster.permissions import COPY
from dvdoctor.repair.plan import Runner, execute

from namespaces import healthy_whose_jobs_end
from test_rbac import uncovered

pytestmark = pytest.mark.fake_api(holds=healthy_whose_jobs_end)

SETTINGS = DEFAULT.__class__(copies=CopySettings(secret="dv-copies", image="reg.example/dvdoctor:0.2"))


def copy_program(api) -> list[dict]:
    """Play the Job controller for copy Jobs: the pod prints what the copy program would, then ends."""
    created: list[dict] = []
    before = api.on_create

    def on_create(plural: str, ns, obj: dict) -> None:
        command = obj["spec"]["template"]["spec"]["containers"][0].get("command", []) if plural == "jobs" else []
        if "dvdoctor.copies.job" not in command:
            return before(plural, ns, obj)
        created.append(obj)
        name = obj["metadata"]["name"]
        pod = f"{name}-c0py1"
        ts = command[-1]
        api.logs[pod] = json.dumps({"copied": ts, "added": 10, "read": 20, "stream": 30, "checksums": {}}) + "\n"
        api.put("pods", {"metadata": {"name": pod, "labels": {"job-name": name}},
                         "spec": {"containers": [{"name": "copy", "image": "reg.example/dvdoctor:0.2"}]},
                         "status": {"phase": "Succeeded"}}, ns)

        def finish() -> None:
            job = api.stored("jobs", name, ns)
            if job is not None:
                job = copy.deepcopy(job)
                job["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
                api.put("jobs", job, ns, event="MODIFIED")

        threading.Timer(0.2, finish).start()

    api.on_create = on_create
    return created


def test_the_copy_repair_needs_only_what_copy_is_granted(api, cluster, tmp_path: Path):
    created = copy_program(api)
    data = b.healthy()
    data["copies"] = {"snapshots": []}
    facts = Facts(copy.deepcopy(data), SETTINGS)
    plan = b.fix_plan("no-recent-copy", facts)
    assert plan.actions, "the newest good backup has no copy: the plan copies it"
    changes = execute(plan, Runner(cluster, facts, AuditLog(tmp_path / "audit.jsonl")))
    assert changes and "copy of backup" in changes[0].what and "new data" in changes[0].after
    (job,) = [j for j in created if j["spec"]["template"]["spec"]["containers"][0]["command"][3] == "copy"]
    spec = job["spec"]["template"]["spec"]
    assert spec["containers"][0]["envFrom"] == [{"secretRef": {"name": "dv-copies"}}]
    assert spec["serviceAccountName"] == "dv-bar-sa"
    assert all(m.get("readOnly") for m in spec["containers"][0]["volumeMounts"])
    assert uncovered(api, COPY) == []
    assert api.stored("jobs", job["metadata"]["name"], b.NS) is None  # deleted when it ended
