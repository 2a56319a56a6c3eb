"""The exit-code contract, command by command, on a lab (docs/commands.md, `dvdoctor --help`):
0 clean, 1 a check failed (or a fix left a failure), 2 could not run / bad input, 3 incomplete.

"Incomplete" is made the way a real cluster makes it: dvdoctor's role loses `pods/exec` (it may not
look inside dv-engine-0), or `jobs` (the inspection pod cannot be created), in the lab's rules."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from dvdoctor.lab import break_lab
from dvdoctor.lab.store import Store
from dvdoctor.verdicts.registry import load_all


def take_right(flow, resource: str) -> None:
    """Remove one resource from dvdoctor's role in the lab, as a narrower Role on a cluster would."""
    path = flow.lab / "lab.json"
    meta = json.loads(path.read_text())
    for rule in meta["rules"]:
        if resource in rule["resources"]:
            rule["resources"].remove(resource)
    path.write_text(json.dumps(meta))


def read_only(flow, resource: str) -> None:
    """Let dvdoctor's role only read one resource (get, list, watch), so creating one is forbidden."""
    take_right(flow, resource)
    path = flow.lab / "lab.json"
    meta = json.loads(path.read_text())
    group = "batch" if resource == "jobs" else ""
    meta["rules"].append({"apiGroups": [group], "resources": [resource], "verbs": ["get", "list", "watch"]})
    path.write_text(json.dumps(meta))


def shell(flow, pipeline: str) -> subprocess.CompletedProcess:
    """A real shell pipeline, with pipefail so the exit code is dvdoctor's, not head's."""
    exe = os.path.join(os.path.dirname(sys.executable), "dvdoctor")
    env = {**os.environ, "DVDOCTOR_AUDIT": str(flow.audit)}
    env.pop("COLUMNS", None)
    return subprocess.run(["bash", "-o", "pipefail", "-c", pipeline.replace("dvdoctor", f"{exe} --lab {flow.lab}", 1)],
                          capture_output=True, text=True, env=env, timeout=120)


# -- check ---------------------------------------------------------------------------------------


def test_check_exit_codes_clean_failed_bad_input_incomplete(flow):
    code, out, _ = flow.dv("check")
    assert code == 0 and "verdict: clean (exit 0)" in out, out

    code, _, err = flow.dv("check", "--only", "no-such-check")
    assert code == 2 and err.startswith("dvdoctor: error: --only: unknown check id 'no-such-check'")

    take_right(flow, "pods/exec")
    code, out, _ = flow.dv("check")
    assert code == 3, out
    assert "? stale-bar-marker" in out and "could not run: engine: exec in dv-engine-0 failed" in out
    assert "verdict: incomplete (exit 3): 3 checks could not run (bar-templates-missing, restore-marker-left, " \
           "stale-bar-marker)" in out

    break_lab(flow.lab, "side-deployments-left-down")
    code, out, _ = flow.dv("check")
    assert code == 1, out  # a failure outranks the unknown
    assert "verdict: failed (exit 1): side-deployments-left-down" in out


def test_an_inspection_pod_that_cannot_start_makes_the_verdict_incomplete(flow):
    read_only(flow, "jobs")
    code, out, _ = flow.dv("check")
    assert code == 3, out
    assert "could not run: bar_volume: the inspection pod could not be created" in out
    report = json.loads(flow.dv("check", "-o", "json")[1])
    assert report["exit_code"] == 3
    unknown = {r["id"] for r in report["results"] if r["incomplete"]}
    assert unknown >= {"bar-permissions", "bar-low-space"}
    summary = report["summary"]  # could not run is its own count, beside skip (by choice or not applicable)
    assert summary["could_not_run"] == len(unknown)
    assert summary["skip"] == sum(r["status"] == "skip" and not r["incomplete"] for r in report["results"])
    assert sum(summary.values()) == len(report["results"])


def test_checks_the_user_leaves_out_do_not_make_it_incomplete_and_the_summary_says_so(flow):
    code, out, _ = flow.dv("check", "--no-pod")
    assert code == 0, out
    assert "- bar-permissions" in out and "(skipped: bar_volume: --no-pod: the backup volume was not inspected)" in out
    skipped = int(re.search(r"(\d+) skipped by choice or not applicable", out).group(1))
    assert skipped >= 5 and "verdict: clean (exit 0)" in out  # the volume's checks, and the copies (none configured)

    code, out, _ = flow.dv("check", "--only", "stale-bar-marker")
    assert code == 0
    assert f"1 passed, 0 warnings, 0 failed, {len(load_all()) - 1} left out by --only/--skip" in out

    code, out, _ = flow.dv("check", "--skip", "stale-bar-marker")
    assert code == 0 and "1 left out by --only/--skip" in out


