"""What the shared `api` fixture's fake server can be made to hold before a test sees it.

A test (or its module, through `pytestmark`) asks for one with the `fake_api` marker, naming the
preparation: `@pytest.mark.fake_api(holds=healthy_whose_jobs_end)`. Each preparation takes the started
server and loads or plays what it needs; the ones more than one module uses live here, one
module's own next to its tests. Keeping them functions (not fixtures that override `api`) leaves
one fixture that starts and stops every fake server, so none outlives its test.
"""

from __future__ import annotations

import copy
import threading

import builders as b
from fakeapi import FakeApi


def run_jobs(api: FakeApi, fail: bool = False) -> None:
    """Play the Job controller: a created Job gets a pod whose script ends, then finishes."""

    def on_create(plural: str, ns: str | None, obj: dict) -> None:
        if plural != "jobs":
            return
        name = obj["metadata"]["name"]
        pod = f"{name}-x7k2p"
        api.logs[pod] = "end\n"
        api.put("pods", {"metadata": {"name": pod, "labels": {"job-name": name}},
                         "spec": {"containers": [{"name": "bar", "image": b.IMAGE}]},
                         "status": {"phase": "Failed" if fail else "Succeeded"}}, ns)
        done = {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"} if fail else \
            {"type": "Complete", "status": "True"}

        def finish() -> None:  # a moment later, so waiting goes through the watch
            job = api.stored("jobs", name, ns)
            if job is not None:
                job = copy.deepcopy(job)
                job["status"] = {"conditions": [done], "completionTime": "2021-01-23T08:01:00Z"}
                api.put("jobs", job, ns, event="MODIFIED")

        threading.Timer(0.2, finish).start()

    api.on_create = on_create


def healthy_whose_jobs_end(api: FakeApi) -> None:
    """A healthy namespace whose execs print `end` and whose Jobs end (test_rbac's, and the modules
    that judge calls or verdicts on it)."""
    api.load(b.healthy())
    api.exec_handler = lambda pod, container, argv: (0, "end\n", "")
    run_jobs(api)


def binds_volumes(api: FakeApi) -> None:
    """An empty namespace whose claims are bound to a volume as soon as they are created, as a
    provisioner does (the claim tests watch a claim until it is bound)."""
    api.bind_volumes = True
