"""Any byte in a file name survives the in-pod scripts and their parser: names with a newline, a tab,
spaces, quotes, `$(...)`, a leading `-`, a carriage return, bytes that are not UTF-8 are read back
exactly by the real bar-probe.sh and engine-probe.sh under bash, reported as a finding (odd name),
never parsed as fields, never a traceback, never taken for a backup."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import builders as b
from dvdoctor.facts import probe
from dvdoctor.facts.model import Facts, validate
from dvdoctor.verdicts.registry import load_all
from dvdoctor.facts.trust import survey

ODD_NAMES = [
    "odd\nname", "tab\there", "with spaces", "quote'd \"both\"", "$(touch dvdoctor-pwned)", "-rf",
    "semi;colon", "cr\rreturn", "line\u2028separator", "=b64-looking", "2021-01-22-19-27-31\n",
]
BAD_UTF8 = b"latin1-\xe9t\xe9"


def test_odd_folder_names_come_back_exactly_and_are_findings(root):
    bar = root / "mnt" / "PV" / "bar"
    b.write_backup(bar, b.TS, {"dv_backup.tar.gz": 100})
    os.symlink(b.RUNBOOK_LINK_TARGET, bar / "dv_backup.tar.gz")
    for name in ODD_NAMES:
        (bar / name).mkdir()
        (bar / name / "dv_backup.tar.gz").write_bytes(b"x")  # would be a backup's tarball, were it a backup
    os.mkdir(os.fsencode(bar) + b"/" + BAD_UTF8)
    os.symlink("/mnt/PV/bar/odd\ntarget", bar / "link\nwith newline")

    facts = b.run_bar_probe(root, verify=True)

    assert facts["complete"] and facts["unparsed"] == 0
    top = {e["path"]: e for e in facts["entries"] if "/" not in e["path"] or e["path"].count("/") == 0}
    for name in ODD_NAMES:
        assert top[name]["type"] == "dir", name
        assert facts["entries"].count(top[name]) == 1
    assert top["latin1-\\xe9t\\xe9"]["type"] == "dir"  # not UTF-8: shown with escapes, never acted on
    assert top["link\nwith newline"]["target"] == "/mnt/PV/bar/odd\ntarget"
    assert not Path("dvdoctor-pwned").exists() and not (bar / "dvdoctor-pwned").exists()

    data = b.healthy()
    data["bar_volume"] = facts
    validate(data)
    s = survey(Facts(data))
    assert [x.timestamp for x in s.backups] == [b.TS]
    odd = {o.name for o in s.odd}
    assert odd == set(ODD_NAMES) | {"latin1-\\xe9t\\xe9", "link\nwith newline"}

    result = b.run_one("odd-backup-folders", data)
    assert result.status == "warn"
    assert len(result.problems) == len(odd)
    messages = [p.message for p in result.problems]
    assert all("\n" not in m and "\t" not in m and "\r" not in m for m in messages)
    assert "/mnt/PV/bar/odd\\nname is no backup: not a backup folder's name" in "\n".join(messages)
    # every other check still reads these facts without crashing
    for r in b.results(data):
        assert r.status != "crashed", (r.check.id, r.problems)


def test_a_marker_name_with_a_newline_and_a_tab_survives_engine_probe(root):
    markers = root / "mnt" / "marker_files"
    markers.mkdir(parents=True)
    (markers / ".bar").write_text("")
    (markers / "x\n.bar\t1\t2").write_text("")  # would forge a `.bar` record if split on lines
    argv = ["bash", "-c", probe.script("engine-probe.sh"), "engine-probe", "/mnt/marker_files", "/opt/none",
            "/opt/none/dv-caching-bar.sh"]
    out = subprocess.run(argv, env={"PATH": "/usr/bin:/bin", "DV_ROOT": str(root)}, capture_output=True,
                         check=True, timeout=30).stdout.decode()
    parsed = probe.parse_engine_probe(out)
    assert sorted(m["name"] for m in parsed["markers"]) == [".bar", "x\n.bar\t1\t2"]


def test_a_job_template_reaches_the_facts_byte_for_byte_whatever_it_holds(root):
    """engine-probe.sh sends a template as escaped text (read by the shell, no process), or base64
    when it holds a NUL byte, a byte beyond ASCII or more than 64 KiB: backslashes, tabs, line breaks, carriage returns, `&` (bash 5.2 puts the
    match there in a replacement) and what looks like an escape already all come back unchanged."""
    templates = root / "opt" / "templates"
    templates.mkdir(parents=True)
    texts = {"plain.yaml": "kind: Job\nspec:\n  x: 1\n", "empty.yaml": "",
             "odd.yaml": "a\\b\\\\c\td\r\ne & f && \\n \\t $HOME `x` %s \x1b\x0c\u2028é\\",
             "escapes.yaml": "a\\b\\\\c\td\r\ne & f && \\n \\t \\r $HOME `x` %s \x1b\x0c\x7f\\",
             "nul.yaml": "before\x00after\n", "big.yaml": "a\\\tb\n" * 20_000}  # big: over 64 KiB, sent base64
    for name, text in texts.items():
        (templates / name).write_text(text)
    argv = ["bash", "-c", probe.script("engine-probe.sh"), "engine-probe", "/mnt/none", "/opt/templates",
            "/opt/none/dv-caching-bar.sh", *texts, "absent.yaml"]
    out = subprocess.run(argv, env={"PATH": "/usr/bin:/bin", "DV_ROOT": str(root)}, capture_output=True,
                         check=True, timeout=30).stdout.decode()
    parsed = probe.parse_engine_probe(out)
    assert parsed["templates"] == texts and parsed["missing_templates"] == ["absent.yaml"]
    # as base64: the NUL one, the big one, and the one with é (an exec's websocket frames are decoded one by
    # one, so a character split between two would come back as U+FFFD); the ASCII ones as text
    assert out.count("\ntemplatetext\t") == 3 and out.count("\ntemplate\t") == 3


@pytest.mark.parametrize("text", [
    "probe\tbar\t2\nentry\tf\tNaN\t1\t644\t0\tx\t\nend\n",  # a size that is no count
    "probe\tbar\t2\nentry\tf\t1\tnan\t644\t0\tx\t\nend\n",  # a time that is no time
    "probe\tbar\t2\nentry\tf\t1\nend\n",                      # cut short
    "probe\tbar\t2\nentry\tf\t1\t1\t644\t0\t=!!notbase64\t\nend\n",
    "probe\tbar\t2\nid\tabc\t\nend\n",
    "probe\tbar\t2\nstamp\nreadback\nend\n",
])
def test_a_malformed_record_is_counted_never_a_traceback(text):
    parsed = probe.parse_bar_probe(text)
    assert parsed["complete"] and parsed["unparsed"] >= 1 and parsed["entries"] == []


def test_every_check_is_registered_with_its_docs():
    assert "odd-backup-folders" in load_all()