def test_openshift_3_11_fails_the_check_and_is_not_incomplete(flow):
    break_lab(flow.lab, "server-too-old")
    code, out, _ = flow.dv("check")
    assert code == 1, out
    assert "verdict: failed (exit 1): server-too-old" in out and "could not run" not in out
    assert "- stale-dvdoctor-lock" in out and "serves no Lease API, so there is no lock" in out


def test_warnings_pass_unless_fail_on_warn(flow):
    break_lab(flow.lab, "leftover-bar-pods")
    assert flow.dv("check")[0] == 0
    code, out, _ = flow.dv("check", "--fail-on", "warn")
    assert code == 1 and "verdict: failed (exit 1): leftover-bar-pods" in out


def test_a_closed_pipe_ends_quietly_with_the_verdicts_code(flow):
    proc = shell(flow, "dvdoctor check | head -1")
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
    assert proc.stdout.startswith("dvdoctor checks of DV in namespace cpd30")

    break_lab(flow.lab, "stale-bar-marker")
    proc = shell(flow, "dvdoctor check | head -1")
    assert (proc.returncode, proc.stderr) == (1, ""), proc.stderr

    proc = shell(flow, "dvdoctor list | head -1")
    assert (proc.returncode, proc.stderr) == (0, "")


# -- the gate is the gate ------------------------------------------------------------------------


def test_check_for_backup_is_the_backup_gate(flow):
    code, out, _ = flow.dv("check", "--for", "backup")
    assert code == 0, out
    assert "side-deployments-running" not in out  # the backup scales them down itself
    ran = [line.split()[1] for line in out.splitlines() if line[1] in "✓!-?✗~"]
    code, out, _ = flow.backup("--yes")
    assert code == 0, out
    assert f"✓ preflight: {len(ran)} checks, 0 warnings" in out


def test_a_gate_that_could_not_run_a_check_refuses_with_3_and_names_its_own_option(flow):
    take_right(flow, "pods/exec")
    before = flow.snapshot()
    assert flow.dv("check", "--for", "backup")[0] == 3
    code, out, _ = flow.backup("--yes")
    assert code == 3, out
    assert "Preflight incomplete: nothing was changed." in out
    assert "dvdoctor backup --ignore-check bar-templates-missing,stale-bar-marker" in out  # errors only: a warning cannot stop it
    assert "--skip" not in out  # backup has no --skip
    assert flow.snapshot() == before
    code, out, _ = flow.restore("--yes", "--accept-unverified-origin")
    assert code == 3 and "dvdoctor restore --ignore-check" in out, out


