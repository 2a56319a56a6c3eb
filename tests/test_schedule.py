"""`dvdoctor schedule`: a valid CronJob, never overlapping or retrying, whose script prunes only after a
good backup, run by a service account with exactly the backup (or check) Role."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from dvdoctor.cluster import rbac
from dvdoctor.flows import schedule
from dvdoctor.core.errors import UsageError

NS = "cpd30"
IMAGE = "image-registry.openshift-image-registry.svc:5000/cpd30/dvdoctor:0.1.0"


def cron_of(objects: list[dict]) -> dict:
    [job] = [o for o in objects if o["kind"] == "CronJob"]
    return job


@pytest.mark.parametrize("check_only", [False, True])
@pytest.mark.parametrize("cluster_reads", [False, True])
def test_every_manifest_is_valid_kubernetes(check_only, cluster_reads):
    for obj in schedule.manifests(NS, "0 2 * * *", IMAGE, 3, check_only, cluster_reads=cluster_reads,
                                  cronjob_api="batch/v1"):
        for version in ("1.25.0", kubernetes_validate.latest_version()):
            kubernetes_validate.validate(obj, version, strict=True)


def test_the_cronjob_is_printed_in_the_version_dvs_platforms_serve_unless_asked():
    """Kubernetes 1.18-1.20 serve CronJob only as batch/v1beta1: a batch/v1 one is refused there.
    (kubernetes-validate holds no schema before 1.25; the real tier creates it on 1.20.)"""
    beta = cron_of(schedule.manifests(NS, "0 2 * * *", IMAGE))
    assert beta["apiVersion"] == "batch/v1beta1"
    v1 = cron_of(schedule.manifests(NS, "0 2 * * *", IMAGE, cronjob_api="batch/v1"))
    assert v1 == {**beta, "apiVersion": "batch/v1"}  # the same fields in both versions
    with pytest.raises(UsageError, match="--cronjob-api 'batch/v2'"):
        schedule.manifests(NS, "0 2 * * *", IMAGE, cronjob_api="batch/v2")


@pytest.mark.parametrize("flag, version", [([], "batch/v1beta1"), (["--cronjob-api", "batch/v1"], "batch/v1")])
def test_the_printed_yaml_says_which_cronjob_version_and_why(flag, version):
    result = invoke(["-n", NS, "schedule", "--cron", "0 2 * * *", "--image", IMAGE, *flag])
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"# CronJob as {version}: ") and "Kubernetes 1.21" in first and "OpenShift 4.5" in first
    assert "no matches for kind CronJob" in result.stdout.splitlines()[1]
    assert cron_of(list(yaml.safe_load_all(result.stdout)))["apiVersion"] == version
    listing = __import__("json").loads(invoke(["-n", NS, "schedule", "--cron", "0 2 * * *", "--image", IMAGE,
                                               "-o", "json", *flag]).stdout)
    assert cron_of(listing["items"])["apiVersion"] == version


def test_apply_asks_the_server_so_a_cronjob_version_is_refused_with_it():
    result = invoke(["-n", NS, "schedule", "--cron", "0 2 * * *", "--image", IMAGE, "--apply", "--cronjob-api", "batch/v1"])
    assert isinstance(result.exception, UsageError) and "--cronjob-api goes with printing" in str(result.exception)


def test_the_backup_job_never_overlaps_never_retries_and_runs_as_the_bound_account():
    objects = schedule.manifests(NS, "0 2 * * *", IMAGE, keep=3)
    spec = cron_of(objects)["spec"]
    assert (spec["schedule"], spec["concurrencyPolicy"], spec["jobTemplate"]["spec"]["backoffLimit"]) == ("0 2 * * *", "Forbid", 0)
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "dvdoctor" and pod["securityContext"] == {"runAsNonRoot": True}
    role = next(o for o in objects if o["kind"] == "Role")
    assert role["rules"] == rbac.rules(("backup",), False)
    binding = next(o for o in objects if o["kind"] == "RoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "dvdoctor", "namespace": NS}]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["DVDOCTOR_KEEP"] == "3"


def container_of(objects: list[dict]) -> dict:
    return cron_of(objects)["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]


def test_check_only_runs_the_json_report_with_the_read_only_role(tmp_path):
    objects = schedule.manifests(NS, "@hourly", IMAGE, check_only=True)
    assert run_script(tmp_path, 0, container_of(objects)) == ["check -o json"]
    assert next(o for o in objects if o["kind"] == "Role")["rules"] == rbac.rules(("check",), False)


def script_env(container: dict, home: Path, stub_dir: Path) -> dict[str, str]:
    """The container's env as the pod gets it, with HOME (where the script writes) in the test's folder."""
    env = {e["name"]: e["value"] for e in container["env"]}
    return {**env, "HOME": str(home), "XDG_STATE_HOME": str(home), "PATH": f"{stub_dir}:/usr/bin:/bin"}


def run_script(tmp_path: Path, backup_rc: int, container: dict | None = None) -> list[str]:
    """Run the CronJob's script with a stand-in dvdoctor that records its argv."""
    calls = tmp_path / "calls"
    stub = tmp_path / "bin" / "dvdoctor"
    stub.parent.mkdir()
    stub.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n[ "$1" = backup ] && exit {backup_rc}\nexit 0\n')
    stub.chmod(0o755)
    container = container or container_of(schedule.manifests(NS, "0 2 * * *", IMAGE, 3))
    subprocess.run(container["command"], env=script_env(container, tmp_path, stub.parent), check=False, timeout=30)
    return calls.read_text().splitlines()


