"""`dvdoctor lab ...` through the CLI's own entry point (dvdoctor.cli.run)."""

from __future__ import annotations

import json

from dvdoctor.cli import run


def test_create_status_break_destroy(lab_dir, capsys):
    assert run(["lab", "create", str(lab_dir), "--break", "stale-bar-marker", "--namespace", "dv"]) == 0
    assert "namespace dv" in capsys.readouterr().out
    assert run(["lab", "break", str(lab_dir), "restore-marker-left"]) == 0
    assert run(["lab", "status", str(lab_dir), "-o", "json"]) == 0
    view = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert view["namespace"] == "dv"
    assert view["breaks"] == ["stale-bar-marker", "restore-marker-left"]
    assert view["markers"] == [".bar", ".bar_restored.txt"]
    assert [b["complete"] for b in view["backups"]] == [True]
    assert run(["--lab", str(lab_dir), "lab", "status"]) == 0
    assert "dv-bar-pvc" in capsys.readouterr().out
    assert run(["lab", "create", str(lab_dir)]) == 2
    assert "--force" in capsys.readouterr().err
    assert run(["lab", "destroy", str(lab_dir)]) == 0
    assert not lab_dir.exists()


def test_unknown_fault_is_a_usage_error(lab_dir, capsys):
    assert run(["lab", "create", str(lab_dir), "--break", "bar-permissions,nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown fault 'nope'" in err and "stale-bar-marker" in err
    assert not lab_dir.exists()
