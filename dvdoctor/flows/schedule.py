"""Scheduled backups in the cluster: a CronJob running dvdoctor's gated backup and a prune.

The runbook notes that customers may schedule dvcli.sh themselves; scheduling dvdoctor instead
keeps the preflight gate, the quiesce/unquiesce and the retention rule on every run. The CronJob
never overlaps itself (a second backup while one runs would take DV down twice) and never retries
a failed run (each try takes DV offline); the job log holds the whole report. Its service account
gets the Role `dvdoctor rbac --for backup` prints (prune needs no more than backup), or the check
Role with --check-only. The script is static text; the number to keep reaches it in env.

`--apply` turns the same objects into a plan for the one executor (each change audited, under the
namespace's lock): what is missing is created, what differs is merge-patched, and a namespace that
already holds them gives an empty plan, so applying twice changes nothing the second time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..cluster.port import Cluster
from ..core.errors import UsageError
from ..core.names import OWNED_LABEL, OWNED_VALUE
from ..facts.model import Facts
from ..repair.plan import Create, Patch, Plan, execute_all_or_nothing
from ..repair.runner import open_runner
from ..cluster.permissions import BACKUP, CHECK
from ..cluster.rbac import manifests as rbac_manifests
from ..cluster.rbac import subject

#: Every script starts with `step`, which runs one dvdoctor command as the shell's child and passes
#: the kubelet's SIGTERM on to it. The shell is the container's PID 1, and PID 1 ignores a signal it
#: has no handler for: without the trap a deleted pod, a drained node or the job's deadline never
#: reached dvdoctor, which was killed 30 s later mid-backup instead of aborting cleanly (DV's job
#: stopped, its partial folder and marker removed, the side deployments back). A child started in
#: the background ignores SIGINT, so it is sent SIGTERM, which dvdoctor treats as Ctrl-C. A signal
#: between two steps, or one the step ended without heeding, stops the script there: no later step
#: starts (status 143, as a shell killed by SIGTERM says).
STEP = ('stopped=; child=; trap \'stopped=1; [ -z "$child" ] || kill -TERM "$child" 2>/dev/null\' TERM INT HUP; '
        'step() { [ -z "$stopped" ] || return 143; dvdoctor "$@" & child=$!; '
        '[ -z "$stopped" ] || kill -TERM "$child" 2>/dev/null; '
        'while wait "$child"; rc=$?; kill -0 "$child" 2>/dev/null; do :; done; child=; '
        '[ -z "$stopped" ] || [ "$rc" -ne 0 ] || rc=143; return "$rc"; }; ')
#: The site's dvdoctor.yaml (names, thresholds, bar, suppressions), which `schedule` read where it
#: ran, written from env into the settings file every step reads: a renamed claim or a shorter list
#: of side deployments must hold at 02:00 too. HOME is /tmp (restricted SCCs give no home).
SETTINGS = 'printf "%s\\n" "${DVDOCTOR_SETTINGS:-}" > "$HOME/dvdoctor.yaml" && export DVDOCTOR_CONFIG="$HOME/dvdoctor.yaml"'
#: What the container runs: the gated backup, and a prune only after a good backup.
BACKUP_SCRIPT = STEP + SETTINGS + ' && step backup --yes --log-dir "$HOME" && step prune --keep "$DVDOCTOR_KEEP" --yes'
#: With --copy: the copies settings added from env (values never in the script's text), then back
#: up, copy, and prune both tiers; each step only after the one before it succeeded.
#: (The key `secret` is a printf argument, not text before the value: written `secret: %s`, the
#: redaction pass would read it as a secret and cut the script's text in the audit log.)
COPY_SCRIPT = (STEP + SETTINGS
               + ' && printf "copies:\\n  %s: %s\\n  image: %s\\n" secret "$DVDOCTOR_COPY_SECRET" "$DVDOCTOR_IMAGE"'
               ' >> "$HOME/dvdoctor.yaml"'
               ' && { [ -z "${DVDOCTOR_COPY_CLAIM:-}" ] || printf "  claim: %s\\n" "$DVDOCTOR_COPY_CLAIM" >> "$HOME/dvdoctor.yaml"; }'
               ' && step backup --yes --log-dir "$HOME" && step copy --yes'
               ' && step prune --keep "$DVDOCTOR_KEEP" --yes'
               ' && step prune --copies --keep-daily "$DVDOCTOR_KEEP_DAILY" --keep-weekly "$DVDOCTOR_KEEP_WEEKLY"'
               ' --keep-monthly "$DVDOCTOR_KEEP_MONTHLY" --yes')
#: --check-only: the report alone, as JSON in the job's log.
CHECK_SCRIPT = STEP + SETTINGS + ' && step check -o json'
_CRON_FIELD = re.compile(r"[0-9A-Za-z*/,?-]+")
#: Fields separated by spaces only, nothing before or after: a newline or a tab is no schedule.
_CRON_LINE = re.compile(r"[^ \s]+(?: +[^ \s]+)*")
_CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
#: The CronJob API versions `schedule` prints: batch/v1beta1 is what DV 1.5.0's platforms serve
#: (Kubernetes 1.18 to 1.20: OpenShift 4.5 to 4.7), batch/v1 what Kubernetes 1.21 and later serve
#: (1.25 and later serve only that). `--apply` asks the server instead.
CRONJOB_APIS = ("batch/v1beta1", "batch/v1")
#: A backup of DV took 38 minutes in the runbook; the job is stopped well after dvdoctor's own timeout.
DEADLINE_SECONDS = 3 * 3600
#: How long the kubelet waits after its SIGTERM before it kills: dvdoctor's abort stops DV's job (and
#: waits out that pod's own grace), removes the partial folder from a short-lived pod, which may have
#: to be scheduled and pulled, and brings the side deployments back. The default 30 s cuts it short.
GRACE_SECONDS = 600


#: The values each of the five cron fields allows: minute, hour, day of month, month, day of week.
_CRON_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


def _in_bounds(field: str, low: int, high: int) -> bool:
    """Every number of a field (not a /step) lies in its range, as the CronJob controller requires."""
    for part in field.split(","):
        values = part.split("/", 1)[0]
        if any(not low <= int(v) <= high for v in re.findall(r"\d+", values)):
            return False
    return True


#: The most days each month has (February's in a leap year).
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _listed(field: str, low: int, high: int) -> set[int] | None:
    """The numbers a field of plain numbers, ranges and lists names; None for one with `*`, a step,
    a name or `?` (those are taken as they are)."""
    out: set[int] = set()
    for part in field.split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            return None
        first, last = int(m.group(1)), int(m.group(2) or m.group(1))
        out |= set(range(max(first, low), min(last, high) + 1))
    return out


def _never(fields: list[str]) -> bool:
    """A day of the month no month named has (`0 2 31 2 *`: 31 February): the CronJob never runs.
    Only when the weekday is `*`: with one, cron runs on either day."""
    days, months = _listed(fields[2], 1, 31), _listed(fields[3], 1, 12)
    if fields[4] != "*" or days is None:
        return False
    return not any(d <= _MONTH_DAYS[m - 1] for d in days for m in (months if months is not None else range(1, 13)))


def valid_cron(expr: str) -> str:
    """A CronJob schedule: five fields (minute hour day month weekday) or a macro like @daily."""
    fields = expr.split(" ")
    fields = [f for f in fields if f]
    if expr in _CRON_MACROS or (_CRON_LINE.fullmatch(expr) and len(fields) == 5
                                and all(_CRON_FIELD.fullmatch(f) for f in fields)
                                and all(_in_bounds(f, *b) for f, b in zip(fields, _CRON_BOUNDS))):
        if expr not in _CRON_MACROS and _never(fields):
            raise UsageError(f"--cron {expr!r}: no month named has that day, so it would never run "
                             "(February has 29 days at most; April, June, September and November 30)")
        return expr
    raise UsageError(f"--cron {expr!r}: give five fields, minute (0-59) hour (0-23) day-of-month (1-31) "
                     f"month (1-12) day-of-week (0-7) (e.g. \"0 2 * * *\"), or one of {', '.join(_CRON_MACROS)}")


#: [registry[:port]/]path[:tag][@sha256:digest], path components lower-case as registries require:
#: a reference the kubelet cannot pull would only fail at 02:00, in the job's events.
_IMAGE = re.compile(r"^(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*"
                    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$")


def valid_image(image: str) -> str:
    if not _IMAGE.fullmatch(image):
        raise UsageError(f"--image {image!r}: give a container image reference, like registry.example/dvdoctor:0.1.0 "
                         "(lower-case path, optional :tag and @sha256:digest)")
    return image


@dataclass(frozen=True)
class CopyPolicy:
    """`schedule --copy`: copies go to the repository of this Secret, kept by restic's policy."""

    secret: str
    daily: int = 7
    weekly: int = 4
    monthly: int = 6
    #: The claim a repository path lives on (copies.claim), passed on to the copy Jobs the run starts.
    claim: str | None = None


