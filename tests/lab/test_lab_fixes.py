"""Every fix end to end in the lab, through the CLI: break, check fails, `fix --issue ID --yes`
reports verified, check passes, a second fix finds nothing to do; a dry run, a declined prompt
and a check with no automatic repair change nothing."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from dvdoctor.cli import run
from dvdoctor.repair.fixer import load_all as load_fixes
from dvdoctor.lab import FAULTS, break_lab
from dvdoctor.verdicts.registry import load_all as load_checks

#: Options a repair needs in the lab: the low-space fault leaves nothing safe to free, so the claim grows.
OPTIONS = {"bar-low-space": ["--size", "200Mi"]}
#: Checks whose repair is manual: `fix` prints steps and changes nothing.
MANUAL = sorted(c.id for c in load_checks().values() if c.fix is None and c.id in FAULTS)
AUTOMATIC = sorted(i for i in load_fixes() if i in FAULTS and i != "init-volume-pod-missing")
#: Repairs whose lab fault is not what they repair. The side-deployments-running fault runs DV's
#: backup job beside the running deployments, and no repair acts under DV's job (test_flow_owner.py);
#: the repair is the runbook's step before a backup, on a healthy lab judged as a backup's gate.
NOT_BY_ITS_FAULT = {"side-deployments-running"}


def cli(lab: Path, *args: str) -> int:
    return run(["--lab", str(lab), *args])


def check_status(lab: Path, check_id: str, capsys, phase: str = "now") -> str:
    capsys.readouterr()
    cli(lab, "check", "-o", "json", "--only", check_id, "--for", phase)
    [result] = json.loads(capsys.readouterr().out)["results"]
    return result["status"]


def state(lab: Path) -> dict[str, str]:
    """What a repair could change: object specs and metadata, and every path on the volumes."""
    out = {}
    for kind in ("deployments", "jobs", "persistentvolumeclaims", "persistentvolumes", "pods", "leases"):
        for f in sorted((lab / "objects" / kind).glob("*.json")) if (lab / "objects" / kind).is_dir() else []:
            obj = json.loads(f.read_text())
            if obj["metadata"]["name"].startswith("dvdoctor-inspect"):
                continue
            keep = {"spec": obj.get("spec"), "annotations": obj["metadata"].get("annotations")}
            out[f"{kind}/{f.stem}"] = hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()
    for p in sorted((lab / "volumes").rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(lab))] = f"{st.st_mode:o} {st.st_uid} {st.st_size} {os.readlink(p) if p.is_symlink() else ''}"
    return out


@pytest.fixture(autouse=True)
def audit_file(tmp_path, monkeypatch):
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("DVDOCTOR_AUDIT", str(path))
    return path


@pytest.mark.parametrize("fix_id", AUTOMATIC)
def test_fix_repairs_verifies_and_is_idempotent(lab, fix_id, capsys, audit_file):
    root = lab.store.root
    phase = load_fixes()[fix_id].verify_phase
    if fix_id not in NOT_BY_ITS_FAULT:
        break_lab(root, fix_id)
    assert check_status(root, fix_id, capsys, phase) in ("fail", "warn")
    assert cli(root, "fix", "--issue", fix_id, "--yes", *OPTIONS.get(fix_id, [])) == 0
    out = capsys.readouterr().out
    assert f"{fix_id}: ✓ verified" in out, out
    assert check_status(root, fix_id, capsys, phase) == "pass"
    entries = [json.loads(line) for line in audit_file.read_text().splitlines()]
    assert entries and all(e["fix"] == fix_id and e["changes"] for e in entries)
    assert cli(root, "fix", "--issue", fix_id, "--yes") == 0
    assert f"{fix_id}: nothing to do" in capsys.readouterr().out


@pytest.mark.parametrize("fix_id", ["bar-permissions", "stale-bar-marker", "side-deployments-left-down", "broken-backup-symlink"])
def test_dry_run_and_a_declined_prompt_change_nothing(lab, fix_id, capsys):
    root = lab.store.root
    break_lab(root, fix_id)
    before = state(root)
    assert cli(root, "fix", "--issue", fix_id, "--dry-run") == 0
    assert "nothing was changed" in capsys.readouterr().out
    assert state(root) == before
    assert cli(root, "fix", "--issue", fix_id) == 1  # no terminal under pytest, no --yes: no
    assert "nothing was changed" in capsys.readouterr().out
    assert state(root) == before
    assert check_status(root, fix_id, capsys) in ("fail", "warn")


@pytest.mark.parametrize("check_id", MANUAL)
def test_a_check_without_automatic_repair_prints_steps_and_changes_nothing(lab, check_id, capsys):
    root = lab.store.root
    break_lab(root, check_id)
    before = state(root)
    assert cli(root, "fix", "--issue", check_id, "--yes") == 1
    out = capsys.readouterr().out
    assert "no safe automatic repair; do this by hand" in out and "Nothing to change" in out
    assert state(root) == before


def test_fix_all_repairs_several_faults_at_once(lab, capsys):
    root = lab.store.root
    for fault in ("bar-permissions", "stale-bar-marker", "restore-marker-left", "bar-pv-reclaim-delete"):
        break_lab(root, fault)
    assert cli(root, "fix", "--all", "--yes") == 0
    out = capsys.readouterr().out
    assert out.count("✓ verified") == 4, out
    assert cli(root, "check") == 0


def test_a_removal_planned_before_the_lock_is_not_applied_to_a_volume_that_changed_meanwhile(lab, capsys):
    """Break-it review: a fix planned, then took the lock, and ran that plan; a run that held the lock
    in between (a restore from a copy) may have made the damaged folder a good backup. Under the lock
    the volume is listed again: changed, nothing is removed and the run says to look again."""
    import contextlib
    import shutil

    from dvdoctor.facts.collect import collect
    from dvdoctor.repair.fixer import FixOptions
    from dvdoctor.repair.runner import Repairs

    root = lab.store.root
    break_lab(root, "incomplete-backups")
    facts = collect(lab, source="lab", verify=True)
    bar = lab.store.volume_dir("dv-bar-pvc") / "1.5.0"
    damaged = sorted(p for p in bar.iterdir() if p.is_dir() and not p.name.startswith("."))[0]
    good = sorted(p for p in bar.iterdir() if p.is_dir() and not p.name.startswith("."))[-1]
    said: list[str] = []

    class Screen:
        def ask(self, _question: str) -> bool:
            return True

        def failed(self, fix_id: str, why: str) -> None:
            said.append(why)

        def __getattr__(self, _name: str):
            return lambda *args, **kwargs: None

    @contextlib.contextmanager
    def lock_after_another_run(_command, _ending):
        for f in good.iterdir():  # another run wrote the backup back whole while this one waited
            if f.is_file():
                shutil.copy2(f, damaged / f.name)
        yield

    repairs = Repairs(cluster=lab, screen=Screen(), audit_file=root.parent / "audit.jsonl",  # type: ignore[arg-type]
                      collect_again=lambda every: collect(lab, source="lab", verify=every),
                      lock=lock_after_another_run)
    assert repairs.repair(facts, ["incomplete-backups"], FixOptions()) is False
    assert damaged.is_dir() and (damaged / "dv_backup.tar.gz").is_file()  # the good backup it now is stays
    assert said and "a backup folder or the restore point changed since the plan was made" in said[0]
    assert check_status(root, "incomplete-backups", capsys) == "pass"


def test_a_file_beside_the_backups_does_not_hold_up_a_planned_removal(lab, capsys):
    """The volume is compared where the plans judge it: backup folders, dvdoctor's own, the link."""
    import contextlib

    from dvdoctor.facts.collect import collect
    from dvdoctor.repair.fixer import FixOptions
    from dvdoctor.repair.runner import Repairs

    root = lab.store.root
    break_lab(root, "incomplete-backups")
    facts = collect(lab, source="lab", verify=True)
    bar = lab.store.volume_dir("dv-bar-pvc") / "1.5.0"

    class Screen:
        def ask(self, _question: str) -> bool:
            return True

        def __getattr__(self, _name: str):
            return lambda *args, **kwargs: None

    @contextlib.contextmanager
    def lock_after_a_note(_command, _ending):
        (bar / "notes.txt").write_text("checked by ops\n")
        yield

    repairs = Repairs(cluster=lab, screen=Screen(), audit_file=root.parent / "audit.jsonl",  # type: ignore[arg-type]
                      collect_again=lambda every: collect(lab, source="lab", verify=every), lock=lock_after_a_note)
    assert repairs.repair(facts, ["incomplete-backups"], FixOptions()) is True
    assert check_status(root, "incomplete-backups", capsys) == "pass"


