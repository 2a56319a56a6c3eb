"""End to end through the functions the CLI calls: create a lab, collect, run every check.

A healthy lab passes every check; each fault makes exactly its own check fail and no other.
"""

from __future__ import annotations

import json

import pytest

from dvdoctor.facts.collect import collect
from dvdoctor.core.errors import UsageError
from dvdoctor.lab import FAULTS, LabCluster, break_lab, create_lab
from dvdoctor.verdicts.registry import load_all, run_checks

#: Checks that read the backup volume are skipped when the inspection pod cannot run at all:
#: without its claim, its service account, or the job that names its image.
BAR_VOLUME_CHECKS = {"backup-unreadable", "bar-low-space", "bar-permissions", "broken-backup-symlink", "incomplete-backups", "no-recent-backup",
                     "odd-backup-folders"}
ALLOWED_SKIPS = {
    "bar-pvc-missing": BAR_VOLUME_CHECKS,
    "bar-sa-missing": BAR_VOLUME_CHECKS,
    "init-volume-job-missing": BAR_VOLUME_CHECKS,
    # DV is down on purpose while a backup runs, so pod readiness is not judged then.
    "side-deployments-running": {"dv-pods-not-ready"},
    "bar-job-unattended": {"dv-pods-not-ready"},
    # (dvdoctor-permissions takes watch on jobs away: the inspection's Job is then followed by reading
    # it, to its end, so nothing is skipped; the lab refuses the watch as a server does)
    # Kubernetes 1.11 serves no Lease: there is no lock to look at
    "server-too-old": {"stale-dvdoctor-lock"},
}


#: Checks of copies off the backup volume: they need `copies:` configured (a restic repository), which a lab
#: has not, so here they are not applicable; tests/flows/test_flow_copies.py breaks and checks them.
NEEDS_A_REPOSITORY = {c.id for c in load_all().values() if "copies" in c.tags}


def results(path) -> dict[str, str]:
    """Each check's status; a check that does not apply here (copies not configured) counts as passing."""
    facts = collect(LabCluster(path), source="lab")
    out = {}
    for r in run_checks(facts):
        applies = not (r.check.id in NEEDS_A_REPOSITORY and r.status == "skip" and not r.incomplete)
        out[r.check.id] = r.status if applies else "pass"
    return out


def test_a_new_lab_passes_every_check(lab_dir):
    create_lab(lab_dir)
    got = results(lab_dir)
    assert set(got) == set(load_all())
    assert {k: v for k, v in got.items() if v != "pass"} == {}


def test_df_in_a_bar_pod_reports_the_claim_not_the_host_disk(lab):
    bar = collect(lab, source="lab").bar
    size = lab.store.meta()["settings"]["bar_capacity"]
    assert bar["df"]["total"] == int(size.removesuffix("Mi")) * 1024 * 1024
    assert bar["df"]["used"] == bar["used_bytes"] and bar["df"]["avail"] == bar["df"]["total"] - bar["used_bytes"]


def test_every_check_has_a_fault():
    assert set(FAULTS) | NEEDS_A_REPOSITORY == set(load_all())


@pytest.mark.parametrize("fault_id", sorted(FAULTS))
def test_each_fault_trips_exactly_its_check(lab, fault_id):
    break_lab(lab.store.root, fault_id)
    got = results(lab.store.root)
    assert got[fault_id] in ("fail", "warn")
    others = {k: v for k, v in got.items() if k != fault_id and v != "pass"}
    skips = {k for k, v in others.items() if v == "skip"}
    assert skips <= ALLOWED_SKIPS.get(fault_id, set()), others
    assert {k: v for k, v in others.items() if v != "skip"} == {}


def test_openshift_3_11_is_an_error_and_its_missing_lock_is_not_an_unknown(lab):
    break_lab(lab.store.root, "server-too-old")
    got = {r.check.id: r for r in run_checks(collect(LabCluster(lab.store.root), source="lab"))}
    assert got["server-too-old"].status == "fail"
    assert got["stale-dvdoctor-lock"].status == "skip" and not got["stale-dvdoctor-lock"].incomplete


def test_several_breaks_at_once(lab_dir):
    create_lab(lab_dir, breaks=["bar-permissions,stale-bar-marker"])
    got = results(lab_dir)
    assert {k for k, v in got.items() if v != "pass"} == {"bar-permissions", "stale-bar-marker"}


def test_break_an_existing_lab(lab):
    break_lab(lab.store.root, "restore-marker-left")
    assert {k for k, v in results(lab.store.root).items() if v != "pass"} == {"restore-marker-left"}
    assert lab.store.meta()["breaks"] == ["restore-marker-left"]


def test_unknown_fault_lists_the_known_ones(lab_dir):
    with pytest.raises(UsageError, match="known faults: .*bar-permissions"):
        create_lab(lab_dir, breaks=["no-such-fault"])
    assert not lab_dir.exists()


