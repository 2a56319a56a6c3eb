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


def test_lab_break_knows_every_id_before_it_applies_one(lab, capsys):
    """`bar-low-space,nope`: the unknown id is one line and exit 2, and bar-low-space was not applied;
    no id at all is the same kind of error, not a silent success."""
    path = str(lab.store.root)
    before = lab.get("persistentvolumeclaims", "dv-bar-pvc")["status"]["capacity"]["storage"]
    assert run(["lab", "break", path, "bar-low-space,nope"]) == 2
    assert "unknown fault 'nope'" in capsys.readouterr().err
    assert lab.get("persistentvolumeclaims", "dv-bar-pvc")["status"]["capacity"]["storage"] == before
    assert json.loads((lab.store.root / "lab.json").read_text())["breaks"] == []
    for empty in ("", " , "):
        assert run(["lab", "break", path, empty]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "no fault id given" in err


def test_lab_create_says_the_claim_as_the_faults_left_it(lab_dir, capsys):
    assert run(["lab", "create", str(lab_dir), "--break", "bar-low-space"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    claim = json.loads((lab_dir / "objects" / "persistentvolumeclaims" / "dv-bar-pvc.json").read_text())
    assert first.endswith(f"dv-bar-pvc is {claim['status']['capacity']['storage']}"), first
    assert claim["status"]["capacity"]["storage"] != json.loads((lab_dir / "lab.json").read_text())["settings"]["bar_capacity"]


def test_a_fault_with_nothing_left_to_act_on_is_refused_before_anything_is_made(lab_dir, capsys):
    """bar-low-space shrinks the backup claim that bar-pvc-missing deletes: named after it, the pair is
    one line and exit 2, before any lab is made (it was exit 3 with a half-made lab left behind);
    named first, it acts, then the claim goes."""
    assert run(["lab", "create", str(lab_dir), "--break", "bar-pvc-missing,bar-low-space"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fault bar-low-space needs the backup claim dv-bar-pvc" in err
    assert "name bar-low-space before bar-pvc-missing" in err
    assert not lab_dir.exists()
    assert run(["lab", "create", str(lab_dir), "--break", "bar-low-space,bar-pvc-missing,bar-low-space"]) == 0
    out = capsys.readouterr().out
    assert "dv-bar-pvc is missing" in out and "faults: bar-low-space, bar-pvc-missing\n" in out


def test_lab_break_applies_none_of_a_list_when_one_could_not_act(lab, capsys):
    """`lab break L bar-pvc-missing,bar-low-space` leaves the claim where it was; a fault the lab's
    earlier faults left nothing to act on names the fault that did."""
    path = str(lab.store.root)
    assert run(["lab", "break", path, "bar-pvc-missing,bar-low-space"]) == 2
    assert "which fault bar-pvc-missing takes away" in capsys.readouterr().err
    assert lab.get("persistentvolumeclaims", "dv-bar-pvc") is not None
    assert json.loads((lab.store.root / "lab.json").read_text())["breaks"] == []
    assert run(["lab", "break", path, "leftover-bar-pods"]) == 0
    capsys.readouterr()
    assert run(["lab", "break", path, "leftover-bar-pods"]) == 2  # its job is there: a second would clash
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "which this lab no longer has (it has fault leftover-bar-pods)" in err
