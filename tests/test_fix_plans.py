"""Every fix's plan against facts, without a cluster: healthy means nothing to do, broken means the
right actions, and the deletion rules hold whatever the options."""

import copy

import pytest

import builders as b
from dvdoctor.core.errors import UsageError
from dvdoctor.facts.model import Facts
from dvdoctor.repair.fixer import FixOptions, load_all
from dvdoctor.core.names import REPLICAS_ANNOTATION
from dvdoctor.repair.owner import BarJobActive
from dvdoctor.repair.runner import Repairs
from dvdoctor.repair.plan import AwaitGrown, BarScript, Delete, EngineScript, Patch, Scale, StopJob
from dvdoctor.verdicts.registry import load_all as load_checks

FIXES = load_all()
TS = b.TS


def plan(fix_id: str, data: dict, **options):
    return b.fix_plan(fix_id, Facts(copy.deepcopy(data)), FixOptions(**options))


def test_every_fix_pairs_with_a_registered_check_and_every_fixable_check_has_its_fix():
    checks = load_checks()
    assert all(f.check in checks for f in FIXES.values())
    assert {c.fix for c in checks.values() if c.fix} <= set(FIXES)


@pytest.mark.parametrize("fix_id", sorted(set(FIXES) - {"init-volume-pod-missing", "side-deployments-running"}))
def test_a_healthy_namespace_needs_no_repair(fix_id):
    p = plan(fix_id, b.healthy())
    assert p.empty and not p.manual, [a.describe() for a in p.actions]


def test_side_deployments_scale_down_and_back_to_the_recorded_count():
    down = plan("side-deployments-running", b.healthy())
    assert down.actions == [Scale(n, 0) for n in ("dv-caching", "dv-api", "dv-unified-console")]
    data = b.quiesced(b.healthy())
    b.find(data, "deployments", "dv-api")["metadata"]["annotations"][REPLICAS_ANNOTATION] = "3"
    del b.find(data, "deployments", "dv-caching")["metadata"]["annotations"][REPLICAS_ANNOTATION]
    up = plan("side-deployments-left-down", data)
    assert up.actions == [Scale("dv-caching", 1), Scale("dv-api", 3), Scale("dv-unified-console", 1)]


class _Screen:
    """A screen that asks yes and says nothing: the refusals below come before anything is shown."""

    def ask(self, _question: str) -> bool:
        return True

    def __getattr__(self, _name: str):
        return lambda *args, **kwargs: None


def _repairs() -> Repairs:
    def nothing(*_args):
        raise AssertionError("the refusal comes first: nothing is collected, locked or changed")
    return Repairs(cluster=None, screen=_Screen(), collect_again=nothing, lock=nothing)  # type: ignore[arg-type]


def test_stale_marker_is_removed_only_when_no_bar_job_runs():
    data = b.healthy()
    data["engine"]["markers"] = [b.marker(".bar")]
    p = plan("stale-bar-marker", data)
    assert [type(a) for a in p.actions] == [EngineScript]
    assert p.actions[0].args == ("remove-marker", "/mnt/marker_files", ".bar")
    data["objects"]["jobs"].append(b.job("dv-backup-job", state="active"))
    for dry_run in (False, True):  # a dry run is refused as the run would be
        with pytest.raises(BarJobActive, match="dv-backup-job has been running .*so `dvdoctor fix --issue stale-bar-marker"
                                               f"{' --dry-run' if dry_run else ''}` changed nothing"):
            _repairs().repair(Facts(data), ["stale-bar-marker"], FixOptions(), dry_run=dry_run)


