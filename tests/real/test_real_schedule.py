"""`schedule --apply` on a Kubernetes 1.20 server: the CronJob goes where the server serves it
(batch/v1beta1 before 1.21), and the apply is all or nothing: a refused object creates nothing."""

from __future__ import annotations

IMAGE = "image-registry.openshift-image-registry.svc:5000/cpd30/dvdoctor:0.1.0"


def apply(dv, *extra: str, kubeconfig=None):
    return dv.dvdoctor("schedule", "--cron", "0 2 * * *", "--image", IMAGE, "--apply", "--no-cluster", *extra,
                       kubeconfig=kubeconfig)


def owned(dv, kind: str) -> list[str]:
    return [o["metadata"]["name"] for o in dv.api.list(kind, dv.name, "app.kubernetes.io/managed-by=dvdoctor")]


def test_schedule_apply_creates_the_cronjob_the_server_serves(dv):
    result = apply(dv)
    assert result.rc == 0, result.output
    cron = dv.api.get("CronJob", dv.name, "dvdoctor-backup")  # batch/v1beta1: 1.20 has no batch/v1 CronJob
    assert cron is not None and cron["apiVersion"] == "batch/v1beta1", result.output
    assert cron["spec"]["schedule"] == "0 2 * * *" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert owned(dv, "Role") == ["dvdoctor-backup"] and owned(dv, "RoleBinding") == ["dvdoctor-backup"]
    again = apply(dv)
    assert again.rc == 0 and "nothing to do" in again.output, again.output


def test_a_refused_object_creates_none_of_them(dv):
    # the namespace's quota allows no CronJob: admission refuses it, in the dry run as for real
    dv.api.create({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "no-cronjobs"},
                   "spec": {"hard": {"count/cronjobs.batch": "0"}}}, dv.name)
    dv.api.wait("the quota to be counted", lambda: (dv.api.get("ResourceQuota", dv.name, "no-cronjobs").get("status") or {}).get("used"))
    result = apply(dv)
    assert result.rc == 1, result.output
    assert "nothing was changed" in result.output and "cronjob/dvdoctor-backup" in result.output, result.output
    assert "exceeded quota" in result.output, result.output
    for kind in ("Role", "RoleBinding", "CronJob"):
        assert owned(dv, kind) == [], (kind, result.output)
    assert dv.api.get("ServiceAccount", dv.name, "dvdoctor") is None
    assert dv.api.get("Lease", dv.name, "dvdoctor-lock") is None


def account(dv, name: str, rules: list[dict]):
    """A service account bound to a Role with these rules; its kubeconfig."""
    dv.apply([
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name}, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": dv.name}]},
    ])
    return dv.service_account_kubeconfig(name)


def schedule_rules(dv) -> list[dict]:
    granted = dv.dvdoctor("rbac", "--for", "schedule", "--no-cluster", "-o", "json")
    assert granted.rc == 0, granted.output
    return next(o for o in granted.json["items"] if o["kind"] == "Role")["rules"]


def test_a_failure_half_way_undoes_what_was_created_and_says_so(dv):
    # An account that may create any Role (escalate) but lacks one right of the backup Role and
    # may not bind it: the Role is created, the RoleBinding refused by RBAC's escalation check.
    # The binding's dry run cannot tell before its Role exists, so the refusal comes half-way.
    rules = [dict(r, verbs=[v for v in r["verbs"] if v != "patch"]) if "deployments" in r["resources"] else r
             for r in schedule_rules(dv)]
    rules.append({"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["escalate"]})
    result = apply(dv, kubeconfig=account(dv, "half", rules))
    assert result.rc == 1, result.output
    assert "create rolebinding/dvdoctor-backup" in result.output and "forbidden" in result.output, result.output
    assert "undone: delete roles/dvdoctor-backup again, delete serviceaccounts/dvdoctor again" in result.output, result.output
    assert dv.api.get("Role", dv.name, "dvdoctor-backup") is None
    assert dv.api.get("ServiceAccount", dv.name, "dvdoctor") is None
    assert dv.api.get("CronJob", dv.name, "dvdoctor-backup") is None
    assert dv.api.get("Lease", dv.name, "dvdoctor-lock") is None


def test_rights_the_account_cannot_grant_are_refused_before_anything_is_created(dv):
    # Without one backup right and without escalate, even the Role is refused, in the dry run.
    rules = [dict(r, verbs=[v for v in r["verbs"] if v != "patch"]) if "deployments" in r["resources"] else r
             for r in schedule_rules(dv)]
    result = apply(dv, kubeconfig=account(dv, "short", rules))
    assert result.rc == 1, result.output
    assert "nothing was changed" in result.output and "role/dvdoctor-backup" in result.output, result.output
    assert dv.api.get("ServiceAccount", dv.name, "dvdoctor") is None
    assert owned(dv, "Role") == [] and owned(dv, "CronJob") == []


def test_the_schedule_account_applies_the_schedule_through_the_real_authorizer(dv):
    result = apply(dv, kubeconfig=account(dv, "scheduler", schedule_rules(dv)))
    assert result.rc == 0, result.output
    assert dv.api.get("CronJob", dv.name, "dvdoctor-backup") is not None
    assert "forbidden" not in result.output.lower()


def test_the_facts_say_what_the_server_is_and_serves(dv):
    import json

    out = dv.home / "facts.json"
    assert dv.dvdoctor("collect", "--no-pod", "-o", str(out)).rc == 0
    facts = json.loads(out.read_text())
    assert facts["server"] == {"version": "1.20", "lease": "coordination.k8s.io/v1"}
    report = dv.dvdoctor("check", "--no-pod", "--only", "server-too-old", "-o", "json").json
    assert report["results"][0]["status"] == "pass"
