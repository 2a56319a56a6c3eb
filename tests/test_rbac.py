"""`dvdoctor rbac` grants what the code calls: check, fix, backup and restore run through the real
Kubernetes client against the local fake API server (tests/fakeapi.py), every HTTP request is read
the way the API server's authorizer reads it (verb, API group, resource), and each must be allowed
by the Role and ClusterRole that `dvdoctor rbac --for COMMAND` prints. A new call that the
permissions table does not cover fails here. Every manifest is checked against Kubernetes' schemas.
"""

from __future__ import annotations

import copy
import io
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

import builders as b
from dvdoctor.cluster import rbac
from dvdoctor.flows import schedule
from dvdoctor.repair.audit import AuditLog
from dvdoctor.facts.backups import backups
from dvdoctor.cluster.kube import connect
from dvdoctor.facts.collect import OPTIONAL_KINDS, collect
from dvdoctor.core.errors import UsageError
from dvdoctor.core.names import DNS1123_SUBDOMAIN
from dvdoctor.facts.model import Facts
from dvdoctor.repair.fixer import FixOptions, load_all as load_fixes
from dvdoctor.cluster.permissions import ALL, BACKUP, CHECK, FIX, LIST, RESTORE, SCHEDULE, allows
from dvdoctor.repair.plan import ActionFailed, Runner, execute
from fakeapi import KINDS, FakeApi
from namespaces import healthy_whose_jobs_end, run_jobs

#: Requests every authenticated user may make, so no Role grants them: the review of one's own
#: rights (ClusterRole system:basic-user) and connect()'s look at the namespace, which goes on
#: when forbidden.
GRANTED_TO_EVERYONE = {
    ("create", "authorization.k8s.io", "selfsubjectrulesreviews"),
    ("get", "", "namespaces"),
}
#: Lists collect makes but goes on without when refused (collect.OPTIONAL_KINDS): a command the
#: table does not grant them to runs with those facts missing, and the checks that need them skip.
TOLERATED = {("list", KINDS[kind][0].split("/")[2] if KINDS[kind][0].startswith("/apis/") else "", kind)
             for kind in OPTIONAL_KINDS}


DISCOVERY = re.compile(r"/version|/api/v1|/apis/[^/]+/[^/]+")


def authz(method: str, path: str, query: dict[str, list[str]]) -> tuple[str, str, str]:
    """(verb, group, resource) of one request, as Kubernetes' RequestInfo resolver derives them."""
    parts = path.strip("/").split("/")
    if parts[0] == "api":
        group, rest = "", parts[2:]
    else:
        group, rest = parts[1], parts[3:]
    if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) > 2:
        rest = rest[2:]
    resource, name, sub = rest[0], rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None
    if sub:
        resource = f"{resource}/{sub}"
    if method == "GET":
        verb = "get" if name else ("watch" if query.get("watch", [""])[-1] in ("true", "1") else "list")
    else:
        verb = {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}[method]
    return verb, group, resource


def uncovered(api: FakeApi, command: str) -> list[tuple[str, str, str]]:
    """The calls made so far that the generated manifests for `command` do not allow."""
    objects = rbac.manifests(b.NS, command, rbac.subject("alice", None, None, b.NS))
    rules = [r for o in objects if o["kind"] in ("Role", "ClusterRole") for r in o["rules"]]
    # discovery (GET /version, /apis/GROUP/VERSION): non-resource URLs every user may read (system:discovery)
    calls = {authz(r.method, r.path, r.query) for r in api.requests if not DISCOVERY.fullmatch(r.path)}
    return sorted(c for c in calls - GRANTED_TO_EVERYONE - TOLERATED if not allows(rules, c[1], c[2], c[0]))


pytestmark = pytest.mark.fake_api(holds=healthy_whose_jobs_end)


def runner(cluster, data: dict, tmp_path: Path) -> Runner:
    return Runner(cluster, Facts(copy.deepcopy(data)), AuditLog(tmp_path / "audit.jsonl"))


@pytest.mark.parametrize("command", [CHECK, LIST])
def test_collecting_facts_needs_only_what_check_and_list_are_granted(api, cluster, command):
    facts = collect(cluster)
    assert facts.namespace == b.NS and "bar_volume" not in facts.data["skipped"]
    assert any(r.method == "POST" and r.path.endswith("/jobs") for r in api.requests)  # the inspection pod ran
    assert uncovered(api, command) == []