def test_a_running_job_another_repair_would_delete_is_no_way_past_the_refusal():
    """Break-it review (high): DV's backup job runs, watched by dvcli.sh, one of its pods failed and it
    retries. bar-job-failed's repair deletes that job; named with a repair that may act under a job
    (leftover-bar-pods), or by `fix --all`, it was let through and deleted the running job."""
    data = b.healthy()
    job = b.job("dv-backup-job", state="active")
    job["status"]["startTime"] = "2021-01-23T07:50:00Z"  # 10 minutes before the facts: dvcli.sh still waits on it
    data["objects"]["jobs"].append(job)
    data["objects"]["pods"].append(b.job_pod("dv-backup-job", suffix="f41l1", phase="Failed"))
    assert b.run_one("bar-job-unattended", data).status == "pass"
    assert b.run_one("bar-job-failed", data).status == "fail"
    with pytest.raises(BarJobActive, match="so `dvdoctor fix --issue bar-job-failed,leftover-bar-pods` changed nothing"):
        _repairs().repair(Facts(data), ["bar-job-failed", "leftover-bar-pods"], FixOptions())
    with pytest.raises(BarJobActive, match="so `dvdoctor fix --all` changed nothing"):
        _repairs().repair_all(Facts(data), [], FixOptions())


def test_stale_marker_restart_deletes_only_dv_pods_that_are_not_ready():
    data = b.healthy()
    data["engine"]["markers"] = [b.marker(".bar")]
    worker = b.find(data, "pods", "dv-worker-0")
    worker["status"]["conditions"][1]["status"] = "False"
    p = plan("stale-bar-marker", data, restart=True)
    assert [a for a in p.actions if isinstance(a, Delete)] == [Delete("pods", "dv-worker-0", p.actions[1].summary)]


def test_restore_marker_runs_the_caching_step_first_when_caching_is_on():
    data = b.healthy()
    data["engine"]["markers"] = [b.marker(".bar_restored.txt")]
    p = plan("restore-marker-left", data)
    assert [a.args[0] for a in p.actions] == ["caching-off", "remove-marker"]
    b.remove(data, "deployments", "dv-caching")
    assert [a.args[0] for a in plan("restore-marker-left", data).actions] == ["remove-marker"]


def test_symlink_is_pointed_at_the_newest_complete_backup_or_at_to():
    data = b.healthy()
    b.add_backup(data["bar_volume"], "2021-01-23-02-00-00", {"dv_backup.tar.gz": 100})
    data["bar_volume"]["link"]["target_exists"] = False
    p = plan("broken-backup-symlink", data)
    assert p.actions[0].args == ("relink", "2021-01-23-02-00-00")
    assert plan("broken-backup-symlink", data, to=TS).actions[0].args == ("relink", TS)
    with pytest.raises(UsageError, match="no backup of that name"):
        plan("broken-backup-symlink", data, to="2020-01-01-00-00-00")


def test_symlink_moves_only_to_a_good_backup():
    data = b.healthy()
    b.add_backup(data["bar_volume"], "2021-01-23-02-00-00", {"dv_backup.tar.gz": 100}, read_back="damaged",
                 message="its dv_backup_dv_engine.tar.gz does not read back: gzip: stdin: unexpected end of file")
    b.add_backup(data["bar_volume"], "2021-01-23-03-00-00", {"dv_backup.tar.gz": 100}, read_back=None)
    data["bar_volume"]["link"]["target_exists"] = False
    assert plan("broken-backup-symlink", data).actions[0].args == ("relink", TS)  # the newest *good* one
    for ts, state in (("2021-01-23-02-00-00", "damaged"), ("2021-01-23-03-00-00", "unverified")):
        with pytest.raises(UsageError, match=f"--to {ts}: it is {state}"):
            plan("broken-backup-symlink", data, to=ts)


def test_permissions_repair_is_narrow_unless_asked():
    data = b.healthy()
    data["bar_volume"]["writable"] = False
    [action] = plan("bar-permissions", data).actions
    assert isinstance(action, BarScript) and action.args == ("grant",) and not action.allow_world_writable
    assert plan("bar-permissions", data, allow_world_writable=True).actions[0].allow_world_writable


