"""bar-probe.sh run for real on temporary trees, its output parsed and judged by the checks.

Real symlinks (absolute as DV writes them, relative, dangling), real sizes (sparse files with the
runbook's byte counts), and a real permission error as the bigsql uid through setpriv.
"""

import os
from pathlib import Path

import pytest

import builders as b
from dvdoctor.facts.model import validate

RUNBOOK_SIZES = {"dv_backup_dv_metastore.tar.gz": 31780526, "dv_backup_dv_engine.tar.gz": 3152485198,
                 "dv_backup.tar.gz": 3184300891}
needs_root = pytest.mark.skipif(not (b.IS_ROOT and b.HAS_SETPRIV),
                                reason="dropping to the bigsql uid 1000322824 needs root and setpriv")


def with_probe(bar_volume: dict) -> dict:
    data = b.healthy()
    data["bar_volume"] = bar_volume
    return data


def test_the_runbook_listing_probed_for_real(root):
    bar = b.bar_of(root)
    b.write_backup(bar, b.TS, RUNBOOK_SIZES)
    (bar / b.TS / "tmp").mkdir()
    os.symlink(b.RUNBOOK_LINK_TARGET, bar / "dv_backup.tar.gz")
    facts = b.run_bar_probe(root)
    assert facts["complete"] and facts["writable"]
    assert facts["link"] == {"name": "dv_backup.tar.gz", "target": b.RUNBOOK_LINK_TARGET, "target_exists": True}
    sizes = {e["path"]: e["size"] for e in facts["entries"] if e["type"] == "file"}
    assert sizes == {f"{b.TS}/{n}": s for n, s in RUNBOOK_SIZES.items()}
    data = with_probe(facts)
    validate(data)
    for check_id in ("broken-backup-symlink", "incomplete-backups", "bar-permissions"):
        assert b.run_one(check_id, data).status == "pass", check_id
    # not read back (this inspection read nothing), so not proven good: it does not count as a backup yet
    assert facts["read_back"][b.TS]["state"] == "unread"
    recent = b.run_one("no-recent-backup", data)
    assert recent.status == "warn" and f"not read back yet: {b.TS}" in b.evidence(recent)


def test_a_relative_link_is_a_valid_restore_point(root):
    bar = b.bar_of(root)
    b.write_backup(bar, b.TS, RUNBOOK_SIZES)
    os.symlink(f"{b.TS}/dv_backup.tar.gz", bar / "dv_backup.tar.gz")
    facts = b.run_bar_probe(root)
    assert facts["link"]["target_exists"] is True
    assert b.run_one("broken-backup-symlink", with_probe(facts)).status == "pass"


def test_a_dangling_link_is_found(root):
    bar = b.bar_of(root)
    b.write_backup(bar, b.TS, RUNBOOK_SIZES)
    os.symlink("/mnt/PV/bar/2021-01-14-19-20-07/dv_backup.tar.gz", bar / "dv_backup.tar.gz")
    facts = b.run_bar_probe(root)
    r = b.run_one("broken-backup-symlink", with_probe(facts))
    assert r.status == "fail"
    text = b.evidence(r)
    assert "dangling" in text
    assert "/mnt/PV/bar/dv_backup.tar.gz -> /mnt/PV/bar/2021-01-14-19-20-07/dv_backup.tar.gz" in text
    assert "no backup is proven good" in text  # sparse files: nothing here reads back


def test_an_absolute_link_is_resolved_inside_the_pod_not_on_the_host(root):
    """The target exists under DV_ROOT only: the probe must resolve /mnt/PV/bar/... in the pod's view."""
    bar = b.bar_of(root)
    b.write_backup(bar, b.TS, RUNBOOK_SIZES)
    os.symlink(b.RUNBOOK_LINK_TARGET, bar / "dv_backup.tar.gz")
    assert not Path(b.RUNBOOK_LINK_TARGET).exists()  # on the host it would dangle
    assert b.run_bar_probe(root)["link"]["target_exists"] is True