def test_the_script_prunes_only_after_a_good_backup(tmp_path):
    assert run_script(tmp_path, 0) == [f"backup --yes --log-dir {tmp_path}", "prune --keep 3 --yes"]


def test_a_failed_backup_prunes_nothing(tmp_path):
    assert run_script(tmp_path, 1) == [f"backup --yes --log-dir {tmp_path}"]


@pytest.mark.parametrize("check_only", [False, True])
def test_the_scheduled_run_reads_the_sites_settings(tmp_path, check_only):
    """Break-it review: the CronJob read no dvdoctor.yaml, so a site's renamed objects, shorter list of
    side deployments, thresholds and suppressions were dropped at 02:00 without a word."""
    from dvdoctor.cli.config import parse

    site = {"names": {"side_deployments": ["dv-caching", "dv-api"]},
            "thresholds": {"max_backup_age_hours": 30},
            "suppressions": [{"check": "bar-pv-reclaim-delete", "reason": "the storage team snapshots the PV"}],
            "copies": {"repository": "rest:https://user:pw-in-url@backup.example/dv", "password_file": "/root/pw"}}
    container = container_of(schedule.manifests(NS, "0 2 * * *", IMAGE, check_only=check_only,
                                                site=schedule.site_settings(site)))
    assert "pw-in-url" not in json.dumps(container)  # a local repository means nothing in the job
    stub = tmp_path / "bin" / "dvdoctor"
    stub.parent.mkdir()
    stub.write_text(f'#!/bin/sh\ncat "$DVDOCTOR_CONFIG" > {tmp_path}/seen.yaml\n')
    stub.chmod(0o755)
    subprocess.run(container["command"], env=script_env(container, tmp_path, stub.parent), check=True, timeout=30)
    seen = parse((tmp_path / "seen.yaml").read_text())
    assert seen.names.side_deployments == ("dv-caching", "dv-api") and seen.copies is None
    assert seen.thresholds.max_backup_age_hours == 30
    assert [(r.check, r.reason) for r in seen.suppressions] == [("bar-pv-reclaim-delete", "the storage team snapshots the PV")]
    # without a config file the run has the defaults, as the command had
    (tmp_path / "bin" / "dvdoctor").unlink()
    stub.write_text(f'#!/bin/sh\ncat "$DVDOCTOR_CONFIG" > {tmp_path}/seen.yaml\n')
    stub.chmod(0o755)
    container = container_of(schedule.manifests(NS, "0 2 * * *", IMAGE, check_only=check_only))
    subprocess.run(container["command"], env=script_env(container, tmp_path, stub.parent), check=True, timeout=30)
    assert parse((tmp_path / "seen.yaml").read_text()) == parse("")


