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

from ..errors import UsageError

lab_app = typer.Typer(
    no_args_is_help=True,
    help=("A simulated DV 1.5.0 namespace on local disk: DV's objects, real folders as volumes, pods that "
          "really run, one real backup, and the runbook's faults on demand. Use it with --lab DIR."),
)


def _folder(ctx: typer.Context, folder: Optional[Path]) -> Path:
    chosen = folder or (Path(ctx.obj.lab) if getattr(ctx.obj, "lab", None) else None)
    if chosen is None:
        raise UsageError("name the lab folder: dvdoctor lab COMMAND DIR (or --lab DIR / DVDOCTOR_LAB)")
    return chosen


@lab_app.command("create")
def create(
    ctx: typer.Context,
    folder: Optional[Path] = typer.Argument(None, metavar="DIR", help="Folder to create the lab in (empty or absent)."),
    breaks: List[str] = typer.Option([], "--break", metavar="ID[,ID...]", help="Faults to switch on (see `dvdoctor lab faults`)."),
    namespace: Optional[str] = typer.Option(None, "--namespace", "-n", help="The lab's namespace (default cpd30)."),
    force: bool = typer.Option(False, "--force", help="Replace a lab already in DIR."),
    bar_hold: float = typer.Option(0, "--bar-hold", min=0, metavar="SECONDS",
                                   help="Make each backup job wait this long after writing its marker (to try Ctrl-C mid-backup)."),
) -> None:
    """Create a healthy DV namespace (with one real backup), then switch on the faults named by --break."""
    from ..lab import create_lab
    from ..lab.faults import resolve
    from ..names import valid_name

    path = _folder(ctx, folder)
    ns = valid_name(namespace or getattr(ctx.obj, "namespace", None) or "cpd30", "namespace")
    resolve(breaks)
    started = time.monotonic()
    lab = create_lab(path, breaks=breaks, namespace=ns, force=force, bar_hold=bar_hold)
    settings = lab.store.meta()["settings"]
    typer.echo(f"created {lab.describe()} (namespace {lab.namespace}) in {time.monotonic() - started:.1f} s; one backup "
               f"({settings['backup_bytes']} bytes); dv-bar-pvc is {settings['bar_capacity']}")
    typer.echo(f"faults: {', '.join(x for b in breaks for x in b.split(',') if x) or 'none'}")
    typer.echo(f"try: dvdoctor --lab {path} check")


@lab_app.command("break")
def break_(
    ctx: typer.Context,
    folder: Path = typer.Argument(..., metavar="DIR", help="The lab folder."),
    fault_id: str = typer.Argument(..., metavar="ID", help="A fault id (comma-separated for several)."),
) -> None:
    """Switch on one of the runbook's failure modes in an existing lab."""
    from ..lab import break_lab

    for one in [f for f in fault_id.split(",") if f.strip()]:
        break_lab(folder, one.strip())
        typer.echo(f"broke {folder}: {one.strip()}")


@lab_app.command("faults")
def faults() -> None:
    """List the faults a lab can be broken with (each is named by the check it trips)."""
    from ..lab import FAULTS

    for fault in sorted(FAULTS.values(), key=lambda f: f.id):
        typer.echo(f"{fault.id:28} {fault.summary}")


@lab_app.command("status")
def status(
    ctx: typer.Context,
    folder: Optional[Path] = typer.Argument(None, metavar="DIR", help="The lab folder."),
    output: str = typer.Option("text", "-o", "--output", help="text or json."),
) -> None:
    """Objects with their state, volumes with sizes, backups, markers and running pod processes."""
    from ..lab.overview import overview, render

    if output not in ("text", "json"):
        raise UsageError(f"-o {output!r}: use text or json")
    view = overview(_folder(ctx, folder))
    typer.echo(json.dumps(view, indent=2) if output == "json" else render(view))


@lab_app.command("destroy")
def destroy(
    ctx: typer.Context,
    folder: Optional[Path] = typer.Argument(None, metavar="DIR", help="The lab folder."),
) -> None:
    """Kill the lab's pod processes and remove its folder."""
    from ..lab import destroy_lab

    path = _folder(ctx, folder)
    destroy_lab(path)
    typer.echo(f"removed {path}")