def test_a_link_at_an_incomplete_backup_is_found(root):
    bar = b.bar_of(root)
    b.write_backup(bar, b.TS, RUNBOOK_SIZES)
    b.write_backup(bar, "2021-01-23-02-00-00", {"dv_backup_dv_metastore.tar.gz": 31780526,
                                                 "dv_backup.tar.gz": 0})
    os.symlink("/mnt/PV/bar/2021-01-23-02-00-00/dv_backup.tar.gz", bar / "dv_backup.tar.gz")
    data = with_probe(b.run_bar_probe(root))
    r = b.run_one("broken-backup-symlink", data)
    assert r.status == "fail"
    assert ("restore point 2021-01-23-02-00-00 is a damaged backup: its dv_backup.tar.gz is empty (0 bytes)"
            in b.evidence(r))
    inc = b.run_one("incomplete-backups", data)
    assert inc.status == "warn"
    assert "backup 2021-01-23-02-00-00 is damaged: its dv_backup.tar.gz is empty" in b.evidence(inc)


def test_a_link_outside_any_backup_folder_is_found(root):
    bar = b.bar_of(root)
    b.write_backup(bar, b.TS, RUNBOOK_SIZES)
    (root / "mnt" / "PV" / "versioned").mkdir()
    (root / "mnt" / "PV" / "versioned" / "dv_backup.tar.gz").write_bytes(b"x")
    os.symlink("/mnt/PV/versioned/dv_backup.tar.gz", bar / "dv_backup.tar.gz")
    r = b.run_one("broken-backup-symlink", with_probe(b.run_bar_probe(root)))
    assert r.status == "fail" and "does not point at a backup folder's dv_backup.tar.gz" in b.evidence(r)


def test_a_corrupt_combined_tarball_is_caught_when_read_back(root):
    bar = b.bar_of(root)
    b.write_backup(bar, b.TS, {"dv_backup_dv_metastore.tar.gz": 10, "dv_backup_dv_engine.tar.gz": 10})
    (bar / b.TS / "dv_backup.tar.gz").write_bytes(b"\x1f\x8b\x08\x00cut short")
    os.symlink(b.RUNBOOK_LINK_TARGET, bar / "dv_backup.tar.gz")
    facts = b.run_bar_probe(root, verify=True)
    assert facts["read_back"][b.TS]["state"] == "damaged"
    data = with_probe(facts)
    inc = b.run_one("incomplete-backups", data)
    assert inc.status == "warn" and f"backup {b.TS} is damaged: reading it: gzip: " in b.evidence(inc)
    assert b.run_one("no-recent-backup", data).status == "warn"


@needs_root
def test_a_root_owned_volume_is_not_writable_for_bigsql(root):
    bar = b.bar_of(root)
    bar.chmod(0o755)  # root-owned, as the runbook's storage class creates it
    facts = b.run_bar_probe(root, uid=b.BAR_UID)
    assert facts["uid"] == b.BAR_UID and facts["writable"] is False
    assert "Permission denied" in facts["write_error"]
    r = b.run_one("bar-permissions", with_probe(facts))
    assert r.status == "fail"
    text = b.evidence(r)
    assert f"uid {b.BAR_UID} cannot create folders in /mnt/PV/bar" in text
    assert "mode 755 owner uid 0" in text and "Permission denied" in text


@needs_root
def test_after_the_runbooks_chmod_777_bigsql_can_write(root):
    b.bar_of(root).chmod(0o777)
    facts = b.run_bar_probe(root, uid=b.BAR_UID)
    assert facts["writable"] is True
    assert b.run_one("bar-permissions", with_probe(facts)).status == "pass"


@needs_root
@pytest.mark.parametrize("ids", [["--regid=0", "--groups=1000322824"], ["--regid=1000322824", "--clear-groups"],
                                 ["--regid=0", "--groups=7,5,1000322824,0"]])
