"""Output that survives pipes, logs and narrow terminals; help that reads at 80 columns; words.

Golden files under tests/golden/ hold a few outputs as printed through a pipe, so a change of
wording is a visible diff: regenerate them with DVDOCTOR_UPDATE_GOLDEN=1 and read the diff.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

import builders as b
from dvdoctor.render import output
from dvdoctor.cli import app, run
from dvdoctor.flows.common import Heartbeat
from dvdoctor.render.output import Column, plain_table, print_table
from dvdoctor.repair.audit import Change
from dvdoctor.verdicts.registry import run_checks
from dvdoctor.render.report import render
from dvdoctor.core.words import plural

GOLDEN = Path(__file__).parent / "golden"
DVDOCTOR = os.path.join(os.path.dirname(sys.executable), "dvdoctor")


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("DVDOCTOR_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; if on purpose: DVDOCTOR_UPDATE_GOLDEN=1 pytest {__file__}"


class Tty(io.StringIO):
    """A terminal as rich sees one."""

    def isatty(self) -> bool:
        return True


# -- tables --------------------------------------------------------------------------------------

COLUMNS = [Column("current", whole=True), Column("backup", whole=True), Column("size", justify="right"),
           Column("state")]
ROWS = [("→", "2026-12-02-05-49-02", "2.8 MiB", "complete, verified"),
        ("", "2021-01-14-19-20-07", "0 B", "incomplete (no dv_backup_dv_engine.tar.gz, dv_backup.tar.gz)")]


def test_plain_columns_are_whole_aligned_and_one_record_a_line():
    lines = plain_table(COLUMNS, ROWS)
    assert lines == [
        "CURRENT   BACKUP                   SIZE   STATE",
        "→         2026-12-02-05-49-02   2.8 MiB   complete, verified",
        "-         2021-01-14-19-20-07       0 B   incomplete (no dv_backup_dv_engine.tar.gz, dv_backup.tar.gz)",
    ]


def test_print_table_without_a_terminal_prints_plain_columns_at_full_width():
    out = io.StringIO()
    print_table(output.console(file=out), COLUMNS, ROWS)
    assert out.getvalue().splitlines() == plain_table(COLUMNS, ROWS)


@pytest.mark.parametrize("width", [40, 60, 80])
def test_in_a_narrow_terminal_ids_and_timestamps_stay_whole_and_prose_folds(width):
    out = Tty()
    print_table(Console(file=out, width=width, force_terminal=True, color_system=None), COLUMNS, ROWS)
    text = out.getvalue()
    for stamp in ("2026-12-02-05-49-02", "2021-01-14-19-20-07"):
        assert stamp in text
    assert "…" not in text
    if width < 60:  # too narrow for the whole columns and readable prose: the plain lines, for the terminal to wrap
        assert text.splitlines() == plain_table(COLUMNS, ROWS)
    else:  # a table whose prose folds by words
        assert "incomplete (no" in text and "complete, verified" in text


MARKUP_LIKE = ["[/]", "[bold]x", "[red]", "backup=[/]"]


@pytest.mark.parametrize("value", MARKUP_LIKE)
def test_a_cell_that_looks_like_markup_is_shown_literally_in_a_pipe(value):
    """A restic tag or a folder name such as `[/]` is data: printed as it is, not parsed (nor a crash)."""
    rows = [("", value, "1 B", value)]
    out = io.StringIO()
    print_table(output.console(file=out), COLUMNS, rows)
    body = out.getvalue().splitlines()[1].split()
    assert body == ["-", *value.split(), "1", "B", *value.split()]
    assert plain_table(COLUMNS, rows)[1].endswith(value)


@pytest.mark.parametrize("value", MARKUP_LIKE)
def test_a_cell_that_looks_like_markup_is_shown_literally_in_a_terminal(value):
    out = Tty()
    print_table(Console(file=out, width=120, force_terminal=True, color_system="standard"), COLUMNS,
                [("→", value, "1 B", value)])
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())
    assert text.count(value) == 2


def test_a_styled_cell_keeps_its_color_in_a_terminal_and_is_its_words_in_a_pipe():
    """dvdoctor's own colors (a Text) still render; the literal rule applies to plain strings only."""
    from rich.text import Text

    rows = [("", "2026-12-02-05-49-02", "1 B", Text.assemble(("damaged", "red"), ": [bold]x"))]
    colored = Tty()
    print_table(Console(file=colored, width=120, force_terminal=True, color_system="standard"), COLUMNS, rows)
    assert "\x1b[31mdamaged" in colored.getvalue() and ": [bold]x" in colored.getvalue()
    piped = io.StringIO()
    print_table(output.console(file=piped), COLUMNS, rows)
    assert piped.getvalue().splitlines()[1].endswith("damaged: [bold]x")