def full_volume() -> dict:
    """A 16Gi volume holding an old backup not read back yet (unverified), a damaged one (its job died
    after the metastore tarball) and the current one, good, whose component tarballs an earlier
    repair already removed (DV's scratch copies of them in its tmp/ folder still take the space)."""
    data = b.healthy()
    bar = data["bar_volume"]
    for e in bar["entries"]:
        if e["path"] in (f"{TS}/dv_backup_dv_metastore.tar.gz", f"{TS}/dv_backup_dv_engine.tar.gz"):
            e["path"] = e["path"].replace(f"{TS}/", f"{TS}/tmp/")
    b.add_backup(bar, "2021-01-20-19-27-31", {"dv_backup_dv_metastore.tar.gz": 31_780_526,
                                              "dv_backup_dv_engine.tar.gz": 3_152_485_198, "dv_backup.tar.gz": 3_184_300_891},
                 read_back=None)
    b.add_backup(bar, "2021-01-21-19-27-31", {"dv_backup_dv_metastore.tar.gz": 31_780_526})
    used = sum(e["size"] for e in bar["entries"] if e["type"] == "file")
    bar["used_bytes"] = used
    bar["df"] = {"total": 16 * b.GIB, "used": used, "avail": 16 * b.GIB - used}
    b.find(data, "persistentvolumeclaims", "dv-bar-pvc")["status"]["capacity"]["storage"] = "16Gi"
    return data


@pytest.mark.parametrize("keep", [0, 1, 2])
def test_low_space_never_removes_the_link_target_or_newest_complete(keep):
    data = full_volume()
    p = plan("bar-low-space", data, keep=keep)
    removed = [path for a in p.actions if isinstance(a, BarScript) for path in a.args[1:]]
    assert TS not in removed and f"{TS}/dv_backup.tar.gz" not in removed
    assert removed, "a full volume must get a plan"


def test_low_space_removes_components_only_of_good_backups_largest_first():
    data = b.healthy()
    bar = data["bar_volume"]
    b.add_backup(bar, "2021-01-20-19-27-31", {"dv_backup_dv_metastore.tar.gz": 31_780_526,
                                              "dv_backup_dv_engine.tar.gz": 3_152_485_198, "dv_backup.tar.gz": 3_184_300_891},
                 read_back=None)
    bar["df"] = {"total": 16 * b.GIB, "used": 12 * b.GIB, "avail": 4 * b.GIB}
    first = plan("bar-low-space", data).actions[0]
    assert first.describe().startswith("delete 1 component tarball already inside")
    assert first.args[1:] == (f"{TS}/dv_backup_dv_engine.tar.gz",)  # 3 GB before the 31 MB metastore; none of
    # the unverified backup's: they may be all that is left of it
    bar["read_back"] = {}  # nothing proven good: --keep 2 keeps both unverified backups whole, the claim grows
    grown = plan("bar-low-space", data)
    assert [type(a).__name__ for a in grown.actions] == ["Patch", "AwaitGrown"]
    one = plan("bar-low-space", data, keep=1)  # the older unverified one would go, leaving no good backup: refused
    assert [type(a).__name__ for a in one.actions] == ["Patch", "AwaitGrown"]
    assert any(n.startswith("nothing is removed: refusing to delete: no backup on dv-bar-pvc") for n in one.notes)


def test_low_space_growth_needs_expansion_and_a_bigger_size():
    data = full_volume()
    [grow] = plan("bar-low-space", data, size="60Gi").actions
    assert isinstance(grow, Patch) and grow.patch == {"spec": {"resources": {"requests": {"storage": "60Gi"}}}}
    with pytest.raises(UsageError, match="can only grow"):
        plan("bar-low-space", data, size="10Gi")
    data["objects"]["storageclasses"][0]["allowVolumeExpansion"] = False
    with pytest.raises(UsageError, match="does not allow volume expansion"):
        plan("bar-low-space", data, size="60Gi")