def broken_for_every_fix() -> list[tuple[str, dict, dict]]:
    """(fix id, facts in which its check fails, options) for each repair dvdoctor can apply."""
    def case(change) -> dict:
        data = b.healthy()
        change(data)
        return data

    def failed_job(d):
        d["objects"]["jobs"].append(b.job("dv-backup-job", state="failed"))
        d["objects"]["pods"].append(b.job_pod("dv-backup-job", phase="Failed"))
        d["engine"]["markers"] = [b.marker(".bar")]

    def full(d):
        b.add_backup(d["bar_volume"], "2021-01-20-19-27-31", {"dv_backup.tar.gz": 3_184_300_891})
        b.add_backup(d["bar_volume"], "2021-01-21-19-27-31", {"dv_backup_dv_metastore.tar.gz": 31_780_526})
        d["bar_volume"]["df"] = {"total": 8 * b.GIB, "used": 7 * b.GIB, "avail": b.GIB}
        b.find(d, "persistentvolumeclaims", "dv-bar-pvc")["status"]["capacity"]["storage"] = "8Gi"

    def kept_volume(d):  # dv-bar-pvc deleted, its Retain volume Released: the repair binds it again
        b.remove(d, "persistentvolumeclaims", "dv-bar-pvc")
        pv = b.find(d, "persistentvolumes", "pvc-bar-0472")
        pv["spec"]["claimRef"]["uid"] = "old-claim-uid"
        pv["status"] = {"phase": "Released"}

    def broken_link(d):
        b.add_backup(d["bar_volume"], "2021-01-23-02-00-00", {"dv_backup.tar.gz": 100})
        d["bar_volume"]["link"]["target_exists"] = False

    def unattended_backup(d):  # a killed dvdoctor backup's job, half-way
        d.update(b.quiesced(d))
        job = b.job("dv-backup-job", state="active")
        job["metadata"]["annotations"] = {"dvdoctor.io/started-by": "dvdoctor backup", "dvdoctor.io/run": "ops@gone:1"}
        d["objects"]["jobs"].append(job)
        b.add_backup(d["bar_volume"], "2021-01-22-19-30-00", {"dv_backup_dv_metastore.tar.gz": 31_780_526})
        d["engine"]["markers"] = [b.marker(".bar")]

    def not_ready_worker(d):
        d["engine"]["markers"] = [b.marker(".bar")]
        b.find(d, "pods", "dv-worker-0")["status"]["conditions"][1]["status"] = "False"

    return [
        ("side-deployments-running", b.healthy(), {}),
        ("side-deployments-left-down", b.quiesced(b.healthy()), {}),
        ("stale-bar-marker", case(not_ready_worker), {"restart": True}),
        ("restore-marker-left", case(lambda d: d["engine"].update(markers=[b.marker(".bar_restored.txt")])), {}),
        ("bar-permissions", case(lambda d: d["bar_volume"].update(writable=False)), {}),
        ("bar-low-space", case(full), {"keep": 0}),
        ("bar-low-space", case(full), {"size": "60Gi"}),
        ("incomplete-backups", case(full), {}),
        ("broken-backup-symlink", case(broken_link), {}),
        ("bar-job-failed", case(failed_job), {}),
        ("leftover-bar-pods", case(lambda d: d["objects"]["jobs"].append(b.job("dv-list-backups-job", state="active"))), {}),
        ("bar-pvc-missing", case(lambda d: b.remove(d, "persistentvolumeclaims", "dv-bar-pvc")), {}),
        ("bar-pvc-missing", case(kept_volume), {}),
        ("bar-pv-reclaim-delete", case(lambda d: b.find(d, "persistentvolumes", "pvc-bar-0472")["spec"].update(
            persistentVolumeReclaimPolicy="Delete")), {}),
        ("stale-dvdoctor-lock", case(lambda d: d["objects"]["leases"].append(b.stale_lease())), {}),
        ("bar-job-unattended", case(unattended_backup), {}),
    ]


def test_every_cluster_repair_is_exercised():
    local_only = {"init-volume-pod-missing"}  # writes a repaired dvcli.sh on this machine, calls nothing
    local_only |= {"no-recent-copy"}  # runs the copy Job: its calls are checked in test_rbac_copies.py
    assert {fix_id for fix_id, _, _ in broken_for_every_fix()} | local_only == set(load_fixes())