# -- consoles: no wrapping without a terminal, colors on request ----------------------------------


def test_without_a_terminal_a_long_line_is_one_line():
    out = io.StringIO()
    long = "log: " + "x" * 300 + " end"
    output.console(file=out).print(long)
    assert out.getvalue() == long + "\n"


def test_no_color_and_NO_COLOR_are_honoured_in_a_terminal(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    colored = Tty()
    output.console(file=colored).print("[red]✗[/] failed")
    assert "\x1b[31m" in colored.getvalue()
    monkeypatch.setattr(output, "NO_COLOR", True)
    plain = Tty()
    output.console(file=plain).print("[red]✗[/] failed")
    assert "\x1b[31m" not in plain.getvalue()
    monkeypatch.setattr(output, "NO_COLOR", False)
    monkeypatch.setenv("NO_COLOR", "1")
    plain = Tty()
    output.console(file=plain).print("[red]✗[/] failed")
    assert "\x1b[31m" not in plain.getvalue()


def test_the_global_no_color_option_is_accepted_anywhere():
    assert run(["checks", "--no-color"]) == 0
    assert run(["--no-color", "checks"]) == 0


def test_a_reader_that_leaves_ends_nothing():
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", f"{DVDOCTOR} checks | head -1; {DVDOCTOR} --help | head -1"],
                          capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stderr) == (0, "")
    first, usage = proc.stdout.splitlines()
    assert first.split() == ["ID", "SEVERITY", "APPLIES", "FIX", "TITLE"]
    assert usage == "Usage: dvdoctor [OPTIONS] COMMAND [ARGS]..."


# -- help at 80 columns ----------------------------------------------------------------------------


def commands() -> list[list[str]]:
    from dvdoctor.cli import _register

    _register()
    import typer.main

    root = typer.main.get_command(app)
    out = []
    for name, cmd in root.commands.items():
        if hasattr(cmd, "commands"):
            out += [[name, sub] for sub in cmd.commands]
        out.append([name])
    return sorted(out)


