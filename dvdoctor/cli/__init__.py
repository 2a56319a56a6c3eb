"""The `dvdoctor` command line: one typer app, commands registered from small modules.

A command's module is imported only when that command is parsed or run: the root group lists the
commands from a table (dvdoctor.cli.commands), so `dvdoctor --help` and shell completion of command
names import none of them (dvdoctor.cli.lazy says how).

Connection options (-n, --context, --kubeconfig, --lab, --config, -v) may stand before or after the
command, as with oc and kubectl; main() moves them in front before typer parses. Errors a user
can cause end with one line on stderr and exit code 2; -v shows the traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Optional

import typer
import typer.main

from ..core.errors import DvdoctorError, Interrupted
from ..core.signals import interrupted_by_signals
from .commands import COMMANDS
from .lazy import LazyGroup

#: The exit-code contract every command keeps (docs/commands.md says the same, tested per command).
EXIT_CODES = (
    "Exit codes: 0 the verdict is clean (warnings allowed unless --fail-on warn); 1 a check failed or "
    "crashed, or a fix or job left a failure; 2 dvdoctor could not run (bad input, no cluster, no DV); "
    "3 the verdict is incomplete: a check could not run for want of rights, an inspection pod failed, "
    "or the API did not answer."
)


class RootGroup(LazyGroup):
    """dvdoctor's root group: the commands of the table, each built once its module registered it on `app`."""

    table = COMMANDS

    def build(self, name: str) -> typer.core.TyperGroup | typer.core.TyperCommand | None:
        # typer builds every command registered so far; the other ones are dropped
        return _built(typer.main.get_group).commands.built.get(name)


#: What typer built from `app`, by builder, with the count of commands registered when it was built.
_BUILT: dict[object, tuple[tuple[int, int], object]] = {}


def _built(builder):
    """typer's build of `app` (get_command or get_group), made again only when a command was registered.

    typer builds the whole tree at every call (about 9 ms of inspecting signatures, twice a command
    line); a process runs one command line, but one that runs several (tests, the demo) built it
    each time. click's commands keep nothing of a parse, so one build serves every command line.
    """
    registered = (len(app.registered_commands), len(app.registered_groups))
    kept = _BUILT.get(builder)
    if kept is None or kept[0] != registered:
        kept = _BUILT[builder] = (registered, builder(app))
    return kept[1]


app = typer.Typer(
    name="dvdoctor",
    cls=RootGroup,
    no_args_is_help=False,
    pretty_exceptions_enable=False,
    # click's plain help: it wraps at the terminal's width and never cuts an option's name
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help=(
        "Diagnose, repair and run backup and restore of IBM Cloud Pak for Data's Data Virtualization "
        "1.5.0 (dvcli.sh's BAR) on OpenShift.\n\n"
        "Without a cluster, try it on a simulated DV namespace: dvdoctor demo.\n\n"
        + EXIT_CODES
    ),
    epilog="\b\nExamples:\n  dvdoctor -n cpd30 check\n  dvdoctor demo",
)

#: Options that belong to the whole program; main() hoists them from after the command name.
GLOBAL_FLAGS = {"-v", "--verbose", "--no-color"}
GLOBAL_VALUED = {"-n", "--namespace", "--context", "--kubeconfig", "--lab", "--config"}


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    namespace: Optional[str] = typer.Option(
        None, "-n", "--namespace", metavar="NAMESPACE", help="DV's namespace (default: the kubeconfig context's, as `oc project` sets it)."
    ),
    context: Optional[str] = typer.Option(None, "--context", metavar="CONTEXT", help="kubeconfig context to use."),
    kubeconfig: Optional[str] = typer.Option(
        None, "--kubeconfig", metavar="PATH", help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config; in a pod, its service account)."
    ),
    lab: Optional[str] = typer.Option(
        None, "--lab", metavar="DIR", envvar="DVDOCTOR_LAB", help="Run against a lab folder (see `dvdoctor lab create`) instead of a cluster."
    ),
    config: Optional[str] = typer.Option(
        None, "--config", metavar="PATH", envvar="DVDOCTOR_CONFIG",
        help="Site settings file: DV's names, thresholds, BAR defaults, suppressions (default: ./dvdoctor.yaml if present).",
    ),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Show tracebacks and more detail."),
    no_color: bool = typer.Option(False, "--no-color", help="No colors, even in a terminal (as NO_COLOR=1 does)."),
) -> None:
    from ..render import output
    from .context import Options

    output.NO_COLOR = no_color
    if ctx.invoked_subcommand is None:  # bare `dvdoctor` (or only global options): the help, exit 0
        typer.echo(ctx.get_help())
        raise typer.Exit(0)
    ctx.obj = Options(verbose=verbose, kubeconfig=kubeconfig, context=context, namespace=namespace, lab=lab,
                      config=config)


def examples(*lines: str) -> str:
    """A command's help epilog: one or two real command lines, kept as written (click's \\b)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move connection options found after the command to the front, so typer sees them at the root."""
    front, rest = _split_global_options(argv)
    return front + rest


def _split_global_options(argv: list[str]) -> tuple[list[str], list[str]]:
    """The connection options (each with its value) wherever they stand before a `--`, and the rest."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        key = arg.split("=", 1)[0]
        if arg in GLOBAL_FLAGS:
            front.append(arg)
        elif key in GLOBAL_VALUED and "=" in arg:
            front.append(arg)
        elif arg in GLOBAL_VALUED and i + 1 < len(argv):
            front.extend(argv[i : i + 2])
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front, rest


def _register() -> None:
    """Import every command's module, so `app` holds them all (for tests and docs that walk the commands)."""
    import importlib

    for entry in COMMANDS.values():
        importlib.import_module(entry.module, __package__)