@pytest.mark.parametrize("proc", ["mounted", "hidden"])
def test_the_probe_names_the_groups_id_would(root, ids, proc):
    """The probe reads its group ids from /proc/self/status (no process in every inspection pod):
    the same ids in the same order as `id -G` prints them, and `id -G`'s own where /proc is hidden."""
    import subprocess

    from dvdoctor.facts import probe

    drop = ["setpriv", f"--reuid={b.BAR_UID}", *ids, "--"]
    hide = list(b.own_mounts("mount -t tmpfs none /proc")) if proc == "hidden" else []
    path = "/usr/bin:/bin"
    if proc == "mounted":  # every program the probe may use but `id`: the ids come from /proc alone
        tools = root / "tools-but-id"
        tools.mkdir()
        for tool in Path("/usr/bin").iterdir():
            if tool.name != "id":
                (tools / tool.name).symlink_to(tool)
        path = str(tools)
    env = {"PATH": path, "DV_ROOT": str(root), "BAR_DIR": "/mnt/PV/bar"}
    out = subprocess.run([*hide, *drop, "bash", "-c", probe.script("bar-probe.sh"), "bar-probe"], env=env,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    expected = subprocess.run([*hide, *drop, "id", "-G"], capture_output=True, text=True, check=True).stdout.split()
    assert probe.parse_bar_probe(out)["gids"] == [int(g) for g in expected] and expected


@needs_root
def test_groups_repeated_apart_in_a_user_namespace_are_dropped_as_id_drops_them(root):
    """Break-it review (low): in a user namespace the groups it does not map all read 65534 and need
    not be next to each other (Groups: 65534 7 65534); `id -G` drops the repeat, so does the probe."""
    import subprocess

    from dvdoctor.facts import probe

    inside = ["setpriv", f"--reuid={b.BAR_UID}", "--regid=7", "--groups=3,7,9", "--",
              "unshare", "-U", f"--map-user={b.BAR_UID}", "--map-group=7", "--"]
    env = {"PATH": "/usr/bin:/bin", "DV_ROOT": str(root), "BAR_DIR": "/mnt/PV/bar"}
    out = subprocess.run([*inside, "bash", "-c", probe.script("bar-probe.sh"), "bar-probe"], env=env,
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0 and "unshare" in out.stderr:
        pytest.skip(f"no user namespace here: {out.stderr.strip()}")
    status = subprocess.run([*inside, "grep", "^Groups:", "/proc/self/status"], capture_output=True, text=True).stdout
    expected = subprocess.run([*inside, "id", "-G"], capture_output=True, text=True, check=True).stdout.split()
    assert status.split()[1:] == ["65534", "7", "65534"]  # the case itself: a repeat with another id between
    assert probe.parse_bar_probe(out.stdout)["gids"] == [int(g) for g in expected] == [7, 65534]


@needs_root
@pytest.mark.parametrize("forged", ["no Groups line", "Groups: *"])
def test_a_status_file_without_the_lines_or_with_other_than_numbers_falls_back_to_id(root, forged):
    """Break-it review (low): a /proc/self/status with Gid but no Groups line (some sandboxes write one)
    dropped the supplementary groups, and `Groups: *` was expanded as a file pattern. Either is read
    by `id -G` instead. (The file is forged by a bind mount over the probe's own status file.)"""
    import subprocess

    from dvdoctor.facts import probe

    drop = ["setpriv", f"--reuid={b.BAR_UID}", "--regid=7", "--groups=3,9", "--"]
    line = "" if forged == "no Groups line" else "Groups:\t*\n"
    forge = (f'grep -v "^Groups:" /proc/$$/status > "$0/status" && printf "{line}" >> "$0/status" && '
             'mount --bind "$0/status" /proc/$$/status && exec "$@"')
    env = {"PATH": "/usr/bin:/bin", "DV_ROOT": str(root), "BAR_DIR": "/mnt/PV/bar"}
    out = subprocess.run(["unshare", "-m", "sh", "-c", forge, str(root), *drop, "bash", "-c",
                          probe.script("bar-probe.sh"), "bar-probe"], env=env, capture_output=True, text=True,
                         timeout=60, cwd=root)
    assert out.returncode == 0, out.stderr
    expected = subprocess.run([*drop, "id", "-G"], capture_output=True, text=True, check=True).stdout.split()
    assert probe.parse_bar_probe(out.stdout)["gids"] == [int(g) for g in expected] == [7, 3, 9]
