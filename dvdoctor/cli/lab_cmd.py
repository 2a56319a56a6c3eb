"""`dvdoctor lab ...`: make, break, inspect and remove a simulated DV namespace on local disk.

The lab folder may also come from the global `--lab DIR` / DVDOCTOR_LAB, so once it is set every
lab command and every dvdoctor command talk to the same folder.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import List, Optional

import typer

from ..core.errors import UsageError
from . import app, examples
from .numbers import number_option

lab_app = typer.Typer(
    rich_markup_mode=None,
    help=("A simulated DV 1.5.0 namespace on local disk: DV's objects, real folders as volumes, pods that "
          "really run, one real backup, and the runbook's faults on demand. Use it with --lab DIR."),
    short_help="A simulated DV namespace on local disk, to try dvdoctor on.",
    epilog=examples("dvdoctor lab create /tmp/dvlab --break stale-bar-marker", "dvdoctor --lab /tmp/dvlab check"),
)


@lab_app.callback(invoke_without_command=True)
def lab_help(ctx: typer.Context) -> None:
    """Bare `dvdoctor lab`: its help, exit 0."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


def _folder(ctx: typer.Context, folder: Optional[Path]) -> Path:
    chosen = folder or (Path(ctx.obj.lab) if getattr(ctx.obj, "lab", None) else None)
    if chosen is None:
        raise UsageError("name the lab folder: dvdoctor lab COMMAND DIR (or --lab DIR / DVDOCTOR_LAB)")
    return chosen


@lab_app.command("create", short_help="Create a healthy DV namespace, with one real backup, in DIR.", epilog=examples("dvdoctor lab create /tmp/dvlab --break stale-bar-marker,bar-permissions", "dvdoctor --lab /tmp/dvlab check"))
def create(
    ctx: typer.Context,
    folder: Optional[Path] = typer.Argument(None, metavar="DIR", hidden=True),
    breaks: List[str] = typer.Option([], "--break", metavar="ID[,ID…]", help="Faults to switch on (see `dvdoctor lab faults`)."),
    namespace: Optional[str] = typer.Option(None, "--namespace", "-n", metavar="NAMESPACE", help="The lab's namespace (default cpd30)."),
    force: bool = typer.Option(False, "--force", help="Replace a lab already in DIR."),
    bar_hold: float = number_option(0, "--bar-hold", kind=float, min=0, metavar="SECONDS",
                                   help="Make each backup job wait this long half-way, marker and partial folder written (to try Ctrl-C mid-backup)."),
    data_size: Optional[str] = typer.Option(None, "--data-size", metavar="SIZE",
                                            help="Add this much database-shaped data to DV's volume (8 KiB pages that "
                                                 "compress about 3:1, e.g. 128Mi): backups of a realistic shape."),
) -> None:
    """Create a healthy DV namespace (with one real backup) in DIR, then switch on the faults named by --break.

    DIR must be empty or absent (default: --lab DIR / DVDOCTOR_LAB).
    """
    from ..lab import create_lab
    from ..lab.bar import claim_capacity
    from ..lab.faults import resolve
    from ..core.names import DEFAULT, valid_name

    path = _folder(ctx, folder)
    ns = valid_name(namespace or getattr(ctx.obj, "namespace", None) or "cpd30", "namespace")
    faults = resolve(breaks)
    size = _data_size(data_size)
    started = time.monotonic()
    lab = create_lab(path, breaks=breaks, namespace=ns, force=force, bar_hold=bar_hold, data_size=size)
    settings = lab.store.meta()["settings"]
    # the claim as it is now: a fault (bar-low-space, bar-pvc-missing) may have changed it since its creation
    capacity = claim_capacity(lab.store, DEFAULT.names.bar_pvc)
    typer.echo(f"created {lab.describe()} (namespace {lab.namespace}) in {time.monotonic() - started:.1f} s; one backup "
               f"({settings['backup_bytes']} bytes); {DEFAULT.names.bar_pvc} is {capacity or 'missing'}")
    typer.echo(f"faults: {', '.join(f.id for f in faults) or 'none'}")
    typer.echo(f"try: dvdoctor --lab {path} check")


#: The largest --data-size: the lab's volumes share this machine's disk.
MAX_DATA = 64 * 1024**3


def _data_size(text: Optional[str]) -> int:
    from ..core.units import parse_quantity

    if text is None:
        return 0
    try:
        size = parse_quantity(text)
    except ValueError as exc:
        raise UsageError(f"--data-size: {exc}") from None
    if not 1024 * 1024 <= size <= MAX_DATA:
        raise UsageError(f"--data-size {text}: give 1Mi to 64Gi")
    return size


