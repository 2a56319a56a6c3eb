"""Imports only go down, and never round a cycle.

Every dvdoctor module belongs to one layer (LAYERS, lowest first, said once here and drawn in
docs/architecture.md). A module may import its own layer and the layers below, never one above;
and no chain of imports among dvdoctor's modules comes back to where it started. Imports inside
functions count as much as those at the top: they are lazy so that `dvdoctor --help` stays light,
not so that a dependency may point up. The few that must are named in EXCEPTIONS, each with why.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The layers, lowest first: (name, the module prefixes that belong to it). A module belongs to
#: the layer of the longest prefix that names it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # errors, names, settings, units, words, bounded reading, files, redaction: every layer's helpers
    ("core", ("dvdoctor.__init__", "dvdoctor.core")),
    # the copy program: run in a Job with dvdoctor's image (or here for the lab), it needs only the core
    ("copy program", ("dvdoctor.copies",)),
    # the Cluster port, the Kubernetes adapter, retries, the lease lock, one-shot pods, RBAC rules
    ("cluster", ("dvdoctor.cluster",)),
    # the simulated namespace: another adapter of the port
    ("lab", ("dvdoctor.lab",)),
    # what one run knows: collect, the Facts, what they say about backups, jobs and DV's templates
    ("facts", ("dvdoctor.facts", "dvdoctor.copies.where")),
    # pure judgements of the facts, and the frame they register with
    ("checks", ("dvdoctor.verdicts", "dvdoctor.checks")),
    # the vocabulary every repair is written in: typed actions, the executor, its audit log, the owner
    # and deletion rules, the fix frame
    ("repair", ("dvdoctor.repair",)),
    # one module per repair: facts -> a plan
    ("fixes", ("dvdoctor.fixes",)),
    # backup, restore, list, prune, the gate and the schedule: DV's own jobs driven with the above
    ("flows", ("dvdoctor.flows",)),
    # what people and machines read: reports, formats, tables, the check pages
    ("render", ("dvdoctor.render",)),
    # parsing, asking and rendering: the command line and the site's settings file
    ("cli", ("dvdoctor.cli", "dvdoctor.__main__")),
)

#: Upward imports that stay, each with its reason: (importer, imported) -> why.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("dvdoctor.repair.fixer", "dvdoctor.fixes.__init__"):
        "plugin discovery: load_all imports the fixes package only to walk its modules by name; each "
        "fix registers itself with the frame below it (the checks' registry does the same, in one layer)",
}


def module_files() -> dict[str, Path]:
    """Every dvdoctor module by its dotted name; checks/ and fixes/ install as dvdoctor.checks/.fixes."""
    out = {}
    for folder, package in (("dvdoctor", "dvdoctor"), ("checks", "dvdoctor.checks"), ("fixes", "dvdoctor.fixes")):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            if rel.parts[:2] == ("lab", "image") or rel.parts == ("lab", "runner"):
                continue  # programs the lab runs as a pod's command, not modules of dvdoctor
            out[".".join((package, *rel.parts))] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The dvdoctor modules `name` imports anywhere in its file, as module names (a package as its __init__)."""
    package = name.rsplit(".", 1)[0]  # a module's package; for `x.__init__`, x itself
    found: set[str] = set()

    def add(target: str) -> None:
        if target in known:
            found.add(target)
        elif f"{target}.__init__" in known:
            found.add(f"{target}.__init__")

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("dvdoctor"):
                    add(alias.name)
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str) and node.args[0].value.startswith("dvdoctor")
              and (getattr(node.func, "attr", None) or getattr(node.func, "id", None)) in ("import_module", "__import__")):
            add(node.args[0].value)  # importlib.import_module("dvdoctor.x") and __import__ count too
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module.startswith("dvdoctor"):
                continue
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                if sub in known or f"{sub}.__init__" in known:
                    add(sub)  # `from package import module`
                else:
                    add(module)
    found.discard(name)
    return found


def layer_of(name: str) -> int:
    best, rank = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    assert rank is not None, f"{name} belongs to no layer: add its package to LAYERS in tests/test_layers.py"
    return rank


@functools.cache
def graph() -> dict[str, set[str]]:
    files = module_files()
    known = set(files)
    return {name: imports(name, path, known) for name, path in files.items()}


