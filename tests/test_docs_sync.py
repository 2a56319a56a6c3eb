"""docs/checks/ is generated from the registries; the committed pages must be what they generate now."""

from __future__ import annotations

from pathlib import Path

from dvdoctor.render import docs
from dvdoctor.repair.fixer import load_all as load_fixes
from dvdoctor.verdicts.registry import load_all as load_checks

PAGES = Path(__file__).resolve().parents[1] / "docs" / "checks"


def test_committed_check_pages_match_the_registry():
    behind = docs.stale(PAGES)
    assert behind == [], f"docs/checks is out of date ({', '.join(behind)}): run python -m dvdoctor.render.docs"


def test_every_check_has_a_page_and_an_index_row():
    index = docs.pages()["README.md"]
    for chk in load_checks().values():
        assert f"[{chk.id}]({chk.id}.md)" in index
        assert chk.title in docs.pages()[f"{chk.id}.md"]


def test_a_page_carries_the_runbook_text_and_what_the_fix_changes():
    checks, fixes = load_checks(), load_fixes()
    chk = checks["bar-permissions"]
    page = docs.check_page(chk, fixes[chk.fix])
    summary, sections = docs.split_doc(chk.doc)
    assert page.startswith(f"# bar-permissions: {chk.title}\n\n{summary}\n")
    for label in ("Symptom", "Cause", "Repair"):
        assert f"## {label}\n\n{sections[label]}" in page
    _, fix_sections = docs.split_doc(fixes[chk.fix].doc)
    assert f"What it changes: {fix_sections['Changes']}" in page
    assert "`dvdoctor fix --issue bar-permissions`" in page


def test_a_check_without_a_fix_says_the_repair_is_manual():
    manual = next(c for c in load_checks().values() if not c.fix)
    assert "No automatic repair" in docs.check_page(manual, None)


def test_split_doc_reads_labelled_sections():
    summary, sections = docs.split_doc("One line.\n\nMore about it.\nSymptom: it shows\nover two lines.\n"
                                       "Cause: a reason.\nRepair: do this.\n")
    assert summary == "One line.\n\nMore about it."
    assert sections == {"Symptom": "It shows\nover two lines.", "Cause": "A reason.", "Repair": "Do this."}


def test_check_mode_finds_edits_and_write_removes_pages_of_gone_checks(tmp_path, capsys):
    assert docs.main(["--out", str(tmp_path)]) == 0
    assert docs.main(["--out", str(tmp_path), "--check"]) == 0
    (tmp_path / "stale-bar-marker.md").write_text("edited by hand\n")
    (tmp_path / "a-removed-check.md").write_text("old\n")
    assert docs.main(["--out", str(tmp_path), "--check"]) == 1
    assert "stale-bar-marker.md is out of date" in capsys.readouterr().err
    assert docs.write(tmp_path) == ["a-removed-check.md", "stale-bar-marker.md"]
    assert not (tmp_path / "a-removed-check.md").exists() and docs.stale(tmp_path) == []
