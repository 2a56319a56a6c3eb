"""`demo`: the whole tool on a simulated DV namespace, for someone with no cluster at hand.

Each step is a real dvdoctor command run against a temporary lab, printed as the user would type
it, with one line saying what it shows. The lab is removed at the end (unless --keep).
"""

from __future__ import annotations

import hashlib
import shlex
import tempfile
import time
from pathlib import Path
from typing import Optional

import typer
from rich.rule import Rule

from . import app, examples

#: Faults from the runbook the demo breaks the lab with; each has a verified automatic repair.
DEMO_FAULTS = ("bar-permissions", "stale-bar-marker", "side-deployments-left-down")


def _data_digest(lab: Path) -> dict[str, str]:
    """sha256 of every file in DV's data volume, to show the restore brings back exactly what was saved."""
    root = lab / "volumes" / "dv-pvc"
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink() and "marker_files" not in p.parts
    }


@app.command(short_help="Walk through check, fix, backup, list and restore on a lab.", epilog=examples("dvdoctor demo", "dvdoctor demo --keep --dir /tmp/dvlab"))
def demo(
    keep: bool = typer.Option(False, "--keep", help="Keep the lab folder afterwards to explore it with --lab."),
    lab_dir: Optional[Path] = typer.Option(None, "--dir", metavar="PATH", help="Where to create the lab (default: a temporary folder)."),
) -> None:
    """Walk through check, fix, backup, list and restore on a temporary simulated DV namespace."""
    from ..lab import create_lab, destroy_lab
    from . import main_in_process

    from ..render.output import console as make_console

    console = make_console()
    started = time.monotonic()
    base = lab_dir or Path(tempfile.mkdtemp(prefix="dvdoctor-demo-"))
    lab = base / "lab" if lab_dir is None else base
    audit = base.parent / f"{base.name}-audit.jsonl" if lab_dir else base / "audit.jsonl"
    codes: list[tuple[str, int]] = []

    def step(title: str, says: str, *args: str) -> int:
        console.print(Rule(title, align="left"))
        console.print(f"[dim]{says}[/]")
        console.print(f"[bold]$ dvdoctor --lab {shlex.quote(str(lab))} {' '.join(shlex.quote(a) for a in args)}[/]")
        code = main_in_process(["--lab", str(lab), *args], env={"DVDOCTOR_AUDIT": str(audit)})
        codes.append((title, code))
        console.print(f"[dim](exit code {code})[/]\n")
        return code

    try:
        if not lab_dir:
            base.chmod(0o755)  # the lab's pods run as the BAR uid, which must reach its folders
        console.print(Rule("1. a DV namespace with three of the runbook's faults", align="left"))
        console.print(f"[bold]$ dvdoctor lab create {lab} --break {','.join(DEMO_FAULTS)}[/]")
        create_lab(lab, breaks=DEMO_FAULTS)
        console.print("[dim]A simulated cpd30 namespace: DV's pods, deployments, jobs and volumes as real folders, "
                      "one complete backup, and three faults.[/]\n")
        step("2. check", "Finds every known failure mode in one run, with evidence and the command that repairs it.", "check")
        step("3. fix", "Repairs each failure: the plan is printed, applied (--yes), logged, and verified by running its check again.",
             "fix", "--all", "--yes")
        step("4. check again", "All checks pass now.", "check")
        step("5. backup", "DV's own backup job, gated by the checks: side deployments scaled to 0 and back, the job watched live, "
             "the new backup verified.", "backup", "--yes", "--timeout", "120", "--log-dir", str(base))
        step("6. list", "Every backup on the backup volume; → marks the restore point.", "list")
        before = _data_digest(lab)
        victim = next(iter(before))
        (lab / "volumes" / "dv-pvc" / victim).write_bytes(b"oops: damaged at 2 a.m.\n")
        console.print(Rule("7. damage", align="left"))
        console.print(f"[dim]Overwrote {victim} in DV's data volume, to show what a restore brings back.[/]\n")
        step("8. restore", "DV's own restore job on the newest backup, then the runbook's post-restore steps done for you.",
             "restore", "--yes", "--timeout", "120", "--ready-timeout", "30", "--log-dir", str(base))
        same = _data_digest(lab) == before
        console.print(Rule("9. result", align="left"))
        console.print(("[green]✓[/] every file in DV's data volume is byte-identical to the backup"
                       if same else "[red]✗ the restored data differs from the backup[/]"))
        failed = [t for t, c in codes if c != 0 and not t.startswith("2.")]
        console.print(f"demo finished in {time.monotonic() - started:.0f} s; "
                      + ("every step succeeded" if not failed and same else f"steps that failed: {', '.join(failed) or 'restore'}"))
        if failed or not same:
            raise typer.Exit(1)
    finally:
        if keep:
            console.print(f"The lab is kept: dvdoctor --lab {lab} check   (remove it with: dvdoctor lab destroy {lab})")
        else:
            destroy_lab(lab)
            if not lab_dir:
                for leftover in sorted(base.rglob("*"), reverse=True):
                    leftover.unlink() if leftover.is_file() or leftover.is_symlink() else leftover.rmdir()
                base.rmdir()
