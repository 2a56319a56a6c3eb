"""Commands for the people who set dvdoctor up: `rbac` prints the least rights each command needs."""

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
    objects = manifests(namespace, target.value, subject(user, group, service_account, namespace), cluster_reads)
    if output == ManifestFormat.json:
        sys.stdout.write(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}, indent=2) + "\n")
        return
    import yaml

    sys.stdout.write(yaml.safe_dump_all(objects, sort_keys=False))