def test_low_space_plan_that_freeing_cannot_complete_grows_the_claim_first():
    """Freeing what is safe (keep 2: the incomplete folder) leaves it 2.4 GiB short: the plan is whole
    only with the claim grown, first, to the site's size for a new dv-bar-pvc (30Gi, three backups)."""
    p = plan("bar-low-space", full_volume())
    grow, wait, *removals = p.actions
    assert isinstance(grow, Patch) and grow.patch == {"spec": {"resources": {"requests": {"storage": "30Gi"}}}}
    assert grow.before == "capacity 16Gi"
    assert wait == AwaitGrown("dv-bar-pvc", "30Gi", before="16Gi")  # nothing is removed before the room is there
    assert [a.args for a in removals] == [("remove", "2021-01-21-19-27-31")]
    assert not p.manual


def test_low_space_growth_follows_the_site_size_or_the_shortfall():
    from dvdoctor.core.names import Settings

    def grown_to(data: dict, settings: Settings) -> str:
        facts = Facts(copy.deepcopy(data), settings)
        grow = b.fix_plan("bar-low-space", facts).actions[0]
        return grow.patch["spec"]["resources"]["requests"]["storage"]

    assert grown_to(full_volume(), Settings(bar_size="100Gi")) == "100Gi"
    data = full_volume()  # a claim already past the site's size: grown by the shortfall, whole GiB
    b.find(data, "persistentvolumeclaims", "dv-bar-pvc")["status"]["capacity"]["storage"] = "40Gi"
    data["bar_volume"]["df"]["avail"] = data["bar_volume"]["df"]["total"] = 0
    assert grown_to(data, Settings()) == "47Gi"  # 40Gi + the 6.5 GiB short, rounded up


def test_low_space_without_expansion_changes_nothing_and_names_the_command():
    data = full_volume()
    data["objects"]["storageclasses"][0]["allowVolumeExpansion"] = False
    p = plan("bar-low-space", data)
    assert p.empty and p.manual
    text = "\n".join(p.manual)
    assert "still 2.4 GiB short" in text and "nothing was changed" in text
    assert "`dvdoctor -n cpd30 fix --issue bar-low-space --size 30Gi`" in text
    assert "`dvdoctor -n cpd30 fix --issue bar-low-space --keep 1`" in text  # keeping one fewer would fit


def test_low_space_size_too_small_for_the_next_backup_is_not_applied():
    data = full_volume()
    p = plan("bar-low-space", data, size="17Gi")  # 1 GiB more: 5.1 GiB free, 6.5 GiB needed
    assert p.empty
    assert "`dvdoctor -n cpd30 fix --issue bar-low-space --size 30Gi`" in p.manual[0]
    assert [a.patch for a in plan("bar-low-space", data, size="20Gi").actions] == [
        {"spec": {"resources": {"requests": {"storage": "20Gi"}}}}]


def test_failed_job_is_deleted_its_marker_removed_and_its_cause_named():
    data = b.healthy()
    data["objects"]["jobs"].append(b.job("dv-backup-job", state="failed"))
    data["objects"]["pods"].append(b.job_pod("dv-backup-job", phase="Failed"))
    data["logs"]["dv-backup-job-5pfw2"] = b.RUNBOOK_ERRNO13
    data["engine"]["markers"] = [b.marker(".bar")]
    p = plan("bar-job-failed", data)
    assert [type(a) for a in p.actions] == [Delete, EngineScript]
    assert "dvdoctor fix --issue bar-permissions" in p.notes[0]


def test_leftovers_are_exactly_what_the_check_names():
    data = b.healthy()
    data["objects"]["jobs"].append(b.job("dv-list-backups-job", state="active"))
    data["objects"]["jobs"].append(b.job("dv-backup-job", state="active"))
    p = plan("leftover-bar-pods", data)
    assert [(type(a), a.name) for a in p.actions] == [(StopJob, "dv-list-backups-job")]  # deleted, its pods waited for


