"""`dvdoctor --help` and lab runs never import the kubernetes client (its cost is measured in
benchmarks/startup.py; here only the fact is asserted, not a time), and a command's module is
imported only when that command runs: the command list and the completion of command names come
from dvdoctor.cli.commands, whose lines must say what the commands themselves say."""

import json
import subprocess
import sys

import pytest

from dvdoctor.cli.commands import COMMANDS

CODE = """
import json
import sys
from dvdoctor.cli import run
try:
    code = run(sys.argv[1:])
except SystemExit as exc:  # shell completion ends the process itself
    code = exc.code
print(json.dumps({"code": code, "modules": [m for m in sys.modules if m.startswith("dvdoctor") or m in ("kubernetes", "rich")]}))
"""

#: every module that defines commands, as imported (dvdoctor.cli.check_cmd, ...)
COMMAND_MODULES = sorted({"dvdoctor.cli" + entry.module for entry in COMMANDS.values()})


def imported(*args: str, env: dict[str, str] | None = None) -> tuple[set[str], int]:
    """The dvdoctor modules (and kubernetes) a fresh process has imported after running `dvdoctor ARGS`."""
    out = subprocess.run([sys.executable, "-c", CODE, *args], capture_output=True, text=True, check=True,
                         env=env).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return set(result["modules"]), result["code"]


def loaded_kubernetes(*args: str) -> tuple[bool, int]:
    modules, code = imported(*args)
    return "kubernetes" in modules, code


def test_help_does_not_import_the_kubernetes_client():
    assert loaded_kubernetes("--help") == (False, 0)
    assert loaded_kubernetes("check", "--help") == (False, 0)


def test_the_root_help_does_not_import_rich():
    """The root's help is plain text (the command table): rich comes with the first console a command
    makes (benchmarks/startup.py, session 21: 1.34x a plain-help typer app with it, 1.04x without)."""
    modules, code = imported("--help")
    assert code == 0 and "rich" not in modules


def test_listing_checks_does_not_import_it_either():
    assert loaded_kubernetes("checks", "-o", "json") == (False, 0)


def test_the_command_modules_are_all_named_in_the_table():
    assert COMMAND_MODULES == ["dvdoctor.cli.check_cmd", "dvdoctor.cli.copy_cmd", "dvdoctor.cli.demo_cmd",
                               "dvdoctor.cli.fix_cmd", "dvdoctor.cli.flow_cmd", "dvdoctor.cli.lab_cmd",
                               "dvdoctor.cli.ops_cmd"]


@pytest.mark.parametrize("argv", [["--help"], []], ids=["dvdoctor --help", "dvdoctor"])
def test_the_command_list_imports_no_command_module(argv):
    modules, code = imported(*argv)
    assert code == 0
    assert modules.isdisjoint(COMMAND_MODULES), sorted(modules & set(COMMAND_MODULES))
    assert not any(m.startswith(("dvdoctor.checks", "dvdoctor.fixes", "dvdoctor.flows", "dvdoctor.lab")) for m in modules)


def test_completing_a_command_name_imports_no_command_module():
    import os

    env = {**os.environ, "_DVDOCTOR_COMPLETE": "complete_bash", "COMP_WORDS": "dvdoctor ", "COMP_CWORD": "1"}
    modules, code = imported(env=env)
    assert code == 0
    assert modules.isdisjoint(COMMAND_MODULES), sorted(modules & set(COMMAND_MODULES))


def test_a_command_imports_its_own_module_only():
    modules, code = imported("-n", "cpd30", "rbac", "--for", "check")
    assert code == 0
    assert modules & set(COMMAND_MODULES) == {"dvdoctor.cli.ops_cmd"}


def test_listing_checks_imports_the_checks_but_no_flow_no_lab_no_fix():
    modules, code = imported("checks", "-o", "json")
    assert code == 0
    assert "dvdoctor.checks" in modules and "kubernetes" not in modules
    assert not any(m.startswith(("dvdoctor.flows", "dvdoctor.lab", "dvdoctor.fixes")) for m in modules), sorted(modules)
    assert modules & set(COMMAND_MODULES) == {"dvdoctor.cli.check_cmd"}


def test_the_table_says_what_each_command_says_and_where_it_lives():
    """Every command the modules register is in the table, under the module that registers it, and its
    own short help (what the list showed when every module was imported) is the table's line."""
    import typer.main

    from dvdoctor.cli import _register, app

    _register()
    where = {info.name or typer.main.get_command_name(info.callback.__name__): info.callback.__module__
             for info in app.registered_commands}
    where |= {info.name: info.typer_instance.registered_callback.callback.__module__ for info in app.registered_groups}
    assert where == {name: "dvdoctor.cli" + entry.module for name, entry in COMMANDS.items()}
    group = typer.main.get_group(app)
    for name, entry in COMMANDS.items():
        command = group.commands[name]
        assert command.get_short_help_str(200) == entry.short_help, name
        assert not command.hidden, name


def test_the_copy_program_loads_its_stream_only_for_an_action_that_streams():
    """The copy program starts once per action, and every `check` with copies lists them: a listing
    (snapshots, check, stats, forget) does not load the stream's gzip, tar, hashing and threads."""
    code = ("import sys, dvdoctor.copies.job as job; before = 'dvdoctor.copies.stream' in sys.modules; "
            "job._manifest(job.Path('/nonexistent')); print(before, 'dvdoctor.copies.stream' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]
