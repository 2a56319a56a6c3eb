"""The registry: every check module loads and is documented; crashes and skips are reported, never passed."""

import importlib
import pkgutil
import re

import pytest

import builders as b
from dvdoctor.verdicts import registry
from dvdoctor.core.errors import UsageError
from dvdoctor.verdicts.registry import REGISTRY, Check, NotApplicable, Skip, run_checks


def test_every_check_module_registers_exactly_one_check_named_after_it():
    checks = registry.load_all()
    package = importlib.import_module("dvdoctor.checks")
    modules = {info.name for info in pkgutil.iter_modules(package.__path__)}
    assert modules == {c.id.replace("-", "_") for c in checks.values()}
    assert len(checks) == 28


@pytest.mark.parametrize("check_id", sorted(registry.load_all()))
def test_each_check_has_runbook_text_and_a_valid_declaration(check_id):
    chk = registry.load_all()[check_id]
    summary, _, rest = chk.doc.partition("\n")
    assert summary.strip() and summary.strip().endswith(".")
    assert re.search(r"^Symptom: ", rest, re.M) and re.search(r"^Cause: ", rest, re.M) and re.search(r"^Repair: ", rest, re.M)
    assert chk.severity in (registry.ERROR, registry.WARNING)
    assert chk.applies <= {registry.ALWAYS, registry.BACKUP, registry.RESTORE, registry.NOW}
    assert chk.needs <= {"bar_volume", "engine", "access", "copies"}
    assert chk.fix is None or re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", chk.fix)


@pytest.mark.parametrize("check_id", sorted(registry.load_all()))
def test_each_check_passes_on_the_healthy_namespace_in_every_phase(check_id):
    for phase in registry.PHASES:
        data = b.quiesced(b.healthy()) if phase == registry.BACKUP else b.healthy()
        for r in b.results(data, phase, (check_id,)):
            assert r.status == "pass", (phase, r.reason, [p.to_dict() for p in r.problems])


def test_a_crashing_check_is_reported_as_crash_and_the_others_still_run(monkeypatch):
    def explode(facts):
        raise KeyError("status")
        yield  # a generator, like the real checks

    monkeypatch.setitem(REGISTRY, "zz-explodes", Check("zz-explodes", "explodes", "warning", frozenset({"always"}), explode))
    results = {r.check.id: r for r in run_checks(b.Facts(b.healthy()))}
    assert results["zz-explodes"].status == "crash"
    assert results["zz-explodes"].reason == "KeyError: 'status'"
    assert len(results) == 29 and all(r.status == "pass" for i, r in results.items() if i != "zz-explodes")
    assert registry.exit_code(list(results.values())) == 1


def test_a_check_that_cannot_tell_is_skipped_with_its_reason(monkeypatch):
    def unsure(facts):
        raise Skip("PersistentVolumes could not be listed")
        yield

    monkeypatch.setitem(REGISTRY, "zz-unsure", Check("zz-unsure", "unsure", "error", frozenset({"always"}), unsure))
    [r] = run_checks(b.Facts(b.healthy()), only=["zz-unsure"])
    assert (r.status, r.reason, r.problems) == ("skip", "PersistentVolumes could not be listed", [])
    assert r.incomplete and registry.exit_code([r]) == 3  # its answer is unknown: the verdict is incomplete


def test_a_question_that_does_not_arise_is_skipped_and_the_verdict_stays_complete(monkeypatch):
    def not_now(facts):
        raise NotApplicable("job dv-backup-job is running and stops DV on purpose")
        yield

    monkeypatch.setitem(REGISTRY, "zz-not-now", Check("zz-not-now", "not now", "error", frozenset({"always"}), not_now))
    [r] = run_checks(b.Facts(b.healthy()), only=["zz-not-now"])
    assert (r.status, r.incomplete) == ("skip", False)
    assert registry.exit_code([r]) == 0


def test_a_failure_outranks_an_unknown(monkeypatch):
    def unsure(facts):
        raise Skip("unknown")
        yield

    monkeypatch.setitem(REGISTRY, "zz-unsure", Check("zz-unsure", "unsure", "error", frozenset({"always"}), unsure))
    data = b.healthy()
    data["engine"]["markers"].append({"name": ".bar", "size": 0, "mtime": 0})
    results = run_checks(b.Facts(data), only=["zz-unsure", "stale-bar-marker"])
    assert {r.check.id: r.status for r in results} == {"zz-unsure": "skip", "stale-bar-marker": "fail"}
    assert registry.exit_code(results) == 1


