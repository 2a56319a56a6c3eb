"""Log signatures, against the runbook's own error lines."""

from dvdoctor.facts.signatures import match_log

RUNBOOK_ERRNO13 = "Operation failed: [Errno 13] Permission denied: '/mnt/PV/bar/2021-01-14-19-20-07'"
RUNBOOK_SED = 'sed: 1: "dv-backup-job.yaml": extra characters at the end of d command'
RUNBOOK_EMPTY_IMAGE = "2021-01-14_14.40.42.3N_UTC INFO Use DV init image:  in dv-backup-job.yaml"


def test_runbook_permission_error_points_at_bar_permissions():
    [m] = match_log(f"starting backup\n{RUNBOOK_ERRNO13}\n")
    assert (m.check, m.fix, m.line) == ("bar-permissions", "bar-permissions", RUNBOOK_ERRNO13)


def test_runbook_sed_error_and_empty_image_point_at_the_init_volume_pod():
    matches = match_log(f"{RUNBOOK_EMPTY_IMAGE}\n{RUNBOOK_SED}\n")
    assert [m.check for m in matches] == ["init-volume-pod-missing"]
    assert matches[0].line == RUNBOOK_EMPTY_IMAGE


def test_tar_and_space_errors():
    log = "tar: /mnt/PV/versioned/x: file changed as we read it\ngzip: stdout: No space left on device\n"
    assert [m.check for m in match_log(log)] == ["bar-low-space", "side-deployments-running"]


def test_a_clean_log_matches_nothing():
    assert match_log("backup complete\nUse DV init image: registry/dv-init-volume:v1.5.0.0-217 in dv-backup-job.yaml") == []