def cronjob(namespace: str, cron: str, image: str, keep: int, check_only: bool, account: str,
            copies: CopyPolicy | None = None, api_version: str = CRONJOB_APIS[0], site: str = "") -> dict:
    """The CronJob; `site` is the site's settings as YAML (site_settings), which each run reads."""
    name = "dvdoctor-check" if check_only else "dvdoctor-backup"
    labels = {OWNED_LABEL: OWNED_VALUE, "app.kubernetes.io/component": "schedule"}
    env = [
        # restricted SCCs run the pod as an arbitrary uid with no home: keep dvdoctor's state in /tmp
        {"name": "HOME", "value": "/tmp"},
        {"name": "XDG_STATE_HOME", "value": "/tmp"},
    ]
    if site:  # none without a config file: the API server drops an empty value, so a re-apply would differ
        env.append({"name": "DVDOCTOR_SETTINGS", "value": site})
    if check_only:
        command = {"command": ["sh", "-c", CHECK_SCRIPT]}
    elif copies is not None:
        command = {"command": ["sh", "-c", COPY_SCRIPT]}
        env += [{"name": "DVDOCTOR_KEEP", "value": str(keep)}, {"name": "DVDOCTOR_COPY_SECRET", "value": copies.secret},
                {"name": "DVDOCTOR_IMAGE", "value": image},
                {"name": "DVDOCTOR_KEEP_DAILY", "value": str(copies.daily)},
                {"name": "DVDOCTOR_KEEP_WEEKLY", "value": str(copies.weekly)},
                {"name": "DVDOCTOR_KEEP_MONTHLY", "value": str(copies.monthly)}]
        if copies.claim:
            env.append({"name": "DVDOCTOR_COPY_CLAIM", "value": copies.claim})
    else:
        command = {"command": ["sh", "-c", BACKUP_SCRIPT]}
        env.append({"name": "DVDOCTOR_KEEP", "value": str(keep)})
    container = {
        "name": "dvdoctor",
        "image": image,
        **command,
        "env": env,
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
    }
    return {
        "apiVersion": api_version,
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "schedule": cron,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 3600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": labels},
                "spec": {
                    "backoffLimit": 0,
                    "activeDeadlineSeconds": DEADLINE_SECONDS,
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "serviceAccountName": account,
                            "restartPolicy": "Never",
                            "terminationGracePeriodSeconds": GRACE_SECONDS,
                            "securityContext": {"runAsNonRoot": True},
                            "containers": [container],
                        },
                    },
                },
            },
        },
    }