@pytest.mark.long_wait
def test_every_repair_needs_only_what_fix_is_granted(api, cluster, tmp_path):
    for fix_id, data, options in broken_for_every_fix():
        if fix_id == "bar-pvc-missing":
            api.remove("persistentvolumeclaims", "dv-bar-pvc")
            api.put("persistentvolumes", b.find(data, "persistentvolumes", "pvc-bar-0472"), None)
            api.bind_volumes, api.bind_after = True, 0.3  # bound a moment later: the repair watches the claim
        plan = b.fix_plan(fix_id, Facts(copy.deepcopy(data)), FixOptions(**options))
        assert plan.actions, fix_id
        try:
            execute(plan, runner(cluster, data, tmp_path))
        except ActionFailed as exc:
            pytest.fail(f"{fix_id}: {exc}")
    assert uncovered(api, FIX) == []


def test_a_backup_needs_only_what_backup_is_granted(api, cluster, tmp_path):
    from dvdoctor.flows.common import FlowOptions
    from dvdoctor.flows.backup import run_backup

    data = b.healthy()
    options = FlowOptions(timeout=10, log_dir=tmp_path, poll_seconds=0.05)
    run_backup(Facts(copy.deepcopy(data)), options, Console(file=io.StringIO()), runner(cluster, data, tmp_path),
               lambda verify=False, pod=True: collect(cluster, verify=verify, use_pod=pod))
    assert any(r.method == "POST" and "/jobs" in r.path and r.json()["metadata"]["name"] == "dv-backup-job"
               for r in api.requests if r.method == "POST")
    assert any(r.method == "PATCH" and "/deployments/" in r.path for r in api.requests)
    assert uncovered(api, BACKUP) == []


def test_a_failed_backup_cleans_up_with_what_backup_is_granted(api, cluster, tmp_path):
    from dvdoctor.flows.common import FlowOptions
    from dvdoctor.flows.backup import run_backup

    run_jobs(api, fail=True)
    data = b.healthy()
    code = run_backup(Facts(copy.deepcopy(data)), FlowOptions(timeout=10, log_dir=tmp_path, poll_seconds=0.05),
                      Console(file=io.StringIO()), runner(cluster, data, tmp_path),
                      lambda verify=False, pod=True: collect(cluster, verify=verify, use_pod=pod))
    assert code == 1
    assert api.requests_to("DELETE", r"/jobs/dv-backup-job$")
    assert uncovered(api, BACKUP) == []


def test_a_restore_needs_only_what_restore_is_granted(api, cluster, tmp_path):
    from dvdoctor.flows.common import FlowOptions
    from dvdoctor.flows.restore import run_restore

    data = b.healthy()
    facts = Facts(copy.deepcopy(data))
    after = b.healthy()
    after["engine"]["markers"] = [b.marker(".bar_restored.txt")]
    run_restore(facts, backups(facts.bar, facts.names)[-1], FlowOptions(timeout=10, log_dir=tmp_path, poll_seconds=0.05,
                                                                       ready_timeout=0),
                Console(file=io.StringIO()), runner(cluster, data, tmp_path), lambda pod=True: Facts(copy.deepcopy(after)))
    assert any(r.method == "POST" and r.path.endswith("/jobs") and r.json()["metadata"]["name"] == "dv-restore-job"
               for r in api.requests if r.method == "POST")
    assert api.requests_to("GET", r"/pods/dv-engine-0/exec$")  # the post-restore steps in dv-engine-0
    assert uncovered(api, RESTORE) == []


def test_scheduling_needs_only_what_schedule_is_granted(api, tmp_path, monkeypatch, capsys):
    from dvdoctor.cli import run

    monkeypatch.setenv("KUBECONFIG", str(api.kubeconfig(tmp_path / "config", namespace=b.NS)))
    monkeypatch.setenv("DVDOCTOR_AUDIT", str(tmp_path / "audit.jsonl"))
    monkeypatch.delenv("DVDOCTOR_LAB", raising=False)
    for cron, extra in (("0 2 * * *", []), ("0 3 * * *", []), ("@hourly", ["--check-only"]), ("@daily", ["--check-only"])):
        code = run(["-n", b.NS, "schedule", "--cron", cron, "--image", b.IMAGE, "--apply", *extra])
        assert code == 0, capsys.readouterr()
    assert api.requests_to("POST", r"/clusterrolebindings$") and api.requests_to("PATCH", r"/cronjobs/dvdoctor-check$")
    assert uncovered(api, SCHEDULE) == []