def test_the_script_passes_sigterm_on_to_dvdoctor_and_stops(tmp_path):
    """Break-it review: the container's shell (its PID 1) ignored the kubelet's SIGTERM, so dvdoctor
    never aborted cleanly; it was killed mid-backup when the grace period ran out. The script now
    hands the signal to the running step and runs no step after it."""
    calls = tmp_path / "calls"
    stub = tmp_path / "bin" / "dvdoctor"
    stub.parent.mkdir()
    stub.write_text(f'#!/bin/sh\necho "$1 started" >> {calls}\n'
                    f'trap \'echo "$1 got TERM" >> {calls}; exit 130\' TERM\n'
                    'i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done\n')
    stub.chmod(0o755)
    container = container_of(schedule.manifests(NS, "0 2 * * *", IMAGE, 3))
    proc = subprocess.Popen(container["command"], env=script_env(container, tmp_path, stub.parent))
    deadline = time.monotonic() + 20
    while not calls.exists() or "backup started" not in calls.read_text():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 130
    assert calls.read_text().splitlines() == ["backup started", "backup got TERM"]  # no prune after it
    pod = cron_of(schedule.manifests(NS, "0 2 * * *", IMAGE))["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= 300  # the abort's time, not the kubelet's 30 s default


@pytest.mark.parametrize("cron, image, keep, message", [
    ("0 2 * *", IMAGE, 2, "--cron '0 2 * *': give five fields"),
    ("0 2 * * * ; rm", IMAGE, 2, "--cron"),
    ("@sometimes", IMAGE, 2, "@daily"),
    ("0 2 * * *", "my image", 2, "--image 'my image'"),
    ("0 2 * * *", IMAGE, 0, "--keep 0: keep at least 1"),
    # break-it review: a schedule that never comes was printed and applied as any other
    ("0 2 31 2 *", IMAGE, 2, "--cron '0 2 31 2 *': no month named has that day, so it would never run"),
    ("0 2 31 4,6,9,11 *", IMAGE, 2, "never run"),
])
def test_bad_values_are_one_usage_error(cron, image, keep, message):
    with pytest.raises(UsageError, match=message.replace("*", r"\*")):
        schedule.manifests(NS, cron, image, keep)


def invoke(args: list[str]):
    from dvdoctor.cli import app
    from dvdoctor.cli import ops_cmd  # noqa: F401  (registers `schedule`)

    return CliRunner().invoke(app, args)


def test_the_command_prints_the_objects_to_apply():
    result = invoke(["-n", NS, "schedule", "--cron", "30 1 * * 0", "--image", IMAGE, "--keep", "4", "--no-cluster"])
    assert result.exit_code == 0, result.output
    assert [d["kind"] for d in yaml.safe_load_all(result.stdout)] == ["ServiceAccount", "Role", "RoleBinding", "CronJob"]
    assert "&id" not in result.stdout  # no YAML aliases: each object reads on its own
    assert isinstance(invoke(["schedule", "--cron", "@daily", "--image", IMAGE]).exception, UsageError)


def test_the_containerfile_builds_the_image_the_job_runs():
    text = (Path(__file__).resolve().parents[1] / "Containerfile").read_text()
    assert 'ENTRYPOINT ["dvdoctor"]' in text and "\nUSER 1001\n" in text


# ---- --apply through the real Kubernetes client, against tests/fakeapi.py ---------------------------


@pytest.fixture
def fake(api, kubeconfig, tmp_path, monkeypatch):
    """The shared empty fake API server (conftest's `api`), named by KUBECONFIG for the command line."""
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("DVDOCTOR_AUDIT", str(tmp_path / "audit.jsonl"))
    monkeypatch.delenv("DVDOCTOR_LAB", raising=False)
    return api


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    from dvdoctor.cli import run

    code = run(argv)
    out, err = capsys.readouterr()
    return code, out + err


APPLY = ["-n", NS, "schedule", "--cron", "0 2 * * *", "--image", IMAGE, "--check-only", "--apply"]
WRITES = r"/(serviceaccounts|roles|rolebindings|clusterroles|clusterrolebindings|cronjobs)(/|$)"


def test_apply_sends_each_object_to_its_path_as_printed(fake, capsys):
    from fakeapi import KINDS

    code, out = run_cli(APPLY, capsys)
    assert code == 0, out
    writes = fake.requests_to("POST", WRITES)
    dry = [r for r in writes if r.query.get("dryRun") == ["All"]]
    posts = [r for r in writes if "dryRun" not in r.query]
    # what the fake API server serves: --apply asks it (discovery), whatever printing would default to
    printed = schedule.manifests(NS, "0 2 * * *", IMAGE, check_only=True, cronjob_api="batch/v1")
    assert [r.json() for r in dry] == printed  # every object is first sent as a server-side dry run
    assert writes[:len(dry)] == dry  # ... before any is created
    assert [r.json() for r in posts] == printed  # in order: the job's account and rights before the job
    for request, obj in zip(posts, printed):
        plural = schedule.PLURALS[obj["kind"]]
        prefix, kind, namespaced = KINDS[plural]
        assert request.path == prefix + (f"/namespaces/{NS}" if namespaced else "") + f"/{plural}"
        assert request.headers["content-type"] == "application/json" and kind == obj["kind"]
    assert fake.requests_to("POST", r"/leases$") and fake.requests_to("DELETE", r"/leases/dvdoctor-lock$")


def test_apply_again_sends_nothing_though_the_server_added_defaults(fake, capsys):
    assert run_cli(APPLY, capsys)[0] == 0
    # what a real API server adds on create: none of it is a difference
    job = copy.deepcopy(fake.stored("cronjobs", "dvdoctor-check", NS))
    job["spec"]["suspend"] = False
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    pod["containers"][0].update(imagePullPolicy="IfNotPresent", terminationMessagePath="/dev/termination-log")
    pod["dnsPolicy"] = "ClusterFirst"
    fake.put("cronjobs", job, NS, event="MODIFIED")
    account = copy.deepcopy(fake.stored("serviceaccounts", "dvdoctor", NS))
    account["secrets"] = [{"name": "dvdoctor-token-x2k4p"}]
    fake.put("serviceaccounts", account, NS, event="MODIFIED")
    fake.requests.clear()
    code, out = run_cli(APPLY, capsys)
    assert code == 0 and "nothing to do" in out, out
    assert not fake.requests_to("POST", WRITES) and not fake.requests_to("PATCH", WRITES)


def test_a_changed_cron_is_one_merge_patch_of_the_cronjob(fake, capsys):
    assert run_cli(APPLY, capsys)[0] == 0
    fake.requests.clear()
    code, out = run_cli([a if a != "0 2 * * *" else "30 3 * * 6" for a in APPLY], capsys)
    assert code == 0, out
    [dry, patch] = fake.requests_to("PATCH", WRITES)
    assert dry.query == {"dryRun": ["All"]} and dry.json() == patch.json() and not patch.query
    assert patch.path == f"/apis/batch/v1/namespaces/{NS}/cronjobs/dvdoctor-check"
    assert patch.headers["content-type"] == "application/merge-patch+json"
    assert patch.json() == {"spec": {"schedule": "30 3 * * 6"}}
    assert fake.stored("cronjobs", "dvdoctor-check", NS)["spec"]["schedule"] == "30 3 * * 6"


def test_a_forbidden_create_stops_the_apply_in_one_line(fake, capsys):
    fake.fail("POST", r"/clusterroles$", 403, 'clusterroles.rbac.authorization.k8s.io is forbidden: User "alice" cannot create')
    code, out = run_cli(APPLY, capsys)
    assert code == 1 and "create clusterrole/dvdoctor-cpd30-check" in out and "forbidden" in out, out
    assert "nothing was changed" in out, out
    assert not [r for r in fake.requests_to("POST", WRITES) if "dryRun" not in r.query]  # all or nothing
    assert fake.stored("cronjobs", "dvdoctor-check", NS) is None  # the job never runs without its rights
    assert fake.stored("leases", "dvdoctor-lock", NS) is None  # the lock is given back


def test_the_port_knows_the_managed_kinds_everywhere_the_same_way():
    from fakeapi import KINDS

    from dvdoctor.cluster import kube
    from dvdoctor.cluster.port import KINDS as COLLECTED, MANAGED_KINDS
    from dvdoctor.lab import api as lab_api

    assert set(schedule.PLURALS.values()) - {"serviceaccounts"} == set(MANAGED_KINDS)
    assert not set(MANAGED_KINDS) & set(COLLECTED)  # collect never lists them
    for plural in MANAGED_KINDS:
        info = kube._KINDS[plural]
        assert KINDS[plural] == (info.prefix, info.kind, info.namespaced)
        assert lab_api.KIND_INFO[plural] == (info.group, info.api_version, info.kind)
        assert (plural in lab_api.CLUSTER_SCOPED) == (not info.namespaced)


def test_difference_is_the_smallest_merge_patch():
    have = {"metadata": {"name": "x", "uid": "1", "labels": {"a": "1"}}, "spec": {"schedule": "0 2 * * *", "suspend": False}}
    assert schedule.difference(have, {"metadata": {"labels": {"a": "1"}}, "spec": {"schedule": "0 2 * * *"}}) == {}
    assert schedule.difference(have, {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"schedule": "0 3 * * *"}}) == {
        "metadata": {"labels": {"b": "2"}}, "spec": {"schedule": "0 3 * * *"}}
    # a list is replaced whole, as a merge patch can only do
    assert schedule.difference({"l": [{"a": 1, "d": 0}, {"a": 2}]}, {"l": [{"a": 1}]}) == {"l": [{"a": 1}]}