@lab_app.command("churn", short_help="Change a lab's DV data as a day of use does.", epilog=examples("dvdoctor lab churn /tmp/dvlab --percent 2"))
def churn(
    ctx: typer.Context,
    folder: Optional[Path] = typer.Argument(None, metavar="DIR", hidden=True),
    percent: float = number_option(..., "--percent", kind=float, metavar="P", help="Percent of DV's data a day of use changes (0-100)."),
    scattered: float = number_option(0.1, "--scattered", kind=float, metavar="FRACTION",
                                     help="Of the rewritten data, the fraction changed as single scattered 8 KiB pages."),
    uniform: bool = typer.Option(False, "--uniform", help="Worst case: every changed page at a random place."),
    seed: Optional[int] = number_option(None, "--seed", metavar="N", help="Make the day's changes repeatable."),
) -> None:
    """Change DV's data as a day of use does: a few tables and indexes rewritten in 1-4 MiB runs,
    logs appended and rotated, a little scattered, in the lab in DIR (made with --data-size).
    """
    import math

    from ..lab import churn_lab

    if not (0 < percent <= 100) or math.isnan(percent):
        raise UsageError(f"--percent {percent}: give a number above 0, at most 100")
    if not (0 <= scattered <= 1) or math.isnan(scattered):
        raise UsageError(f"--scattered {scattered}: give a fraction from 0 to 1")
    path = _folder(ctx, folder)
    if not (path / "lab.json").is_file():
        raise UsageError(f"{path} is not a dvdoctor lab")
    try:
        done = churn_lab(path, percent, scattered=scattered, uniform=uniform, seed=seed)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    typer.echo(f"changed {path}: {done['runs']} bytes in runs, {done['pages']} in single pages, "
               f"{done['appended']} appended to the logs")


@lab_app.command("break", short_help="Switch on one of the runbook's failure modes in a lab.", epilog=examples("dvdoctor lab break /tmp/dvlab side-deployments-left-down"))
def break_(
    ctx: typer.Context,
    folder: Path = typer.Argument(..., metavar="DIR", hidden=True),
    fault_id: str = typer.Argument(..., metavar="ID", hidden=True),
) -> None:
    """Switch on one of the runbook's failure modes in the lab in DIR.

    ID is a fault id, as `dvdoctor lab faults` lists them (comma-separated for several).
    """
    from ..core.errors import UsageError
    from ..lab import LabCluster, break_lab
    from ..lab.faults import check_order, resolve

    wanted = resolve([fault_id])  # every id known, and each one able to act, before any is applied
    if not wanted:
        raise UsageError("lab break: no fault id given; `dvdoctor lab faults` lists them")
    check_order(wanted, LabCluster(folder, admin=True))
    for one in wanted:
        break_lab(folder, one.id)
        typer.echo(f"broke {folder}: {one.id}")


@lab_app.command("faults", short_help="List the faults a lab can be broken with.", epilog=examples("dvdoctor lab faults"))
def faults() -> None:
    """List the faults a lab can be broken with (each is named by the check it trips)."""
    from ..lab import FAULTS

    for fault in sorted(FAULTS.values(), key=lambda f: f.id):
        typer.echo(f"{fault.id:28} {fault.summary}")


@lab_app.command("status", short_help="Show a lab's objects, volumes, backups and pod processes.", epilog=examples("dvdoctor lab status /tmp/dvlab", "dvdoctor lab status /tmp/dvlab -o json"))
def status(
    ctx: typer.Context,
    folder: Optional[Path] = typer.Argument(None, metavar="DIR", hidden=True),
    output: str = typer.Option("text", "-o", "--output", metavar="FORMAT", help="text or json."),
) -> None:
    """The lab in DIR: objects with their state, volumes with sizes, backups, markers, running pod processes."""
    from ..lab.overview import overview, render

    if output not in ("text", "json"):
        raise UsageError(f"-o {output!r}: use text or json")
    view = overview(_folder(ctx, folder))
    typer.echo(json.dumps(view, indent=2) if output == "json" else render(view))


@lab_app.command("destroy", short_help="Kill a lab's pod processes and remove its folder.", epilog=examples("dvdoctor lab destroy /tmp/dvlab"))
def destroy(
    ctx: typer.Context,
    folder: Optional[Path] = typer.Argument(None, metavar="DIR", hidden=True),
) -> None:
    """Kill the pod processes of the lab in DIR and remove its folder."""
    from ..lab import destroy_lab

    path = _folder(ctx, folder)
    destroy_lab(path)
    typer.echo(f"removed {path}")


app.add_typer(lab_app, name="lab")
