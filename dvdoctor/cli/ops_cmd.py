"""Commands for the people who set dvdoctor up: `rbac` prints the least rights each command needs,
`schedule` prints (or with --apply creates) a CronJob that runs backups (or checks) in the cluster."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from ..core.names import valid_name
from . import app, examples
from .numbers import number_option
from .context import Options
from .locking import break_lock_option


class RbacTarget(str, Enum):
    check = "check"
    fix = "fix"
    backup = "backup"
    restore = "restore"
    list = "list"
    copy = "copy"
    schedule = "schedule"
    all = "all"


class CronJobApi(str, Enum):
    """The CronJob API versions `schedule` can print (dvdoctor.flows.schedule.CRONJOB_APIS)."""

    v1beta1 = "batch/v1beta1"
    v1 = "batch/v1"


class ManifestFormat(str, Enum):
    yaml = "yaml"
    json = "json"


@app.command(short_help="Print the least Role and bindings a dvdoctor command needs.", epilog=examples("dvdoctor -n cpd30 rbac --for backup --user alice | oc apply -f -"))
def rbac(
    ctx: typer.Context,
    target: RbacTarget = typer.Option(RbacTarget.all, "--for", metavar="COMMAND", help="The command to grant rights for, or all of them."),
    user: Optional[str] = typer.Option(None, "--user", metavar="USER", help="Bind the Role to this user."),
    group: Optional[str] = typer.Option(None, "--group", metavar="GROUP", help="Bind the Role to this group."),
    service_account: Optional[str] = typer.Option(
        None, "--service-account", metavar="NAME", help="Bind the Role to this service account in DV's namespace (default: dvdoctor, created too)."
    ),
    cluster_reads: bool = typer.Option(
        True, "--cluster/--no-cluster",
        help="Also grant the cluster-scoped part (persistentvolumes, storageclasses) with a ClusterRole; "
        "without it the checks that need it are skipped.",
    ),
    output: ManifestFormat = typer.Option(ManifestFormat.yaml, "-o", "--output", metavar="FORMAT", help="yaml documents or a json List."),
) -> None:
    """Print the Role and RoleBinding (and ClusterRole) with the least rights a dvdoctor command needs.

    Apply them with `oc apply -f -`; nothing is sent to the cluster by this command.
    """
    from ..core.errors import UsageError
    from ..cluster.rbac import manifests, subject

    opts: Options = ctx.obj
    # a lab knows its namespace, as `schedule` takes it; a cluster is told which
    namespace_given = opts.namespace or (opts.open_cluster().namespace if opts.lab else None)
    if not namespace_given:
        raise UsageError("dvdoctor rbac needs DV's namespace: -n NAMESPACE")
    namespace = valid_name(namespace_given, "namespace")
    if service_account:
        valid_name(service_account, "--service-account", subdomain=True)
    _print(manifests(namespace, target.value, subject(user, group, service_account, namespace), cluster_reads), output)


def _print(objects: list[dict], output: ManifestFormat, header: str = "") -> None:
    """yaml documents (after `header`, comment lines) or a json List (which has no place for one)."""
    if output == ManifestFormat.json:
        sys.stdout.write(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}, indent=2) + "\n")
        return
    import yaml

    class Plain(yaml.SafeDumper):
        """No &anchors/*aliases for objects that share a dict: every manifest reads on its own."""

        def ignore_aliases(self, data: object) -> bool:
            return True

    sys.stdout.write(header + yaml.dump_all(objects, Dumper=Plain, sort_keys=False))


@app.command(short_help="Print (or --apply) a CronJob of gated backups and prunes.", epilog=examples('dvdoctor -n cpd30 schedule --cron "0 2 * * *" --image quay.io/me/dvdoctor',
                             'dvdoctor -n cpd30 schedule --cron "0 2 * * *" --image IMAGE --apply'))
def schedule(
    ctx: typer.Context,
    cron: str = typer.Option(..., "--cron", metavar="SCHEDULE", help='When to run, as a CronJob schedule, e.g. "0 2 * * *" (02:00 daily, cluster time).'),
    image: str = typer.Option(..., "--image", metavar="IMAGE", help="A dvdoctor container image (see Containerfile)."),
    keep: int = number_option(2, "--keep", metavar="N", help="Complete backups the prune after each backup keeps (at least 1)."),
    check_only: bool = typer.Option(False, "--check-only", help="Schedule only `dvdoctor check -o json` (read-only; the report is the job log)."),
    service_account: str = typer.Option("dvdoctor", "--service-account", metavar="NAME", help="The service account the job runs as (created too)."),
    cluster_reads: bool = typer.Option(True, "--cluster/--no-cluster", help="Also grant the cluster-scoped reads (PVs, storage classes)."),
    output: ManifestFormat = typer.Option(ManifestFormat.yaml, "-o", "--output", metavar="FORMAT", help="yaml documents or a json List."),
    apply: bool = typer.Option(
        False, "--apply", help="Create what is missing and update what differs in the namespace instead of printing "
        "(audited, under dvdoctor's lock; needs `dvdoctor rbac --for schedule`)."),
    cronjob_api: Optional[CronJobApi] = typer.Option(
        None, "--cronjob-api", metavar="VERSION", help="The CronJob version to print: batch/v1beta1 (default; "
        "Kubernetes 1.18-1.20, OpenShift 4.5-4.7, DV 1.5.0's platforms) or batch/v1 (Kubernetes 1.21 and later). "
        "--apply asks the server instead."),
    dry_run: bool = typer.Option(False, "--dry-run", help="With --apply: print what would be created or updated; change nothing."),
    audit_file: Optional[Path] = typer.Option(None, "--audit-file", metavar="PATH", help="With --apply: where changes are logged."),
    break_lock: bool = break_lock_option(),
    copy: bool = typer.Option(False, "--copy", help="Also copy each backup off dv-bar-pvc (dvdoctor copy), then prune both tiers; "
                              "the repository is the Secret of copies.secret in dvdoctor.yaml, or --copy-secret."),
    copy_secret: Optional[str] = typer.Option(None, "--copy-secret", metavar="NAME", help="With --copy: the Secret holding RESTIC_REPOSITORY and RESTIC_PASSWORD."),
    copy_keep_daily: int = number_option(7, "--copy-keep-daily", min=0, metavar="N", help="With --copy: daily copies to keep."),
    copy_keep_weekly: int = number_option(4, "--copy-keep-weekly", min=0, metavar="N", help="With --copy: weekly copies to keep."),
    copy_keep_monthly: int = number_option(6, "--copy-keep-monthly", min=0, metavar="N", help="With --copy: monthly copies to keep."),
) -> None:
    """Print a CronJob that runs a gated backup and a prune (or only the checks) on a schedule.

    With its ServiceAccount, Role and RoleBinding; apply it with `oc apply -f -`, or let --apply
    create them.
    """
    from ..core.errors import UsageError
    from ..flows.schedule import manifests

    opts: Options = ctx.obj
    # a lab knows its namespace (as every command run on it takes it); a cluster is told which
    namespace_given = opts.namespace or (opts.open_cluster().namespace if opts.lab else None)
    if not namespace_given:
        raise UsageError("dvdoctor schedule needs DV's namespace: -n NAMESPACE")
    namespace = valid_name(namespace_given, "namespace")
    valid_name(service_account, "--service-account")
    if dry_run and not apply:
        raise UsageError("--dry-run goes with --apply: without --apply nothing is sent anyway")
    policy = None
    if copy:
        from ..flows.schedule import CopyPolicy

        secret = copy_secret or (opts.settings.copies.secret if opts.settings.copies else None)
        if not secret:
            raise UsageError("--copy: name the Secret that holds the repository (copies.secret in dvdoctor.yaml, or the "
                             "option --copy-secret)")
        policy = CopyPolicy(valid_name(secret, "--copy-secret"), copy_keep_daily, copy_keep_weekly, copy_keep_monthly,
                            claim=opts.settings.copies.claim if opts.settings.copies else None)
    elif copy_secret:
        raise UsageError("the Secret option (--copy-secret) goes with --copy")
    if apply and cronjob_api is not None:
        raise UsageError("--cronjob-api goes with printing: --apply uses the CronJob version the server serves")
    version = (cronjob_api or CronJobApi.v1beta1).value
    from ..flows.schedule import site_settings

    objects = manifests(namespace, cron, image, keep, check_only, service_account, cluster_reads, policy, version,
                        site_settings(getattr(opts.settings, "document", {})))
    if not apply:
        from ..flows.schedule import printed_header

        _print(objects, output, printed_header(version))
        return
    code = _apply(opts, namespace, objects, dry_run, audit_file, f"{ctx.command_path} --apply --cron {cron!r}", break_lock)
    raise typer.Exit(code)


def _apply(opts: Options, namespace: str, objects: list[dict], dry_run: bool, audit_file: Optional[Path],
           command: str, break_lock: bool) -> int:
    """Plan against what the namespace holds, show it, and apply it under the lock; the exit code.

    The plan is made after the lock is taken, so what it creates or patches is what is there when
    it runs; --dry-run takes no lock, as it changes nothing.
    """
    from rich.markup import escape

    from ..core.errors import UsageError
    from ..repair.plan import ActionFailed
    from ..flows.schedule import apply_plan, apply_schedule
    from .fix_cmd import render_plan, say_steps
    from .locking import take_lock

    from ..render.output import console as make_console

    console = make_console()
    cluster = opts.open_cluster()
    if cluster.namespace != namespace:
        raise UsageError(f"-n {namespace}: {cluster.describe()} is namespace {cluster.namespace}")
    if dry_run:
        render_plan(console, apply_plan(cluster, objects))
        console.print("[dim]--dry-run: nothing was changed.[/]")
        return 0
    with take_lock(cluster, command, break_lock, console):
        plan = apply_plan(cluster, objects)
        render_plan(console, plan)
        if plan.empty:
            return 0
        try:
            logged = apply_schedule(cluster, plan, audit_file, say_steps(console))
        except ActionFailed as exc:
            console.print(f"[red]✗[/] {escape(str(exc))}")
            return 1
    console.print(f"[green]✓[/] schedule applied in namespace {namespace}; [dim]changes logged to {escape(str(logged))}[/]")
    return 0