def run(argv: list[str]) -> int:
    """Parse and run one command line; returns the exit code instead of leaving the process.

    A reader that closes the pipe early (`| head -1`) ends nothing: the rest of the output goes
    to /dev/null and the command ends with its verdict's code. A write that fails otherwise (a
    full disk) is one line on stderr, and the exit code is never 0.
    """
    from ..render import output

    if sys.stdout is None or sys.stderr is None:  # started with `>&-`: Python gives no stream at all
        if sys.stderr is not None:
            print("dvdoctor: error: standard output is closed; give the command somewhere to write "
                  "(a file, a pipe, /dev/null)", file=sys.stderr)
        return 2
    args = hoist_global_options(list(argv))
    verbose = any(a in ("-v", "--verbose") for a in args)
    output.NO_COLOR = False
    # SIGTERM (kill, a Job's deadline) and SIGHUP (the terminal closed) end a command as Ctrl-C does:
    # its cleanup runs (the lock released, a copy program stopped), one line says so, exit 130
    with output.pipe_safe_streams() as streams, interrupted_by_signals():
        code = _run(args, verbose)
    lost = streams[0].failed
    if lost is not None:  # the report never reached its reader: no exit code may say all is well
        print(f"dvdoctor: error: the output could not be written to stdout: {lost.strerror or lost}",
              file=sys.stderr)
        return code or 2
    return code


def _config_to_check(args: list[str]) -> str | None:
    """The config file the command line (or DVDOCTOR_CONFIG) names, when a command will run: the last
    --config given, as the parser takes it; None for help (`-h`, `--help` before any `--`), for no
    command at all (the help again), and while the shell completes a word (which must never fail)."""
    front, rest = _split_global_options(args)
    before_dashes = rest[: rest.index("--")] if "--" in rest else rest
    if not rest or any(a in ("-h", "--help") for a in before_dashes) or \
            any(k.startswith("_DVDOCTOR_COMPLETE") for k in os.environ):
        return None
    named, i = os.environ.get("DVDOCTOR_CONFIG") or None, 0
    while i < len(front):  # option and value, or option=value, or a flag
        key, eq, value = front[i].partition("=")
        if key in GLOBAL_VALUED and not eq:
            key, value, i = front[i], front[i + 1], i + 1
        named = value if key == "--config" else named
        i += 1
    return named


def _run(args: list[str], verbose: bool) -> int:
    try:
        named = _config_to_check(args)
        if named is not None:
            # a file named that is not there is a mistake whatever the command (`checks`, `rbac` and
            # `lab` read no setting); it is looked for at once, while help is always shown
            from .config import find

            find(named)
        result = _built(typer.main.get_command)(args=args, prog_name="dvdoctor", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except typer.Exit as exc:
        return exc.exit_code
    except typer.TyperException as exc:  # typer's own click: usage errors, bad parameters
        where = exc.ctx.command_path if getattr(exc, "ctx", None) else "dvdoctor"
        print(f"dvdoctor: error: {bad_value(exc, args) or exc.format_message()} (see: {where} --help)", file=sys.stderr)
        return exc.exit_code
    except typer.Abort:
        print("dvdoctor: aborted", file=sys.stderr)
        return 1
    except DvdoctorError as exc:
        from ..core import redact

        if verbose:
            import traceback  # only here: `--help` and every command that ends well never load it

            traceback.print_exc()
        print(f"dvdoctor: error: {redact.text(str(exc))}", file=sys.stderr)  # it may quote a log or a value
        return exc.exit_code
    except (KeyboardInterrupt, Interrupted):
        print("dvdoctor: interrupted", file=sys.stderr)
        return 130


def bad_value(exc: Exception, args: list[str]) -> str | None:
    """A value typer refused, said as dvdoctor says its own: "--timeout 'nan': give a number of seconds ≥ 1".

    typer's message is its validator's ("Input should be greater than or equal to 1", "Value error,
    'x' is not one of ..."); what is allowed is known from the option itself: its choices, its type
    and bounds. None when the error is not about an option's value (then typer's message stands).
    """
    import enum

    param = getattr(exc, "param", None)
    opts = [o for o in getattr(param, "opts", None) or [] if o.startswith("-")]
    if not isinstance(exc, typer.BadParameter) or not opts or type(exc).__name__ == "MissingParameter":
        return None
    name = max(opts, key=len)
    given = None
    for i, arg in enumerate(args):  # the last one given wins, as the parser takes it
        if arg in opts and i + 1 < len(args):
            given = args[i + 1]
        elif "=" in arg and arg.split("=", 1)[0] in opts:
            given = arg.split("=", 1)[1]
    kind = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        allowed = "give one of " + ", ".join(str(m.value) for m in kind)
    elif kind in (int, float):
        noun = "a whole number" if kind is int else "a number"
        if getattr(param, "metavar", None) == "SECONDS":
            noun += " of seconds"
        bounds = [f"≥ {low}" if low is not None else "", f"≤ {high}" if high is not None else ""]
        allowed = " ".join(["give", noun, *[b for b in bounds if b]])
    else:
        allowed = str(getattr(exc, "message", "")).removeprefix("Value error, ").rstrip(".")
    return f"{name} {given!r}: {allowed}" if given is not None else f"{name}: {allowed}"


def main_in_process(argv: list[str], env: dict[str, str] | None = None) -> int:
    """Run a dvdoctor command inside this process (the demo's steps), with extra environment."""
    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        return run(argv)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def main() -> None:
    sys.exit(run(sys.argv[1:]))