@pytest.mark.parametrize("check_only", [False, True])
def test_who_may_schedule_holds_every_right_the_schedule_grants(check_only):
    """Kubernetes refuses to create a Role (or bind one) granting rights the creator lacks."""
    granted = [o for o in schedule.manifests(b.NS, "@daily", b.IMAGE, check_only=check_only)
               if o["kind"] in ("Role", "ClusterRole")]
    assert granted
    held = [r for o in rbac.manifests(b.NS, SCHEDULE, rbac.subject("alice", None, None, b.NS))
            if o["kind"] in ("Role", "ClusterRole") for r in o["rules"]]
    for rule in (r for o in granted for r in o["rules"]):
        for group, resource, verb in ((g, res, v) for g in rule["apiGroups"] for res in rule["resources"] for v in rule["verbs"]):
            assert allows(held, group, resource, verb), (group, resource, verb)


def test_the_authorizer_reading_of_requests():
    assert authz("GET", "/api/v1/namespaces/cpd30/pods", {"watch": ["true"]}) == ("watch", "", "pods")
    assert authz("GET", "/api/v1/namespaces/cpd30/pods/dv-engine-0/exec", {}) == ("get", "", "pods/exec")
    assert authz("PATCH", "/api/v1/persistentvolumes/pvc-1", {}) == ("patch", "", "persistentvolumes")
    assert authz("DELETE", "/apis/batch/v1/namespaces/cpd30/jobs/x", {}) == ("delete", "batch", "jobs")
    assert authz("GET", "/api/v1/namespaces/cpd30", {}) == ("get", "", "namespaces")


# ---- the manifests -------------------------------------------------------------------------------


@pytest.mark.parametrize("target", rbac.TARGETS)
@pytest.mark.parametrize("who", [("alice", None, None), (None, "dv-admins", None), (None, None, None)])
def test_every_manifest_is_valid_kubernetes(target, who):
    objects = rbac.manifests(b.NS, target, rbac.subject(*who, b.NS))
    for obj in objects:
        for version in ("1.25.0", kubernetes_validate.latest_version()):
            kubernetes_validate.validate(obj, version, strict=True)
    kinds = [o["kind"] for o in objects if o["kind"] != "ServiceAccount"]
    cluster_part = ["ClusterRole", "ClusterRoleBinding"] if rbac.rules(rbac.commands_for(target), True) else []
    assert kinds == ["Role", "RoleBinding", *cluster_part]


def test_check_is_read_only_but_for_its_own_inspection_job():
    [role] = [o for o in rbac.manifests(b.NS, CHECK, rbac.subject("alice", None, None, b.NS)) if o["kind"] == "Role"]
    writes = {(res, v) for r in role["rules"] for res in r["resources"] for v in r["verbs"]
              if v in ("create", "patch", "update", "delete")}
    assert writes == {("jobs", "create"), ("jobs", "delete"), ("pods/exec", "create")}
    assert not any("*" in r["verbs"] + r["resources"] + r["apiGroups"] for r in role["rules"])


def test_the_cluster_part_is_optional():
    kinds = [o["kind"] for o in rbac.manifests(b.NS, "all", rbac.subject("alice", None, None, b.NS), cluster_reads=False)]
    assert kinds == ["Role", "RoleBinding"]


def test_a_service_account_subject_comes_with_the_account():
    objects = rbac.manifests(b.NS, BACKUP, rbac.subject(None, None, "dv-backup-bot", b.NS))
    assert objects[0]["kind"] == "ServiceAccount" and objects[0]["metadata"]["name"] == "dv-backup-bot"
    binding = next(o for o in objects if o["kind"] == "RoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "dv-backup-bot", "namespace": b.NS}]


def test_bad_input_is_one_usage_error():
    with pytest.raises(UsageError, match="give one of --user, --group, --service-account"):
        rbac.subject("alice", "admins", None, b.NS)
    with pytest.raises(UsageError, match=r"--for 'prune': allowed: check, fix, backup, restore, list, copy, schedule, all"):
        rbac.commands_for("prune")


def invoke(args: list[str]):
    from dvdoctor.cli import app
    from dvdoctor.cli import ops_cmd  # noqa: F401  (registers `rbac`)

    return CliRunner().invoke(app, args)


def test_the_command_prints_yaml_documents_and_a_json_list():
    from dvdoctor.cli.ops_cmd import RbacTarget

    assert tuple(t.value for t in RbacTarget) == rbac.TARGETS
    result = invoke(["-n", b.NS, "rbac", "--for", "fix", "--user", "alice"])
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.stdout))
    assert [d["kind"] for d in docs] == ["Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"]
    assert docs[0]["metadata"] == {"name": "dvdoctor-fix", "namespace": b.NS, "labels": {
        "app.kubernetes.io/managed-by": "dvdoctor"}, "annotations": {"dvdoctor.io/grants": "what `dvdoctor fix` needs"}}
    assert docs[2]["metadata"]["name"] == f"dvdoctor-{b.NS}-fix"
    assert {"apiGroups": [""], "resources": ["persistentvolumes"], "verbs": ["get", "list", "patch"]} in docs[2]["rules"]
    import json

    listing = json.loads(invoke(["-n", b.NS, "rbac", "-o", "json", "--no-cluster"]).stdout)
    assert listing["kind"] == "List" and [i["kind"] for i in listing["items"]] == ["ServiceAccount", "Role", "RoleBinding"]
    for item in listing["items"]:  # kubernetes-validate has no schema for List itself
        kubernetes_validate.validate(item, kubernetes_validate.latest_version(), strict=True)


