"""Commands for the people who set dvdoctor up: `rbac` prints the least rights each command needs,
`schedule` a CronJob that runs backups (or checks) in the cluster."""

from __future__ import annotations

import json
import sys
from enum import Enum
from typing import Optional

import typer

from . import app
from .context import Options, valid_name


class RbacTarget(str, Enum):
    check = "check"
    fix = "fix"
    backup = "backup"
    restore = "restore"
    list = "list"
    all = "all"


class ManifestFormat(str, Enum):
    yaml = "yaml"
    json = "json"


@app.command()
def rbac(
    ctx: typer.Context,
    target: RbacTarget = typer.Option(RbacTarget.all, "--for", help="The command to grant rights for, or all of them."),
    user: Optional[str] = typer.Option(None, "--user", help="Bind the Role to this user."),
    group: Optional[str] = typer.Option(None, "--group", help="Bind the Role to this group."),
    service_account: Optional[str] = typer.Option(
        None, "--service-account", help="Bind the Role to this service account in DV's namespace (default: dvdoctor, created too)."
    ),
    cluster_reads: bool = typer.Option(
        True, "--cluster/--no-cluster",
        help="Also grant the cluster-scoped part (persistentvolumes, storageclasses) with a ClusterRole; "
        "without it the checks that need it are skipped.",
    ),
    output: ManifestFormat = typer.Option(ManifestFormat.yaml, "-o", "--output", help="yaml documents or a json List."),
) -> None:
    """Print the Role and RoleBinding (and ClusterRole) with the least rights a dvdoctor command needs.

    Apply them with `oc apply -f -`; nothing is sent to the cluster by this command.
    """
    from ..errors import UsageError
    from ..rbac import manifests, subject

    opts: Options = ctx.obj
    if not opts.namespace:
        raise UsageError("dvdoctor rbac needs DV's namespace: -n NAMESPACE")
    namespace = valid_name(opts.namespace, "namespace")
    if service_account:
        valid_name(service_account, "--service-account")
    _print(manifests(namespace, target.value, subject(user, group, service_account, namespace), cluster_reads), output)


def _print(objects: list[dict], output: ManifestFormat) -> None:
    if output == ManifestFormat.json:
        sys.stdout.write(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}, indent=2) + "\n")
        return
    import yaml

    class Plain(yaml.SafeDumper):
        """No &anchors/*aliases for objects that share a dict: every manifest reads on its own."""

        def ignore_aliases(self, data: object) -> bool:
            return True

    sys.stdout.write(yaml.dump_all(objects, Dumper=Plain, sort_keys=False))


@app.command()
def schedule(
    ctx: typer.Context,
    cron: str = typer.Option(..., "--cron", help='When to run, as a CronJob schedule, e.g. "0 2 * * *" (02:00 daily, cluster time).'),
    image: str = typer.Option(..., "--image", help="A dvdoctor container image (see Containerfile)."),
    keep: int = typer.Option(2, "--keep", help="Complete backups the prune after each backup keeps (at least 1)."),
    check_only: bool = typer.Option(False, "--check-only", help="Schedule only `dvdoctor check -o json` (read-only; the report is the job log)."),
    service_account: str = typer.Option("dvdoctor", "--service-account", help="The service account the job runs as (created too)."),
    cluster_reads: bool = typer.Option(True, "--cluster/--no-cluster", help="Also grant the cluster-scoped reads (PVs, storage classes)."),
    output: ManifestFormat = typer.Option(ManifestFormat.yaml, "-o", "--output", help="yaml documents or a json List."),
) -> None:
    """Print a CronJob that runs a gated backup and a prune (or only the checks) on a schedule.

    With its ServiceAccount, Role and RoleBinding; apply it with `oc apply -f -`.
    """
    from ..errors import UsageError
    from ..schedule import manifests

    opts: Options = ctx.obj
    if not opts.namespace:
        raise UsageError("dvdoctor schedule needs DV's namespace: -n NAMESPACE")
    namespace = valid_name(opts.namespace, "namespace")
    valid_name(service_account, "--service-account")
    _print(manifests(namespace, cron, image, keep, check_only, service_account, cluster_reads), output)