def test_a_suppressed_finding_is_not_repaired_and_the_rest_is(lab, capsys, tmp_path, monkeypatch):
    """Break-it review (session 21): a site that suppressed one deployment left down on purpose saw
    `fix` scale it back up with the others; the suppression names a finding the site keeps."""
    root = lab.store.root
    break_lab(root, "side-deployments-left-down")
    config = tmp_path / "site.yaml"
    config.write_text("suppressions:\n  - check: side-deployments-left-down\n    object: deployment/dv-caching\n"
                      "    reason: dv-caching is turned off on purpose at this site\n")
    for args in (("fix", "--issue", "side-deployments-left-down", "--dry-run"), ("fix", "--all", "--dry-run")):
        capsys.readouterr()
        assert run(["--config", str(config), "--lab", str(root), *args]) == 0
        out = capsys.readouterr().out
        assert "scale deployment/dv-api" in out and "dv-caching" not in out.split("plan")[-1], out
    assert run(["--config", str(config), "--lab", str(root), "fix", "--all", "--yes"]) == 0
    assert ("side-deployments-left-down: ✓ verified: check side-deployments-left-down passes but for what the "
            "site suppressed") in capsys.readouterr().out
    def replicas() -> dict[str, int]:
        return {p.stem: json.loads(p.read_text())["spec"]["replicas"]
                for p in (root / "objects" / "deployments").glob("*.json")}

    assert replicas()["dv-caching"] == 0 and replicas()["dv-api"] > 0 and replicas()["dv-unified-console"] > 0
    assert run(["--config", str(config), "--lab", str(root), "fix", "--issue", "side-deployments-left-down", "--yes"]) == 0
    assert "nothing to do (its check finds only what the site suppressed)" in capsys.readouterr().out
    # nor does a backup scale it up from the count dvdoctor recorded when it left it down (second review)
    (tmp_path / "logs").mkdir()
    assert run(["--config", str(config), "--lab", str(root), "backup", "--yes", "--log-dir", str(tmp_path / "logs")]) == 0
    assert replicas()["dv-caching"] == 0 and replicas()["dv-api"] > 0, replicas()