def test_a_backup_without_the_right_to_scale_stops_at_its_gate_and_says_nothing_false_when_let_through(flow):
    """Break-it review, M5: dvdoctor's role may not patch deployments. The gate stops the backup
    before anything changes; let through, it is refused at its first scale-down and says so, without
    claiming that DV's deployments were left down (none was scaled). The lab's fault also takes watch
    on jobs, without which the gate's inspection Job cannot be followed: given back here, so that the
    gate can judge and the backup meet the missing patch."""
    break_lab(flow.lab, "dvdoctor-permissions")
    store = Store(flow.lab)
    meta = store.meta()
    meta["rules"].append({"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["watch"]})
    store.save_meta(meta)
    before = flow.snapshot()
    code, out, _ = flow.backup("--yes")
    assert code == 1, out
    assert "it would be refused part-way" in out and "cannot patch apps/deployments" in out
    assert "Preflight failed: nothing was changed." in out
    assert "dvdoctor backup --ignore-check dvdoctor-permissions" in out
    assert flow.snapshot() == before
    code, out, _ = flow.backup("--yes", "--ignore-check", "dvdoctor-permissions")
    assert code == 1, out
    assert "scale deployment/dv-caching to 0 replicas: deployments is forbidden" in out
    assert "could not scale" not in out and "side-deployments-left-down" not in out, out
    assert flow.snapshot() == before
    assert flow.dv("check", "--only", "side-deployments-left-down")[0] == 0


def test_a_failing_gate_hint_names_the_commands_own_options(flow):
    break_lab(flow.lab, "stale-bar-marker")
    assert flow.dv("check", "--for", "backup")[0] == 1
    code, out, _ = flow.backup("--yes")
    assert code == 1
    assert "rerun with: dvdoctor backup --fix; or let it through with: dvdoctor backup --ignore-check stale-bar-marker" in out
    assert "--skip" not in out


# -- fix -----------------------------------------------------------------------------------------


def test_fix_an_issue_that_passes_has_nothing_to_do(flow):
    code, out, _ = flow.dv("fix", "--issue", "stale-bar-marker", "--yes")
    assert (code, out.strip()) == (0, "✓ stale-bar-marker: nothing to do (its check passes)")


def test_fix_all_with_nothing_failing_says_so(flow):
    """It printed nothing at all (break-it review, L4)."""
    code, out, _ = flow.dv("fix", "--all", "--yes")
    assert (code, out.strip()) == (0, "✓ nothing to repair: no check fails or warns")


def test_fix_all_leaves_exit_1_and_prints_the_steps_when_a_failure_needs_a_person(flow):
    break_lab(flow.lab, "bar-sa-missing")
    break_lab(flow.lab, "stale-bar-marker")
    code, out, _ = flow.dv("fix", "--all", "--yes")
    assert code == 1, out
    assert "bar-sa-missing: no safe automatic repair; do this by hand:" in out
    assert "stale-bar-marker: ✓ verified" in out
    assert "still failing until repaired by hand (steps above): bar-sa-missing" in out


def test_fix_all_is_incomplete_when_a_check_could_not_run(flow):
    take_right(flow, "pods/exec")
    code, out, _ = flow.dv("fix", "--all", "--yes")
    assert code == 3, out
    assert "could not run, so not repaired if broken: bar-templates-missing" in out


def test_fix_bad_input_is_2(flow):
    code, _, err = flow.dv("fix", "--issue", "nope")
    assert code == 2 and err.startswith("dvdoctor: error: --issue: unknown id 'nope'")


# -- list, prune, backup, restore: 2 and 3 --------------------------------------------------------


def test_list_and_prune_are_incomplete_without_a_look_at_the_volume(flow):
    assert flow.dv("list")[0] == 0
    read_only(flow, "jobs")
    code, _, err = flow.dv("list")
    assert code == 3 and "the inspection pod could not be created" in err
    code, _, err = flow.dv("prune", "--keep", "1", "--dry-run")
    assert code == 3, err


def test_bad_input_to_the_flows_is_2_and_a_namespace_the_lab_is_not(flow):
    assert flow.dv("backup", "--bar-size", "lots")[0] == 2
    assert flow.dv("restore", "--from", "yesterday")[0] == 2
    code, _, err = flow.dv("-n", "other", "check")
    assert code == 2 and "the lab" in err and "simulates namespace cpd30" in err
    assert flow.dv("-n", "cpd30", "check")[0] == 0


# -- severity and the backup that repairs everything first ----------------------------------------

#: Every fault of the runbook with an automatic repair but leftover-bar-pods: dvcli.sh's list job,
#: left running, is a DV job that owns the namespace, so no backup starts until `fix` removes it.
FIXABLE_RUNBOOK_FAULTS = ("stale-bar-marker", "bar-permissions", "side-deployments-left-down", "bar-job-failed",
                          "incomplete-backups", "init-volume-pod-missing", "restore-marker-left",
                          "stale-dvdoctor-lock", "bar-pv-reclaim-delete")


def test_dv_api_and_console_left_at_0_by_a_person_are_an_error(flow):
    cluster = flow.cluster()
    for name in ("dv-api", "dv-caching", "dv-unified-console"):
        cluster.patch("deployments", name, {"spec": {"replicas": 0}})  # as `oc scale --replicas=0` leaves them
    code, out, _ = flow.dv("check")
    assert code == 1, out
    assert "✗ side-deployments-left-down" in out and "deployment dv-api is at 0 replicas while no backup runs" in out
    code, out, _ = flow.dv("fix", "--issue", "side-deployments-left-down", "--yes")
    assert code == 0, out
    assert "deployment/dv-api replicas: 0 → 1" in out
    assert flow.replicas() == {"dv-api": 1, "dv-caching": 1, "dv-unified-console": 1}


def test_backup_fix_on_every_fixable_runbook_fault_ends_with_a_good_backup_and_dv_up(flow):
    for fault in FIXABLE_RUNBOOK_FAULTS:
        break_lab(flow.lab, fault)
    (first, *_) = flow.timestamps()
    code, out, err = flow.backup("--fix", "--yes")
    assert code == 0, out + err
    new = flow.current()
    assert new not in (first,) and f"✓ backup {new} complete" in out
    assert flow.replicas() == {"dv-api": 1, "dv-caching": 1, "dv-unified-console": 1}
    assert "✓ DV's pods are ready" in out
    code, out, _ = flow.dv("check", "--only", "stale-bar-marker,side-deployments-left-down,bar-permissions")
    assert code == 0, out


# -- output through a pipe -------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["check"], ["list"], ["checks"], ["check", "--for", "restore"]])
def test_output_through_a_pipe_is_never_cut_or_wrapped(flow, argv):
    proc = shell(flow, f"dvdoctor {' '.join(argv)} | cat")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "…" not in proc.stdout and "┃" not in proc.stdout and "\x1b[" not in proc.stdout
    if argv == ["list"]:
        header, row = proc.stdout.splitlines()[:2]
        assert header.split() == ["CURRENT", "BACKUP", "AGE", "COMBINED", "COMPONENTS", "STATE", "ORIGIN"]
        assert row.split()[:2] == ["→", flow.current()]  # the value `restore --from` needs, whole
    if argv == ["checks"]:
        line = next(x for x in proc.stdout.splitlines() if x.startswith("side-deployments-left-down "))
        assert line.split(None, 4)[1:] == ["error", "restore", "auto",
                                          "dv-caching, dv-api and dv-unified-console run when no backup does"]
    if argv[0] == "check":
        assert any(len(line) > 80 for line in proc.stdout.splitlines())  # long lines stay long


def test_backup_output_through_a_pipe_keeps_the_image_and_the_log_path_whole(flow):
    proc = shell(flow, f"dvdoctor backup --yes --log-dir {flow.logs} | cat")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    created = next(line for line in proc.stdout.splitlines() if "create job dv-backup-job" in line)
    assert created.endswith("(image image-registry.openshift-image-registry.svc:5000/cpd30/dv-init-volume:v1.5.0.0-217)")
    saved = next(line for line in proc.stdout.splitlines() if line.startswith("job log saved to "))
    path = saved.removeprefix("job log saved to ")
    assert os.path.isabs(path) and os.path.isfile(path)


def test_job_logs_default_to_the_state_folder(flow, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    code, out, _ = flow.dv("backup", "--yes")
    assert code == 0, out
    saved = next(line for line in out.splitlines() if line.startswith("job log saved to "))
    path = saved.removeprefix("job log saved to ")
    assert path.startswith(str(tmp_path / "state" / "dvdoctor" / "logs") + "/") and os.path.isfile(path)
    assert list((tmp_path / "cwd").iterdir()) == []  # nothing dropped where the command ran


@pytest.mark.long_wait
def test_without_a_terminal_a_running_backup_prints_timestamped_progress(slow_flow):
    code, out, _ = slow_flow.backup("--yes")
    assert code == 0, out
    lines = [line for line in out.splitlines() if " dv-backup-job: " in line and line[:4].isdigit()]
    assert lines, out
    stamp, rest = lines[0].split(" ", 1)
    assert len(stamp) == 20 and stamp.endswith("Z") and "elapsed" in rest


@pytest.mark.long_wait
def test_without_a_terminal_progress_shows_the_new_backup_folder_and_its_size(slow_flow, monkeypatch):
    """The size is read in the job's own pod, where the backup volume is mounted (in the lab a link)."""
    from dvdoctor.flows import common as backup_flow

    class EverySecond(backup_flow.Heartbeat):  # the period is 60 s; one second lets the 3 s hold show it
        def __init__(self, runner, job_name, every, console):
            super().__init__(runner, job_name, 1.0, console)

    monkeypatch.setattr(backup_flow, "Heartbeat", EverySecond)
    before = set(slow_flow.bar.iterdir())
    code, out, _ = slow_flow.backup("--yes")
    assert code == 0, out
    [new] = [p.name for p in set(slow_flow.bar.iterdir()) - before if p.name[:4].isdigit()]
    sized = [line for line in out.splitlines() if "dv-backup-job: Running" in line and f"backup folder {new} " in line]
    assert sized, out
    assert re.search(rf"backup folder {new} \d+(\.\d+)? (B|KiB|MiB)", sized[0]), sized[0]