def test_missing_bar_pvc_is_created_with_dv_pvcs_class_and_room_for_three():
    data = b.healthy()
    b.remove(data, "persistentvolumeclaims", "dv-bar-pvc")
    [create] = plan("bar-pvc-missing", data).actions
    assert create.body["spec"]["storageClassName"] == "ibmc-file-gold-gid"
    assert create.body["spec"]["resources"]["requests"]["storage"] == "30Gi"
    with pytest.raises(UsageError, match="does not exist"):
        plan("bar-pvc-missing", data, storage_class="nope")


def test_reclaim_delete_is_patched_to_retain():
    data = b.healthy()
    b.find(data, "persistentvolumes", "pvc-bar-0472")["spec"]["persistentVolumeReclaimPolicy"] = "Delete"
    [patch] = plan("bar-pv-reclaim-delete", data).actions
    assert (patch.kind, patch.name, patch.patch) == ("persistentvolumes", "pvc-bar-0472",
                                                      {"spec": {"persistentVolumeReclaimPolicy": "Retain"}})


def test_incomplete_folders_go_but_not_one_being_written():
    data = full_volume()
    assert plan("incomplete-backups", data).actions[0].args == ("remove", "2021-01-21-19-27-31")
    b.add_backup(data["bar_volume"], "2021-01-23-07-59-00", {"dv_backup_dv_metastore.tar.gz": 1})
    data["objects"]["jobs"].append(b.job("dv-backup-job", state="active"))
    assert plan("incomplete-backups", data).actions[0].args == ("remove", "2021-01-21-19-27-31")


class _Cluster:
    """The objects of builders' facts, as a cluster a repair lists and deletes from."""

    def __init__(self, data: dict):
        self.data = data

    def describe(self) -> str:
        return "test"

    def list(self, kind: str, label_selector: str | None = None) -> list[dict]:
        wanted = dict(term.split("=", 1) for term in label_selector.split(",")) if label_selector else {}
        return [o for o in self.data["objects"].get(kind, [])
                if all((o["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())]

    def get(self, kind: str, name: str) -> dict | None:
        return next((o for o in self.data["objects"].get(kind, []) if o["metadata"]["name"] == name), None)

    def delete(self, kind: str, name: str) -> bool:
        before = self.data["objects"].get(kind, [])
        self.data["objects"][kind] = [o for o in before if o["metadata"]["name"] != name]
        return len(before) != len(self.data["objects"][kind])


def test_a_fix_that_can_do_nothing_fails_the_run_beside_one_that_acts(tmp_path):
    """Break-it review: a dvcli.sh restore job runs with nobody waiting (bar-job-unattended fails, and a
    restore is never stopped half-way: its plan is empty) beside dvcli.sh's list job, which
    leftover-bar-pods deletes. Both asked for by name: the list job goes, and the run exits 1, not 0."""
    import contextlib
    data = b.healthy()
    restore = b.job("dv-restore-job", state="active")
    restore["status"]["startTime"] = "2021-01-23T05:00:00Z"  # 3 h before the facts: dvcli.sh gave up on it
    data["objects"]["jobs"] += [restore, b.job("dv-list-backups-job", state="active")]
    assert {r.check.id: r.status for r in b.results(data, only=("bar-job-unattended", "leftover-bar-pods"))} == {
        "bar-job-unattended": "fail", "leftover-bar-pods": "warn"}
    cluster = _Cluster(copy.deepcopy(data))
    repairs = Repairs(cluster=cluster, screen=_Screen(), audit_file=tmp_path / "audit.jsonl",  # type: ignore[arg-type]
                      collect_again=lambda _every: Facts(copy.deepcopy(cluster.data)),
                      lock=lambda _command, _ending: contextlib.nullcontext())
    assert repairs.repair(Facts(data), ["bar-job-unattended", "leftover-bar-pods"], FixOptions()) is False
    assert cluster.get("jobs", "dv-list-backups-job") is None and cluster.get("jobs", "dv-restore-job") is not None