def test_every_module_has_a_layer():
    for name in graph():
        layer_of(name)


def test_no_import_goes_up():
    upward = []
    for name, targets in sorted(graph().items()):
        for target in sorted(targets):
            if layer_of(target) > layer_of(name) and (name, target) not in EXCEPTIONS:
                upward.append(f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})")
    assert upward == [], "imports that go up a layer:\n" + "\n".join(upward)


def test_the_exceptions_are_still_needed():
    edges = graph()
    stale = [f"{a} -> {b}" for a, b in EXCEPTIONS if b not in edges.get(a, set())]
    assert stale == [], "exceptions no import needs any more (remove them): " + ", ".join(stale)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle():
    found = cycles(graph())
    assert found == [], "modules that import each other, round a cycle: " + "; ".join(" <-> ".join(c) for c in found)


#: Imports by a name the test cannot read (computed at run time), each with why it stays: (file, the
#: call) -> why. Any other computed import, exec or eval fails the test below, so that no import the
#: layers do not see can point up or close a cycle.
DYNAMIC_IMPORTS: dict[tuple[str, str], str] = {
    ("dvdoctor/verdicts/registry.py", "import_module"):
        "the module of a check function being registered (fn.__module__): it is importing already",
    ("dvdoctor/repair/fixer.py", "import_module"):
        "the module of a fix function being registered (fn.__module__): it is importing already",
    ("dvdoctor/core/plugins.py", "import_module"):
        "the modules of a package its caller hands in (the checks' registry, the fixes' frame): the "
        "caller's import, which the EXCEPTIONS above name where it goes up",
    ("dvdoctor/cli/__init__.py", "import_module"):
        "the command table's modules (dvdoctor/cli/commands.py), for tests and docs: the top layer",
    ("dvdoctor/cli/lazy.py", "import_module"):
        "the module of the command being run, from the command table: the top layer",
    ("dvdoctor/verdicts/registry.py", "find_spec"):
        "where dvdoctor.fixes lies, to see whether a check has a fix module: found, never run",
}
#: What runs an import, or code, by a name: a call to any of these (under any alias) is looked at.
_LOADERS = {"import_module", "__import__", "exec", "eval", "resolve_name", "find_spec", "exec_module",
            "spec_from_file_location", "load_module"}


def test_no_import_hides_from_the_layers():
    """Break-it review (session 21): `import_module` under another name, with a computed name or a
    relative one and `__package__`, `builtins.__import__`, `exec("from dvdoctor...")` and a bare
    `from fixes import ...` all went past the layer test. Every such call is either a literal
    dvdoctor module (which `imports` reads) or named in DYNAMIC_IMPORTS; `checks` and `fixes` are
    imported as dvdoctor.checks and dvdoctor.fixes only."""
    found, unused = [], set(DYNAMIC_IMPORTS)
    for path in module_files().values():
        rel = str(path.relative_to(ROOT))
        tree = ast.parse(path.read_text(), rel)
        aliases = {a.asname: a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                   for a in node.names if a.asname and a.name in _LOADERS}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, "level", 0):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                found += [f"{rel}:{node.lineno}: imports {n!r}, not dvdoctor.{n}" for n in names
                          if n.split(".")[0] in ("checks", "fixes")]
            if not isinstance(node, ast.Call):
                continue
            raw = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
            called = aliases.get(raw, raw)
            if called not in _LOADERS or (called in ("exec", "eval") and not isinstance(node.func, ast.Name)):
                continue  # `cluster.exec(pod, argv)` runs a command in a pod, not Python
            first = node.args[0] if node.args else None
            literal = isinstance(first, ast.Constant) and isinstance(first.value, str)
            if literal and first.value.startswith("dvdoctor") and raw in ("import_module", "__import__"):
                continue  # read by `imports` (by its own name: an alias is not)
            if (rel, called) in DYNAMIC_IMPORTS:
                unused.discard((rel, called))
                continue
            found.append(f"{rel}:{node.lineno}: {called}(...) imports or runs what the layers cannot see")
    assert found == [], "\n".join(found)
    assert unused == set(), f"DYNAMIC_IMPORTS no code needs any more (remove them): {sorted(unused)}"