#: The site's settings the CronJob carries: one environment string, which Linux bounds at 128 KiB.
MAX_SETTINGS_BYTES = 100 * 1024


def site_settings(document: dict) -> str:
    """The site's settings for the scheduled runs, as YAML: the config file where `schedule` ran, less
    `copies` (the scheduled run's copies are the Secret's, added by its script; a local repository
    or password file means nothing in the job, and a repository URL may carry credentials)."""
    import yaml

    kept = {k: v for k, v in document.items() if k != "copies"}
    text = yaml.safe_dump(kept, default_flow_style=False, sort_keys=False) if kept else ""
    if len(text.encode()) > MAX_SETTINGS_BYTES:
        raise UsageError(f"dvdoctor.yaml: its settings come to {len(text.encode()) // 1024} KiB, more than the "
                         f"{MAX_SETTINGS_BYTES // 1024} KiB the scheduled job can take in one environment "
                         "variable (Linux's bound for one is 128 KiB): the job would not start")
    return text


def manifests(namespace: str, cron: str, image: str, keep: int = 2, check_only: bool = False,
              account: str = "dvdoctor", cluster_reads: bool = True, copies: CopyPolicy | None = None,
              cronjob_api: str = CRONJOB_APIS[0], site: str = "") -> list[dict]:
    """ServiceAccount, Role, RoleBinding [, ClusterRole, ClusterRoleBinding], CronJob.

    The CronJob is in `cronjob_api` (default batch/v1beta1, what DV's platforms serve); the account
    and its rights come first because the job needs them, so a server that serves another version
    refuses only the CronJob (see `printed_header`)."""
    if cronjob_api not in CRONJOB_APIS:
        raise UsageError(f"--cronjob-api {cronjob_api!r}: allowed: {', '.join(CRONJOB_APIS)}")
    if keep < 1:
        raise UsageError(f"--keep {keep}: keep at least 1 complete backup")
    if keep > 100_000:
        raise UsageError(f"--keep {keep}: keep at most 100000 backups")
    if copies is not None and check_only:
        raise UsageError("--copy and --check-only: a check-only schedule takes no backup to copy")
    if copies is not None and max(copies.daily, copies.weekly, copies.monthly) > 100_000:
        raise UsageError("--copy-keep-daily/weekly/monthly: keep at most 100000 copies of each")
    if copies is not None and not any((copies.daily, copies.weekly, copies.monthly)):
        raise UsageError("--copy: keep at least one copy a day, week or month (--copy-keep-daily N ≥ 1)")
    target = CHECK if check_only else BACKUP
    # the schedule's own binding keeps its plain name: re-applying a schedule updates it in place
    objects = rbac_manifests(namespace, target, subject(None, None, account, namespace), cluster_reads,
                             per_subject=False)
    return objects + [cronjob(namespace, valid_cron(cron), valid_image(image), keep, check_only, account, copies,
                              cronjob_api, site)]