def test_the_command_needs_a_namespace():
    result = invoke(["rbac"])
    assert isinstance(result.exception, UsageError) and "-n NAMESPACE" in str(result.exception)


def test_all_covers_every_command():
    assert set(rbac.commands_for("all")) == set(ALL)


# ---- one binding per subject: applying one never replaces another's -------------------------------

DNS_SUBDOMAIN = DNS1123_SUBDOMAIN  # the product's one DNS-1123 pattern (dvdoctor/core/names.py)


def _bindings(objects: list[dict]) -> dict[str, str]:
    return {o["kind"]: o["metadata"]["name"] for o in objects if o["kind"].endswith("Binding")}


def test_each_binding_is_named_after_its_subject():
    sa = _bindings(rbac.manifests("cpd30", CHECK, rbac.subject(None, None, "dvchk", "cpd30")))
    assert sa == {"RoleBinding": "dvdoctor-check-sa-dvchk", "ClusterRoleBinding": "dvdoctor-cpd30-check-sa-dvchk"}
    assert _bindings(rbac.manifests("cpd30", CHECK, rbac.subject("alice", None, None, "cpd30")))["RoleBinding"] \
        == "dvdoctor-check-user-alice"
    assert _bindings(rbac.manifests("cpd30", BACKUP, rbac.subject(None, "dv-admins", None, "cpd30")))["RoleBinding"] \
        == "dvdoctor-backup-group-dv-admins"


def test_the_schedules_own_binding_keeps_its_name_and_no_other_subject_takes_it():
    """The break-it repro: `schedule --check-only --apply`, then `rbac --for check --service-account dvchk`."""
    own = _bindings(schedule.manifests("cpd30", "0 2 * * *", "reg/d:1", check_only=True))
    assert own == {"RoleBinding": "dvdoctor-check", "ClusterRoleBinding": "dvdoctor-cpd30-check"}
    for who in [(None, None, "dvchk"), ("alice", None, None), (None, "g", None), (None, None, None)]:
        names = set(_bindings(rbac.manifests("cpd30", CHECK, rbac.subject(*who, "cpd30"))).values())
        assert not names & set(own.values()), who


@pytest.mark.parametrize("user", ["kube:admin", "Alice", "alice@example.com", "system:serviceaccount:x:y", "-", "a" * 300])
def test_odd_subject_names_give_safe_distinct_binding_names(user):
    name = rbac.binding_name("dvdoctor-check", {"kind": "User", "name": user})
    assert len(name) <= 253 and DNS_SUBDOMAIN.fullmatch(name), name
    assert name != rbac.binding_name("dvdoctor-check", {"kind": "User", "name": "alice"})
    assert name != rbac.binding_name("dvdoctor-check", {"kind": "Group", "name": user})
    assert name == rbac.binding_name("dvdoctor-check", {"kind": "User", "name": user})  # stable: re-apply updates it
    obj = _bindings(rbac.manifests("cpd30", "all", rbac.subject(user, None, None, "cpd30")))
    assert all(len(n) <= 253 and DNS_SUBDOMAIN.fullmatch(n) for n in obj.values()), obj


@pytest.mark.parametrize("option", ["--user", "--group", "--service-account"])
@pytest.mark.parametrize("value", ["", "  ", "a\nkind: x", "tab\there"])
def test_an_empty_or_control_character_subject_is_refused(option, value, capsys):
    """`rbac --user ''` bound the default service account instead, silently (break-it review)."""
    from dvdoctor.cli import run

    assert run(["-n", "cpd30", "rbac", option, value]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{option} {value!r}" in err
