"""Write docs/checks/: a page per check and an index, generated from the check and fix registries.

The runbook text lives once, in each check's and fix's module docstring; `dvdoctor explain`, the
SARIF rules and these pages all read it from the registries, so the docs cannot drift from the
code. tests/test_docs_sync.py regenerates the pages and fails when the committed ones differ.

    python -m dvdoctor.render.docs [--out docs/checks] [--check]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ..facts.model import SECTION_ACCESS, SECTION_BAR, SECTION_ENGINE
from ..core.files import write_atomic
from ..repair.fixer import Fix
from ..verdicts.registry import Check

DEFAULT_OUT = Path("docs/checks")
SECTIONS = ("Symptom", "Cause", "Repair", "Changes")
_LABEL = re.compile(rf"^({'|'.join(SECTIONS)}):\s*", re.MULTILINE)
APPLIES = {
    "always": "every run of `dvdoctor check`, and the gates before a backup and a restore",
    "backup": "`dvdoctor check` and the gate before a backup (`dvdoctor check --for backup`)",
    "restore": "`dvdoctor check` and the gate before a restore (`dvdoctor check --for restore`)",
    "now": "`dvdoctor check` only: no gate waits for it",
}
NEEDS = {
    SECTION_BAR: "the look inside the backup volume from a short-lived pod (skipped with `--no-pod`)",
    SECTION_ENGINE: "the look inside `dv-engine-0` (skipped when that pod is not running)",
    SECTION_ACCESS: "dvdoctor's own permissions, from a SelfSubjectRulesReview",
}


def split_doc(doc: str) -> tuple[str, dict[str, str]]:
    """A module docstring as (summary, {Symptom/Cause/Repair/Changes: text}); text before the first
    label, after the summary, goes with the summary."""
    parts = _LABEL.split(doc.strip())
    summary = parts[0].strip()
    sections = {parts[i]: _sentence(parts[i + 1].strip()) for i in range(1, len(parts) - 1, 2)}
    return summary, sections


def _sentence(text: str) -> str:
    """Docstrings go on lower-case after `Cause:`; under a heading the text starts a sentence."""
    return text[:1].upper() + text[1:]


def _source(obj_module: str, root: str) -> str:
    """The repository path of a check or fix module (dvdoctor.checks.x lives in checks/x.py)."""
    return f"{root}/{obj_module.rsplit('.', 1)[-1]}.py"


def check_page(chk: Check, fix: Fix | None) -> str:
    summary, sections = split_doc(chk.doc)
    lines = [f"# {chk.id}: {chk.title}", "", summary, ""]
    lines += [
        "| | |", "|---|---|",
        f"| severity | {chk.severity} |",
        f"| runs in | {'; '.join(APPLIES[a] for a in sorted(chk.applies))} |",
        f"| repair | {'`' + chk.fix_command + '`' if chk.fix_command else 'manual (below)'} |",
    ]
    if chk.needs:
        lines.append(f"| reads | {'; '.join(NEEDS.get(n, n) for n in sorted(chk.needs))} |")
    if chk.tags:
        lines.append(f"| tags | {', '.join(chk.tags)} |")
    lines.append(f"| source | [`{_source(chk.run.__module__, 'checks')}`](../../{_source(chk.run.__module__, 'checks')}) |")
    for label in ("Symptom", "Cause", "Repair"):
        if label in sections:
            lines += ["", f"## {label}", "", sections[label]]
    lines += ["", "## The fix", ""]
    if chk.fix and fix is None:
        lines.append(f"`{chk.fix_command}` is named by this check, but no fix module registers `{chk.fix}`.")
    elif fix is None:
        lines.append(f"No automatic repair: the steps above are done by hand. `dvdoctor fix --issue {chk.id}` "
                     "prints them and changes nothing.")
    else:
        fix_summary, fix_sections = split_doc(fix.doc)
        lines += [f"`{chk.fix_command}` prints its plan, asks, applies it, records every change in the audit log, "
                  f"and is verified only when this check passes again (`--dry-run` shows the plan alone).", "",
                  fix_summary]
        if "Changes" in fix_sections:
            lines += ["", f"What it changes: {fix_sections['Changes']}"]
        lines.append(f"\nSource: [`{_source(fix.make.__module__, 'fixes')}`](../../{_source(fix.make.__module__, 'fixes')})")
    lines += [
        "", "## What dvdoctor shows", "",
        "Each finding is a message, the evidence that proves it (log lines, sizes, names, as read from the "
        "cluster) and the object it is about, as `kind/name`. In `dvdoctor check -o json`:", "",
        "```json",
        f'{{"id": "{chk.id}", "status": "{"fail" if chk.severity == "error" else "warn"}", "severity": "{chk.severity}",',
        ' "problems": [{"message": "...", "evidence": ["...", "..."], "object": "kind/name", "suppressed": null}],',
        f' "fix": {_json_str(chk.fix_command)}}}',
        "```", "",
        "In JUnit output it is a test case named after the check; in SARIF, results of the rule "
        f"`{chk.id}` with the object as a logical location. To accept a finding at your site, suppress it "
        "in `dvdoctor.yaml` (see [commands](../commands.md#site-settings-dvdoctoryaml)):", "",
        "```yaml", "suppressions:", f"  - check: {chk.id}", "    object: kind/name   # optional",
        "    reason: why this is acceptable here", "```", "",
        f"`dvdoctor explain {chk.id}` prints the runbook text above. [All checks](README.md)", "",
    ]
    return "\n".join(lines)


def _json_str(value: str | None) -> str:
    return "null" if value is None else '"' + value.replace('"', '\\"') + '"'


def index_page(checks: dict[str, Check]) -> str:
    lines = [
        "# Checks", "",
        "Every failure mode dvdoctor knows, one page each, generated from the registry by "
        "`python -m dvdoctor.render.docs`: do not edit these pages by hand, edit the check's or fix's module docstring.", "",
        "| check | severity | runs in | repair | what it finds |", "|---|---|---|---|---|",
    ]
    for chk in checks.values():
        runs = ", ".join(sorted(chk.applies))
        repair = f"`dvdoctor fix --issue {chk.fix}`" if chk.fix else "manual"
        lines.append(f"| [{chk.id}]({chk.id}.md) | {chk.severity} | {runs} | {repair} | {chk.title} |")
    return "\n".join(lines) + "\n"


def pages() -> dict[str, str]:
    """Every generated file, by name, from the registries as they are now."""
    from ..repair.fixer import load_all as load_fixes
    from ..verdicts.registry import load_all as load_checks

    checks, fixes = load_checks(), load_fixes()
    out = {f"{chk.id}.md": check_page(chk, fixes.get(chk.fix) if chk.fix else None) for chk in checks.values()}
    out["README.md"] = index_page(checks)
    return out


def stale(out: Path) -> list[str]:
    """The generated files that are missing, different or left over in `out`."""
    wanted = pages()
    present = {p.name for p in out.glob("*.md")} if out.is_dir() else set()
    differ = [n for n, text in wanted.items() if not (out / n).is_file() or (out / n).read_text(encoding="utf-8") != text]
    return sorted(differ + [n for n in present - set(wanted)])


def write(out: Path) -> list[str]:
    """Write every page and remove pages of checks that no longer exist; returns what changed."""
    changed = stale(out)
    out.mkdir(parents=True, exist_ok=True)
    wanted = pages()
    for name in changed:
        if name in wanted:
            write_atomic(out / name, wanted[name])
        else:
            (out / name).unlink()
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dvdoctor.render.docs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder of the pages (default: docs/checks)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when the pages are out of date")
    args = parser.parse_args(argv)
    if args.check:
        behind = stale(args.out)
        for name in behind:
            print(f"{args.out / name} is out of date", file=sys.stderr)
        if behind:
            print("regenerate with: python -m dvdoctor.render.docs", file=sys.stderr)
        return 1 if behind else 0
    changed = write(args.out)
    print(f"{args.out}: {len(changed)} {'page' if len(changed) == 1 else 'pages'} written or removed" + (f": {', '.join(changed)}" if changed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