def printed_header(cronjob_api: str) -> str:
    """The YAML comment the printed manifests start with: which CronJob version, why, and what a
    mismatch does (`kubectl apply` still creates the other objects, so the order cannot prevent it)."""
    if cronjob_api == "batch/v1beta1":
        why = ("what DV 1.5.0's platforms serve (Kubernetes 1.18 to 1.20: OpenShift 4.5 to 4.7); "
               "for Kubernetes 1.21 and later print with --cronjob-api batch/v1")
    else:
        why = ("what Kubernetes 1.21 and later serve (chosen with --cronjob-api); "
               "Kubernetes 1.18 to 1.20 (OpenShift 4.5 to 4.7) need the default, batch/v1beta1")
    return (f"# CronJob as {cronjob_api}: {why}.\n"
            "# If `oc apply` says \"no matches for kind CronJob\", the other objects were created anyway: print "
            "again with the other --cronjob-api and apply again (applying twice changes nothing), or use --apply, "
            "which asks the server.\n")


#: Kind -> the port's plural name, for every object `manifests` returns.
PLURALS = {"ServiceAccount": "serviceaccounts", "Role": "roles", "RoleBinding": "rolebindings",
           "ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings", "CronJob": "cronjobs"}
BINDINGS = ("RoleBinding", "ClusterRoleBinding")


def covers(have: object, want: object) -> bool:
    """Whether `have` already holds every value of `want`.

    The API server adds defaults and bookkeeping (metadata.uid, a CronJob's `suspend`, each
    container's `imagePullPolicy`, a service account's token secrets) that are not differences.
    Lists must match item by item, since a merge patch can only replace a list whole.
    """
    if isinstance(want, dict):
        return isinstance(have, dict) and all(covers(have.get(k), v) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and len(have) == len(want) and all(map(covers, have, want))
    return have == want


def difference(have: dict, want: dict) -> dict:
    """The smallest merge patch (RFC 7386) after which `have` covers `want`; empty when it does."""
    patch: dict = {}
    for key, value in want.items():
        if covers(have.get(key), value):
            continue
        inner = have.get(key)
        patch[key] = difference(inner, value) if isinstance(value, dict) and isinstance(inner, dict) else value
    return patch


def _fields(patch: dict, prefix: str = "") -> list[str]:
    """The dotted paths a patch sets (`spec.schedule`), to say in plain words what an update changes."""
    out: list[str] = []
    for key, value in patch.items():
        path = f"{prefix}.{key}" if prefix else key
        out += _fields(value, path) if isinstance(value, dict) and value else [path]
    return out


def apply_plan(cluster: Cluster, objects: list[dict]) -> Plan:
    """Create what is missing, merge-patch what differs, in the order given (the CronJob's service
    account and rights exist before it can first run).

    A binding only gains subjects: one named like ours may already bind the same Role to a person
    (`dvdoctor rbac --for backup --user alice`), and applying a schedule must not take that away.
    """
    plan = Plan("schedule")
    for want in objects:
        kind, name = PLURALS[want["kind"]], want["metadata"]["name"]
        served = cluster.served(kind)
        if served is None:
            raise UsageError(f"this API server serves no {want['kind']} API dvdoctor knows (it is older than "
                             "Kubernetes 1.18 / OpenShift 4.5): schedule the job by hand, or print the manifests and adapt them")
        want = {**want, "apiVersion": served}  # CronJob: batch/v1 from Kubernetes 1.21, batch/v1beta1 before
        what = f"{want['kind'].lower()}/{name}"
        have = cluster.get(kind, name)
        if have is None:
            plan.actions.append(Create(kind, want, f"create {what}"))
            continue
        if want["kind"] in BINDINGS:
            held = list(have.get("subjects") or [])
            want = {**want, "subjects": held + [s for s in want["subjects"] if not any(covers(h, s) for h in held)]}
        patch = difference(have, want)
        if patch:
            plan.actions.append(Patch(kind, name, patch, f"update {what}: {', '.join(_fields(patch))}"))
    return plan


def apply_schedule(cluster: Cluster, plan: Plan, audit_file: Path | None, progress: Callable[[str], None]) -> Path:
    """Apply the schedule's plan as one (every object tried with dryRun first; a refusal half-way
    undoes what was made), each change audited; where the audit log is. An action that fails raises
    ActionFailed. The caller holds the lock it made the plan under."""
    # the actions need only the port; the facts carry the namespace the audit log names
    runner = open_runner(cluster, Facts({"namespace": cluster.namespace}), audit_file, progress)
    execute_all_or_nothing(plan, runner)
    return runner.audit.path