@pytest.mark.parametrize("cron", ["0 2 29 2 *", "0 2 31 * *", "0 2 31 2 1", "0 2 */2 2 *", "0 2 30 4-5 *"])
def test_a_day_some_month_named_has_is_a_schedule(cron):
    assert schedule.valid_cron(cron) == cron


def test_the_number_to_keep_is_bounded_and_rbac_takes_a_labs_namespace(tmp_path, golden_lab, capsys):
    from dvdoctor.cli import run
    from labs import copy_lab

    assert run(["-n", NS, "schedule", "--cron", "0 2 * * *", "--image", IMAGE, "--keep", "99999999999"]) == 2
    assert "--keep 99999999999: keep at most 100000 backups" in capsys.readouterr().err
    lab = copy_lab(golden_lab, tmp_path / "lab")
    assert run(["--lab", str(lab), "rbac"]) == 0
    assert "namespace: cpd30" in capsys.readouterr().out


def test_a_sigterm_the_step_does_not_heed_still_stops_the_script_there(tmp_path):
    """A step that ends well despite the signal (it was about done) must not be followed by the next:
    the pod is going away, and a prune cut off by the kill that follows helps nobody."""
    calls = tmp_path / "calls"
    stub = tmp_path / "bin" / "dvdoctor"
    stub.parent.mkdir()
    stub.write_text(f'#!/bin/sh\necho "$1 started" >> {calls}\ntrap "" TERM\nsleep 1\nexit 0\n')
    stub.chmod(0o755)
    container = container_of(schedule.manifests(NS, "0 2 * * *", IMAGE, 3))
    proc = subprocess.Popen(container["command"], env=script_env(container, tmp_path, stub.parent))
    deadline = time.monotonic() + 20
    while not calls.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 143
    assert calls.read_text().splitlines() == ["backup started"]


def test_settings_too_big_for_the_jobs_environment_are_refused_where_schedule_runs():
    """Break-it review: a 238 KB dvdoctor.yaml passed, and at 02:00 the job failed to start
    (`Argument list too long`): Linux bounds one environment string at 128 KiB."""
    big = {"suppressions": [{"check": "stale-bar-marker", "reason": "r" * 200} for _ in range(1500)]}
    with pytest.raises(UsageError, match="the job would not start"):
        schedule.site_settings(big)
    assert schedule.site_settings({"thresholds": {"max_backup_age_hours": 30}}).startswith("thresholds:")
