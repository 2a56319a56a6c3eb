"""`kubectl-dvdoctor` is the same program as `dvdoctor` (so `oc dvdoctor` works as a plugin), and
typer's bash and zsh completion answer with dvdoctor's commands and options."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from typer.testing import CliRunner

from dvdoctor.cli import app
from dvdoctor.cli import check_cmd, fix_cmd, flow_cmd  # noqa: F401  (register their commands)

ROOT = Path(__file__).resolve().parents[1]


def test_the_plugin_executable_runs_the_same_main():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["kubectl-dvdoctor"] == scripts["dvdoctor"] == "dvdoctor.cli:main"


def test_the_installed_plugin_entry_point_loads_main():
    from dvdoctor.cli import main

    points = {e.name: e for e in metadata.entry_points(group="console_scripts") if "dvdoctor" in e.name}
    assert points["kubectl-dvdoctor"].load() is main


def complete_instruction(instruction: str, env: dict[str, str]) -> str:
    """Run dvdoctor as a shell's completion function does: the instruction in _DVDOCTOR_COMPLETE."""
    result = CliRunner().invoke(app, [], env={"_DVDOCTOR_COMPLETE": instruction, **env}, prog_name="dvdoctor")
    assert result.exit_code == 0, result.output
    return result.output


def complete(shell: str, env: dict[str, str]) -> str:
    return complete_instruction(f"complete_{shell}", env)


def test_bash_completion_lists_commands_and_options():
    assert complete("bash", {"COMP_WORDS": "dvdoctor ch", "COMP_CWORD": "1"}).split() == ["check", "checks"]
    options = complete("bash", {"COMP_WORDS": "dvdoctor check --output", "COMP_CWORD": "2"}).split()
    assert "--output-file" in options


def test_zsh_completion_lists_commands_and_values():
    words = complete("zsh", {"_TYPER_COMPLETE_ARGS": "dvdoctor check -o "})
    for fmt in ("table", "json", "junit", "sarif"):
        assert fmt in words


def test_each_shell_gets_a_script_that_calls_dvdoctor_back():
    """What docs/commands.md tells people to put in their shell's startup file."""
    for shell in ("bash", "zsh"):
        script = complete_instruction(f"source_{shell}", {})
        assert f"_DVDOCTOR_COMPLETE=complete_{shell}" in script


def test_show_completion_prints_the_script_for_the_current_shell(monkeypatch):
    # typer asks the process tree which shell runs it (shellingham): under make or sh, as in CI, that is
    # sh, which has no completion; here the user's shell is bash
    import typer.completion

    monkeypatch.setattr(typer.completion, "_get_shell_name", lambda: "bash")
    result = CliRunner().invoke(app, ["--show-completion"], prog_name="dvdoctor", env={"SHELL": "/bin/bash"})
    assert result.exit_code == 0 and "complete -o default -F _dvdoctor_completion dvdoctor" in result.output