def test_bar_job_failed_shows_the_runbooks_line(lab_dir):
    create_lab(lab_dir, breaks=["bar-job-failed"])
    facts = collect(LabCluster(lab_dir), source="lab")
    logs = "\n".join(facts.data["logs"].values())
    assert "Operation failed: [Errno 13] Permission denied: '/mnt/PV/bar/2021-01-14-19-20-07'" in logs
    assert not any(m["name"] == ".bar" for m in facts.engine["markers"])


@pytest.mark.parametrize("others", [["odd-backup-folders"], ["incomplete-backups"]])
@pytest.mark.mib_backups  # half a backup is less than the claim's whole MiB only for MiB-sized ones
def test_low_space_never_makes_the_claim_smaller_than_its_data(golden_lab, lab_dir, others):
    """bar-low-space leaves room for half a backup at most, sized by the biggest backup folder (another
    fault's folder may be near empty) and never below what the volume holds: the claim is too small for
    the next backup, not smaller than what is on it."""
    from labs import copy_lab
    from dvdoctor.core.units import parse_quantity
    from dvdoctor.lab.bar import du

    copy_lab(golden_lab, lab_dir)
    for fault in [*others, "bar-low-space"]:
        break_lab(lab_dir, fault)
    lab = LabCluster(lab_dir, admin=True)
    capacity = parse_quantity(lab.get("persistentvolumeclaims", "dv-bar-pvc")["status"]["capacity"]["storage"])
    used = du(lab.store.volume_dir("dv-bar-pvc") / "1.5.0")
    assert used <= capacity
    assert results(lab_dir)["bar-low-space"] == "fail"


def test_a_healthy_lab_has_all_that_any_fault_needs(lab_dir, golden_lab):
    """check_order takes a new lab to have everything (it refuses `--break` lists before making one):
    a healthy lab must really have each thing a fault may need."""
    from labs import copy_lab
    from dvdoctor.lab.faults import NEEDS

    lab = LabCluster(copy_lab(golden_lab, lab_dir), admin=True)
    assert {key for key, need in NEEDS.items() if not need.present(lab)} == set()
    assert {key for f in FAULTS.values() for key in (*f.needs, *f.takes)} <= set(NEEDS)


def test_faults_that_add_backup_folders_combine(golden_lab, lab_dir):
    """Each takes the newest real backup (not odd-backup-folders' empty folder dated next year, not a
    name with a newline) and a folder name no other fault took; the same id twice is applied once."""
    from labs import copy_lab
    from dvdoctor.lab.bar import backup_dirs

    copy_lab(golden_lab, lab_dir)
    for fault in ("odd-backup-folders", "incomplete-backups", "backup-unreadable", "odd-backup-folders,no-recent-backup"):
        break_lab(lab_dir, fault)
    lab = LabCluster(lab_dir, admin=True)
    names = [d.name for d in backup_dirs(lab.store)]
    assert len(names) == 4 == len(set(names))  # next year's, the aged backup, and the two older ones
    found = results(lab_dir)
    assert {c: found[c] for c in ("odd-backup-folders", "incomplete-backups", "backup-unreadable", "no-recent-backup")} \
        == dict.fromkeys(("odd-backup-folders", "incomplete-backups", "backup-unreadable", "no-recent-backup"), "warn")
    assert json.loads((lab_dir / "lab.json").read_text())["breaks"].count("odd-backup-folders") == 2


def test_odd_folders_switched_on_again_a_second_later_date_no_second_folder_next_year(lab, monkeypatch):
    """The folder dated next year was named from the clock: applied again across a second's boundary
    (a busy machine) it made a second one, and the combined faults' count of folders flaked."""
    from datetime import timedelta

    from dvdoctor.lab import faults
    from dvdoctor.lab.bar import backup_dirs

    real = faults.datetime

    class Later(real):  # the clock one second on at the second application
        shift = 0

        @classmethod
        def now(cls, tz=None):
            return real.now(tz) + timedelta(seconds=cls.shift)

    monkeypatch.setattr(faults, "datetime", Later)
    break_lab(lab.store.root, "odd-backup-folders")
    Later.shift = 1
    break_lab(lab.store.root, "odd-backup-folders")
    next_year = [d.name for d in backup_dirs(lab.store) if d.name > real.now().strftime("%Y-%m-%d-%H-%M-%S")]
    assert len(next_year) == 1, next_year


def test_a_fault_that_fails_during_create_leaves_no_half_made_lab(lab_dir, monkeypatch):
    from dvdoctor.core.errors import ClusterError
    from dvdoctor.lab.faults import Fault

    def fails(lab):
        raise ClusterError("the pod of job dv-backup-job did not start")

    monkeypatch.setitem(FAULTS, "fails-midway", Fault("fails-midway", "a fault whose pod never starts", fails))
    with pytest.raises(ClusterError, match="did not start; the half-made lab was removed"):
        create_lab(lab_dir, breaks=["stale-bar-marker,fails-midway"])
    assert not lab_dir.exists()