def test_a_check_whose_section_was_not_collected_is_skipped_with_why():
    data = b.healthy()
    del data["bar_volume"]
    data["skipped"]["bar_volume"] = "--no-pod: the backup volume was not inspected"
    r = b.run_one("bar-low-space", data)
    assert (r.status, r.reason) == ("skip", "bar_volume: --no-pod: the backup volume was not inspected")


def test_a_check_skipped_by_choice_is_not_unknown_whatever_else_failed():
    """no-recent-copy needs the backup volume and the copies: with no copies configured it does not
    apply, even when the volume's inspection failed (it would not have run either way)."""
    data = b.healthy()
    del data["bar_volume"]
    data["skipped"]["bar_volume"] = "the inspection pod could not be created: jobs is forbidden"
    del data["copies"]
    data["skipped"]["copies"] = "copies are not configured (copies: in dvdoctor.yaml)"
    r = b.run_one("no-recent-copy", data)
    assert r.status == "skip" and not r.incomplete, r.reason
    assert b.run_one("bar-low-space", data).incomplete  # the volume's own checks cannot tell


@pytest.mark.parametrize("option", ["only", "skip", "ignore"])
def test_unknown_check_ids_are_an_error_that_lists_the_known_ones(option):
    with pytest.raises(UsageError) as err:
        run_checks(b.Facts(b.healthy()), **{option: ["bar-low-space,no-such-check"]})
    message = str(err.value)
    assert "unknown check id 'no-such-check'" in message and "bar-low-space" in message and "stale-bar-marker" in message


def test_warning_checks_warn_and_error_checks_fail():
    data = b.healthy()
    b.find(data, "persistentvolumes", "pvc-bar-0472")["spec"]["persistentVolumeReclaimPolicy"] = "Delete"
    b.remove(data, "serviceaccounts", "dv-bar-sa")
    statuses = {r.check.id: r.status for r in b.results(data)}
    assert statuses["bar-pv-reclaim-delete"] == "warn"
    assert statuses["bar-sa-missing"] == "fail"


def test_the_healthy_builder_is_a_valid_facts_bundle_as_collect_writes_them():
    from dvdoctor.facts.model import validate

    validate(b.healthy())
    validate(b.quiesced(b.healthy()))


def test_every_log_signature_names_a_registered_check():
    from dvdoctor.facts.signatures import SIGNATURES

    checks = registry.load_all()
    assert {s.check for s in SIGNATURES} <= set(checks)
    assert all(s.fix is None or checks[s.check].fix == s.fix for s in SIGNATURES)


def test_the_ids_named_outside_their_modules_are_registered_ones():
    """Break-it review (session 21): a check or fix id typed again elsewhere (a set of fixes that act
    on backups, the fixes that act under DV's job, the checks a flow handles itself) was tied to the
    registry by no test; a typo there passed every unit test."""
    from dvdoctor.flows.gate import HANDLED_BY_FLOW
    from dvdoctor.flows.restore import POST_STEPS
    from dvdoctor.repair.fixer import load_all as load_fixes
    from dvdoctor.repair.owner import STOP_FIX, UNDER_BAR_JOB
    from dvdoctor.repair.runner import ON_BACKUPS

    checks, fixes = set(registry.load_all()), set(load_fixes())
    assert set(ON_BACKUPS) | set(UNDER_BAR_JOB) | {STOP_FIX, POST_STEPS} <= fixes
    assert {i for ids in HANDLED_BY_FLOW.values() for i in ids} <= checks


def test_no_text_in_the_code_is_a_near_miss_of_a_check_id():
    """Every string in dvdoctor, checks and fixes that looks like an id (words joined by '-') and is
    one or two letters off a registered id is a typo of it (`bar-low-spaec`)."""
    import ast
    from pathlib import Path

    from difflib import SequenceMatcher

    ids = set(registry.load_all())
    root = Path(__file__).resolve().parents[1]
    near = []
    for path in [*root.joinpath("dvdoctor").rglob("*.py"), *root.joinpath("checks").glob("*.py"),
                 *root.joinpath("fixes").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            text = node.value
            if text in ids or not re.fullmatch(r"[a-z]+(?:-[a-z]+){1,4}", text):
                continue
            for known in ids:
                if abs(len(known) - len(text)) <= 2 and SequenceMatcher(None, text, known).ratio() > 0.9:
                    near.append(f"{path.relative_to(root)}:{node.lineno}: {text!r} (is it {known!r}?)")
    assert not near, "\n".join(near)
