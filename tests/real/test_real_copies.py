"""Copies through the Kubernetes adapter on a real server: the copy program's Jobs are admitted as
built, and an account with only what `dvdoctor rbac --for copy` grants runs them without a refused
call. No node runs a pod here, so each Job's pod is reported as not scheduled and removed: what a
copy does inside its pod is tested on the lab (tests/flows/test_flow_copies.py)."""

from __future__ import annotations

from dvdoctor.copies.where import copy_job, settings_for
from dvdoctor.core.names import CopySettings
from dvdoctor.cluster.kube import connect
from dvdoctor.facts import collect as collecting
from dvdoctor.core.names import DEFAULT

from .test_real_dry_run import dry_run
from .test_real_rbac import grant

SETTINGS = "copies:\n  secret: dv-copies\n  image: registry.example/dvdoctor:0.1.0\n"


def test_the_server_admits_the_copy_programs_jobs(dv):
    facts = collecting.collect(connect(str(dv.kubeconfig), None, dv.name), DEFAULT, use_pod=False)
    copies = settings_for(CopySettings(secret="dv-copies", image="registry.example/dvdoctor:0.1.0"), lab=False)
    for args, write in ((["copy", "2026-01-01-00-00-00"], False), (["snapshots"], False),
                        (["rehydrate", "0123abcd", "2026-01-01-00-00-00"], True), (["forget", "daily=7"], False),
                        (["plan-forget", "daily=7"], False)):
        job = copy_job(facts, copies, args, write=write)
        answer = dry_run(dv, job)
        assert answer["metadata"]["name"] == job["metadata"]["name"]
        pod = answer["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["envFrom"] == [{"secretRef": {"name": "dv-copies"}}]
        assert not any("RESTIC_PASSWORD" in str(e) for e in container.get("env", []))  # only from the Secret
        mounts = [m for m in container.get("volumeMounts", []) if m["mountPath"] == facts.names.bar_mount]
        assert [bool(m.get("readOnly")) for m in mounts] == ([not write] if args[0] in ("copy", "rehydrate") else [])
    assert dv.api.list("Job", dv.name, "app.kubernetes.io/managed-by=dvdoctor") == []


def test_the_copy_account_runs_the_copy_job_through_the_real_authorizer(dv):
    config = grant(dv, "copy", "copier")
    (dv.home / "dvdoctor.yaml").write_text(SETTINGS)
    listed = dv.dvdoctor("list", "--copies", kubeconfig=config, timeout=170)
    assert listed.rc != 0  # no node runs the pod: said, not waited for
    assert "not scheduled" in listed.output and "forbidden" not in listed.output.lower(), listed.output
    assert "Traceback" not in listed.output
    assert not dv.api.list("Job", dv.name, "app.kubernetes.io/managed-by=dvdoctor")