def help_text(argv: list[str], capsys, monkeypatch) -> str:
    """What `dvdoctor ARGV --help` prints at 80 columns (COLUMNS=80) when its output is not a terminal,
    run in this process: a command's own help is the same whichever process prints it (its module
    imported either way), and a child for each command cost about 0.12 CPU-second. The root's command
    list is read from a child below: a fresh process lists it from the table, this one from built
    commands."""
    monkeypatch.setenv("COLUMNS", "80")
    capsys.readouterr()
    code = run([*argv, "--help"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


@pytest.mark.parametrize("argv", commands(), ids=" ".join)
def test_help_at_80_columns_keeps_option_names_whole_says_metavars_in_words_and_ends_with_examples(argv, capsys,
                                                                                                   monkeypatch):
    from dvdoctor.cli import _register
    import typer.main

    _register()
    cmd = typer.main.get_command(app)
    for part in argv:
        cmd = cmd.commands[part]
    text = help_text(argv, capsys, monkeypatch)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text.replace("ID[,ID…]", "") and "<" not in text  # nothing cut, no <bool>, no <list[str]>
    for param in cmd.params:
        for opt in getattr(param, "opts", []):
            if opt.startswith("--"):
                assert re.search(rf"(^|[\s,/]){re.escape(opt)}(\s|,|$|/)", text, re.M), (opt, text)
    examples = text.split("Examples:\n", 1)
    assert len(examples) == 2, text
    lines = [line.strip() for line in examples[1].splitlines() if line.strip()]
    assert 1 <= len(lines) <= 2 and all(line.startswith("dvdoctor ") for line in lines)


@pytest.mark.parametrize("argv", [[], ["lab", "--help"]], ids=["dvdoctor", "dvdoctor lab --help"])
def test_command_lists_give_each_command_a_whole_line_never_cut(argv):
    """click cuts a long first sentence with "..." in a command list; every command has its own short help."""
    import typer.main
    from dvdoctor.cli import _register

    _register()
    group = typer.main.get_command(app)
    if argv:
        group = group.commands["lab"]
    # a child: a fresh process lists the root's commands from the table (dvdoctor.cli.lazy), not built
    proc = subprocess.run([DVDOCTOR, *argv], capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    listed = proc.stdout.split("\nCommands:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line.split()[0] for line in listed] == list(group.commands)  # one line each, no continuation
    for line, (name, cmd) in zip(listed, group.commands.items()):
        assert cmd.short_help, name
        assert line.split(None, 1)[1] == cmd.short_help, line
        assert "..." not in line and "…" not in line and len(line) <= 80, line


def test_bare_dvdoctor_prints_the_help_and_exits_0():
    proc = subprocess.run([DVDOCTOR], capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "80"})
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.startswith("Usage: dvdoctor [OPTIONS] COMMAND [ARGS]...")
    assert "3 the verdict is incomplete" in proc.stdout.replace("\n  ", " ")


def test_check_help_is_golden(capsys, monkeypatch):
    golden("check-help-80.txt", help_text(["check"], capsys, monkeypatch))


# -- the report, golden ------------------------------------------------------------------------------


def report(data: dict, **kwargs) -> str:
    out = io.StringIO()
    facts = b.Facts(data)
    render(output.console(file=out), facts, run_checks(facts), **kwargs)
    return out.getvalue()


def test_on_a_narrow_terminal_commands_and_evidence_lines_are_not_broken_by_dvdoctor():
    """Break-it review: at 50 columns `fix: dvdoctor fix --issue` and `stale-bar-marker` came on two
    lines, so a copied command was two; the terminal now wraps those lines as it shows them."""
    data = b.healthy()
    data["engine"]["markers"].append({"name": ".bar", "size": 0, "mtime": 0})
    out = io.StringIO()
    facts = b.Facts(data)
    render(Console(file=out, width=40, force_terminal=True, color_system=None), facts, run_checks(facts))
    lines = out.getvalue().splitlines()
    assert "     fix: dvdoctor fix --issue stale-bar-marker" in lines
    assert any(ln.startswith("       dv-engine-0:/mnt/marker_files/.bar (0 B, written ") for ln in lines)
    assert any("dvdoctor check --skip stale-bar-marker; to see its runbook text: dvdoctor explain stale-bar-marker" in ln
               for ln in lines)


def test_the_report_of_a_broken_namespace_is_golden():
    data = b.healthy()
    data["engine"]["markers"].append({"name": ".bar", "size": 0, "mtime": 0})
    b.find(data, "persistentvolumes", "pvc-bar-0472")["spec"]["persistentVolumeReclaimPolicy"] = "Delete"
    text = report(data)
    assert "1 warning," in text and "verdict: failed (exit 1): stale-bar-marker" in text
    golden("check-broken.txt", re.sub(r"written \d+ min ago", "written N min ago", text))


def test_checks_table_through_a_pipe_is_golden():
    proc = subprocess.run([DVDOCTOR, "checks"], capture_output=True, text=True, timeout=60)
    golden("checks.txt", proc.stdout)


# -- progress lines for logs ------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.execs: list[list[str]] = []

    def exec(self, pod, argv, container=None):
        self.execs.append(argv)

        class Result:
            stdout = "2026-12-02-05-49-02\t2048\n"

        return Result()


class FakeRunner:
    def __init__(self) -> None:
        self.cluster = Recorder()
        self.facts = b.Facts(b.healthy())


def test_the_heartbeat_says_something_at_least_every_period_and_at_each_phase_change():
    out = io.StringIO()
    runner = FakeRunner()
    beat = Heartbeat(runner, "dv-backup-job", 60, output.console(file=out))
    for phase, elapsed in (("Pending", 0), ("Running", 2), ("Running", 30), ("Running", 62), ("Running", 100),
                           ("complete", 101)):
        beat(phase, "dv-backup-job-x7k2p", elapsed, "writing")
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ", line) for line in lines)
    assert "Pending, 00:00 elapsed" in lines[0] and "Running, 00:02 elapsed" in lines[1]
    assert "Running, 01:02 elapsed, backup folder 2026-12-02-05-49-02 2.0 MiB" in lines[2]
    assert "complete, 01:41 elapsed" in lines[3]
    assert len(runner.cluster.execs) == 1 and runner.cluster.execs[0][-1] == "/mnt/PV/bar"


def test_waiting_for_dv_to_be_ready_says_so_with_a_timestamp_at_least_every_period():
    from dvdoctor.flows.common import dv_ready

    data = b.healthy()
    pod = b.find(data, "pods", "dv-engine-0")
    pod["status"]["conditions"][1]["status"] = "False"
    pod["status"]["containerStatuses"][0]["ready"] = False
    out = io.StringIO()
    assert dv_ready(0.35, lambda pod=True: b.Facts(data), output.console(file=out), every=0.1) is False
    lines = out.getvalue().splitlines()
    waiting = [line for line in lines if "waiting for DV's pods to be ready" in line]
    assert len(waiting) >= 2, lines  # nothing silent for longer than the period
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ waiting for DV's pods to be ready, 00:00 elapsed "
                        r"\(up to 0 s\): DV pod dv-engine-0 is not ready$", line) for line in waiting), waiting
    assert "DV's pods are not all ready after" in lines[-2]


# -- words ---------------------------------------------------------------------------------------------


def test_plurals_and_changes_in_words():
    from dvdoctor.cli.fix_cmd import describe_change

    assert [plural(n, "warning") for n in (0, 1, 2)] == ["0 warnings", "1 warning", "2 warnings"]
    assert plural(1, "replica") == "1 replica" and plural(3, "backup folder") == "3 backup folders"
    assert describe_change(Change("deployment/dv-api replicas", "0", "1")) == "deployment/dv-api replicas: 0 → 1"
    assert describe_change(Change("persistentvolumes/pv-1 spec.persistentVolumeReclaimPolicy", "", "Retain")) == \
        "set persistentvolumes/pv-1 spec.persistentVolumeReclaimPolicy to Retain"


def test_no_python_reprs_in_a_report():
    data = b.healthy()
    data["engine"]["markers"].append({"name": ".bar", "size": 0, "mtime": 0})
    text = report(data)
    assert not re.search(r"\b(True|False|None)\b|\{'|\['", text), text


def test_the_folder_size_script_names_the_newest_backup_folder_and_its_size(tmp_path):
    """The script the heartbeat runs inside the job's pod, run here with sh on a tree shaped like dv-bar-pvc."""
    from dvdoctor.flows.common import _FOLDER_SIZE

    bar = tmp_path / "bar"
    for ts, size in (("2021-01-14-19-20-07", 10), ("2026-12-02-05-49-02", 3 * 1024 * 1024)):
        (bar / ts).mkdir(parents=True)
        (bar / ts / "dv_backup_dv_engine.tar.gz").write_bytes(b"x" * size)
    (bar / "tmp").mkdir()
    proc = subprocess.run(["sh", "-c", _FOLDER_SIZE, "dvdoctor-size", str(bar)], capture_output=True, text=True)
    name, kib = proc.stdout.strip().split("\t")
    assert name == "2026-12-02-05-49-02" and 3 * 1024 <= int(kib) <= 3 * 1024 + 16
    empty = tmp_path / "empty"
    empty.mkdir()
    assert subprocess.run(["sh", "-c", _FOLDER_SIZE, "dvdoctor-size", str(empty)], capture_output=True,
                          text=True).stdout == ""


def test_output_that_cannot_be_written_is_never_exit_0(monkeypatch, capsys):
    """`check > /dev/full`: the report never reaches its reader, so the exit code may not say all is
    well (break-it review: it was 0); one line says why. A reader that left (`| head -1`) is not that."""
    import errno
    import io

    from dvdoctor.cli import run

    class Full(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    capsys.readouterr()
    monkeypatch.setattr(sys, "stdout", Full())
    assert run(["checks"]) == 2
    err = capsys.readouterr().err
    assert err == "dvdoctor: error: the output could not be written to stdout: No space left on device\n"
