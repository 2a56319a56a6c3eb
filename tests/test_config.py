"""dvdoctor.yaml: every kind of mistake is one line naming the file, the line and the field;
a valid file changes the names, thresholds and BAR defaults every command uses, and suppressions
mark findings without changing the exit code."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dvdoctor.cli.config import SiteSettings, find, load, parse, schema
from dvdoctor.core.errors import UsageError
from dvdoctor.core.names import DEFAULT, DvNames, Thresholds
from dvdoctor.verdicts.registry import Suppression

from test_formats import stale_marker_bundle

FULL = """\
# the site's settings
names:
  bar_pvc: site-bar-pvc
  side_deployments: [dv-caching, dv-api]
thresholds:
  max_backup_age_hours: 48
  space_margin: 0.2
bar:
  uid: 1000650000
  storage_class: ibmc-file-gold-gid
  size: 60Gi
suppressions:
  - check: bar-pv-reclaim-delete
    object: persistentvolume/pvc-1234
    reason: the storage team snapshots this volume nightly
  - check: no-recent-backup
    reason: backups run from the customer's own scheduler
"""


def error_of(text: str) -> str:
    with pytest.raises(UsageError) as err:
        parse(textwrap.dedent(text), "site.yaml")
    return str(err.value)


def test_a_full_config_sets_names_thresholds_bar_defaults_and_suppressions():
    settings = parse(FULL, "site.yaml")
    assert isinstance(settings, SiteSettings)
    assert settings.names.bar_pvc == "site-bar-pvc"
    assert settings.names.side_deployments == ("dv-caching", "dv-api")
    assert settings.names.engine_pod == "dv-engine-0"  # untouched names keep the runbook's
    assert settings.names.bar_uid == 1000650000
    assert settings.thresholds == Thresholds(max_backup_age_hours=48, space_margin=0.2)
    assert (settings.storage_class, settings.bar_size) == ("ibmc-file-gold-gid", "60Gi")
    assert settings.suppressions == (
        Suppression("bar-pv-reclaim-delete", "the storage team snapshots this volume nightly", "persistentvolume/pvc-1234"),
        Suppression("no-recent-backup", "backups run from the customer's own scheduler"),
    )


def test_an_empty_file_gives_the_defaults():
    settings = parse("# nothing yet\n")
    assert settings.names == DvNames() and settings.thresholds == Thresholds() and settings.suppressions == ()


@pytest.mark.parametrize("text, expected", [
    ("colour: blue\n", "site.yaml:1: colour: unknown field; allowed here: bar, copies, names, suppressions, thresholds"),
    ("names:\n  engine_pod: dv-engine-0\n  bar_pv: x\n", "site.yaml:3: names.bar_pv: unknown field; did you mean bar_pvc? allowed here: backup_job, bar_marker,"),
    ("names:\n  bar_pvc: DV_BAR\n", "site.yaml:2: names.bar_pvc: 'DV_BAR' is not allowed; expected a Kubernetes name"),
    ("names:\n  statefulsets: dv-engine\n", "site.yaml:2: names.statefulsets: 'dv-engine' is not allowed; expected DV's StatefulSets"),
    ("names:\n  bar_mount: mnt/PV/bar\n", "site.yaml:2: names.bar_mount: 'mnt/PV/bar' is not allowed; expected an absolute path"),
    ("thresholds:\n  max_backup_age_hours: -1\n", "site.yaml:2: thresholds.max_backup_age_hours: -1 is not allowed; expected a positive number"),
    ("thresholds:\n  space_margin: lots\n", "site.yaml:2: thresholds.space_margin: 'lots' is not allowed; expected a fraction from 0 to 1"),
    ("bar:\n  uid: 0\n", "site.yaml:2: bar.uid: 0 is not allowed; expected a non-root uid"),
    ("bar:\n  size: 20 gigs\n", "site.yaml:2: bar.size: '20 gigs' is not allowed; expected a storage size above 0 such as 40Gi"),
    # break-it review: a mount with `..` passed, and broken-backup-symlink's fix then pointed the
    # restore point at /mnt/PV/bar/../../etc/TS/..., a path DV's jobs cannot read
    ("names:\n  bar_mount: /mnt/PV/bar/../../etc\n", "site.yaml:2: names.bar_mount: '/mnt/PV/bar/../../etc' is not allowed; expected an absolute path as DV's pods mount it"),
    ("names:\n  bar_mount: /mnt/PV//bar\n", "site.yaml:2: names.bar_mount: '/mnt/PV//bar' is not allowed; expected an absolute path"),
    ("names:\n  marker_dir: /mnt/marker_files/.\n", "site.yaml:2: names.marker_dir: '/mnt/marker_files/.' is not allowed; expected an absolute path"),
    ("names:\n  bar_mount: /mnt/PV/bar/\n", "site.yaml:2: names.bar_mount: '/mnt/PV/bar/' is not allowed; expected an absolute path"),
    ("names:\n  bar_mount: |\n    /mnt/PV/bar\n", "site.yaml:2: names.bar_mount: '/mnt/PV/bar\\n' is not allowed; expected an absolute path"),
    ("names:\n  bar_mount: \"/mnt/PV/b\\u2028ar\"\n", "site.yaml:2: names.bar_mount: '/mnt/PV/b\\u2028ar' is not allowed"),
    ("names:\n  bar_marker: '-rf'\n", "site.yaml:2: names.bar_marker: '-rf' is not allowed; expected a file name"),
    ("names:\n  bar_marker: '..'\n", "site.yaml:2: names.bar_marker: '..' is not allowed; expected a file name without '/'"),
    ("names:\n  templates: ['.']\n", "site.yaml:2: names.templates[0]: '.' is not allowed; expected a file name"),
    ("bar:\n  size: 0Gi\n", "site.yaml:2: bar.size: '0Gi' is not allowed; expected a storage size above 0"),
    ("bar:\n  size: 99999999999999999999999999Pi\n", "site.yaml:2: bar.size: '99999999999999999999999999Pi' is not allowed; expected a storage size above 0"),
    ("suppressions:\n  - check: stale-bar-marker\n    object: dv-engine-0\n    reason: known\n",
     "site.yaml:3: suppressions[0].object: 'dv-engine-0' is not allowed; expected one object as findings name it, kind/name"),
    # one name for two of DV's objects: deleting dvcli.sh's "list job" would delete the running backup job
    ("names:\n  list_job: dv-backup-job\n", "site.yaml:2: names.list_job: 'dv-backup-job' is also names.backup_job: "
                                           "each of backup_job, restore_job, list_job, test_job, init_volume_job names its own object"),
    ("names:\n  bar_pvc: data\n  data_pvc: data\n", "site.yaml:2: names.bar_pvc: 'data' is also names.data_pvc"),
    ("names:\n  restore_marker: .bar\n", "site.yaml:2: names.restore_marker: '.bar' is also names.bar_marker"),
    ("names:\n  side_deployments: [dv-api, dv-engine]\n", "site.yaml:2: names.side_deployments[1]: 'dv-engine' is also "
                                                           "names.statefulsets[0]"),
])
def test_each_kind_of_error_names_the_line_and_the_field(text, expected):
    assert error_of(text).startswith(expected)


def test_a_suppression_without_a_reason_is_rejected_at_its_line():
    message = error_of("""\
        suppressions:
          - check: stale-bar-marker
            reason: known
          - check: no-recent-backup
            object: namespace/cpd30
        """)
    assert message.startswith("site.yaml:4: suppressions[1]: 'reason' is missing; give a non-empty reason")


def test_a_blank_reason_is_no_reason():
    assert error_of("suppressions:\n  - check: stale-bar-marker\n    reason: '  '\n").startswith(
        "site.yaml:3: suppressions[0].reason: '  ' is not allowed; expected a non-empty reason")


def test_a_suppression_of_an_unknown_check_is_rejected_at_its_line():
    assert error_of("suppressions:\n  - reason: typo\n    check: stale-bar-markr\n") == (
        "site.yaml:3: suppressions[0].check: unknown check id 'stale-bar-markr' (see `dvdoctor checks`)")


def test_yaml_syntax_errors_and_duplicate_keys_name_the_line():
    assert error_of("names:\n  bar_pvc: [oops\n").startswith("site.yaml:3: not valid YAML")
    assert error_of("bar:\n  size: 40Gi\n  size: 60Gi\n") == "site.yaml:3: size: given twice in the same mapping"


def test_the_file_is_found_in_the_current_folder_or_given(tmp_path):
    assert find(None, tmp_path) is None and load(None, tmp_path) is DEFAULT
    (tmp_path / "dvdoctor.yaml").write_text(FULL)
    assert load(None, tmp_path).names.bar_pvc == "site-bar-pvc"
    other = tmp_path / "other.yaml"
    other.write_text("names:\n  bar_pvc: other-pvc\n")
    assert load(str(other), tmp_path).names.bar_pvc == "other-pvc"
    with pytest.raises(UsageError, match=r"^--config .*absent.yaml: no such file$"):
        load(str(tmp_path / "absent.yaml"), tmp_path)


def test_the_published_schema_covers_exactly_the_settings_fields():
    props = schema()["properties"]
    names = {f.name: f for f in dataclasses.fields(DvNames)}
    assert set(props["names"]["properties"]) == set(names) - {"bar_uid"}  # the uid lives under bar.uid
    for name, spec in props["names"]["properties"].items():
        assert (spec.get("type") == "array") == str(names[name].type).startswith("tuple"), name
    assert set(props["thresholds"]["properties"]) == {f.name for f in dataclasses.fields(Thresholds)}


def invoke(args: list[str]):
    from dvdoctor.cli import app
    from dvdoctor.cli import check_cmd  # noqa: F401  (registers `check`)

    return CliRunner().invoke(app, args)


def test_a_suppressed_finding_shows_with_its_reason_and_does_not_fail_the_run(tmp_path):
    bundle = stale_marker_bundle(tmp_path / "facts.json")
    only = ["check", "--from", str(bundle), "--only", "stale-bar-marker"]
    assert invoke(only).exit_code == 1
    config = tmp_path / "site.yaml"
    config.write_text("suppressions:\n  - check: stale-bar-marker\n    object: pod/dv-engine-0\n"
                      "    reason: DV is being reinstalled this week\n")
    table = invoke(["--config", str(config), *only])
    assert table.exit_code == 0, table.output
    assert "(suppressed: DV is being reinstalled this week)" in table.stdout
    assert "1 suppressed" in table.stdout
    report = json.loads(invoke(["--config", str(config), *only, "-o", "json"]).stdout)
    assert report["results"][0]["status"] == "suppressed"
    assert report["results"][0]["problems"][0]["suppressed"] == "DV is being reinstalled this week"


def test_a_suppression_of_another_object_leaves_the_finding_failing(tmp_path):
    bundle = stale_marker_bundle(tmp_path / "facts.json")
    config = tmp_path / "site.yaml"
    config.write_text("suppressions:\n  - check: stale-bar-marker\n    object: pod/dv-engine-1\n    reason: other pod\n")
    assert invoke(["--config", str(config), "check", "--from", str(bundle), "--only", "stale-bar-marker"]).exit_code == 1


def test_configured_names_reach_the_checks(tmp_path):
    bundle = stale_marker_bundle(tmp_path / "facts.json")  # its engine shows a marker named .bar
    config = tmp_path / "site.yaml"
    config.write_text("names:\n  bar_marker: .dvbar\n")
    result = invoke(["--config", str(config), "check", "--from", str(bundle), "--only", "stale-bar-marker", "-o", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["results"][0]["status"] == "pass"


def test_a_bad_config_file_is_one_usage_error_and_help_still_works(tmp_path, monkeypatch):
    bundle = stale_marker_bundle(tmp_path / "facts.json")
    (tmp_path / "dvdoctor.yaml").write_text("suppressions:\n  - check: stale-bar-marker\n")
    monkeypatch.chdir(tmp_path)
    result = invoke(["check", "--from", str(bundle)])
    assert isinstance(result.exception, UsageError) and result.exception.exit_code == 2
    assert str(result.exception) == ("dvdoctor.yaml:2: suppressions[0]: 'reason' is missing; "
                                     "give a non-empty reason, shown with every finding it suppresses")
    assert invoke(["check", "--help"]).exit_code == 0  # a broken config never stands in the way of help


def test_config_may_follow_the_command_like_the_other_root_options():
    from dvdoctor.cli import hoist_global_options

    assert hoist_global_options(["check", "--config", "site.yaml", "-o", "json"]) == [
        "--config", "site.yaml", "check", "-o", "json"]


def test_relative_copies_paths_are_relative_to_the_config_file_not_to_where_dvdoctor_runs(tmp_path, monkeypatch):
    """`password_file: pw` beside dvdoctor.yaml means that file wherever the command is run from (a cron
    job's folder, an operator's home); a repository given as a location (rest:, s3:...) or an
    absolute path is kept as written."""
    site = tmp_path / "site"
    site.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = site / "dvdoctor.yaml"
    config.write_text("copies:\n  repository: repo\n  password_file: secrets/pw\n")
    copies = load(str(config)).copies
    assert (copies.repository, copies.password_file) == (str(site / "repo"), str(site / "secrets" / "pw"))
    config.write_text("copies:\n  repository: rest:https://backup.example:8000/dv\n  password_file: /etc/pw\n")
    copies = load(str(config)).copies
    assert (copies.repository, copies.password_file) == ("rest:https://backup.example:8000/dv", "/etc/pw")


def test_copies_path_edge_cases_follow_the_config_file_as_written(tmp_path, monkeypatch):
    """A linked dvdoctor.yaml: its paths are relative to the folder the link is in (where the user put
    it). `~` is the home folder; `local:PATH` is a path too; a password file's name may hold a ':'."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    real, linked = tmp_path / "real", tmp_path / "etc"
    real.mkdir()
    linked.mkdir()
    (real / "dvdoctor.yaml").write_text("copies:\n  repository: local:repo\n  password_file: pw:dv\n")
    (linked / "dvdoctor.yaml").symlink_to(real / "dvdoctor.yaml")
    copies = load(str(linked / "dvdoctor.yaml")).copies
    assert (copies.repository, copies.password_file) == (f"local:{linked / 'repo'}", str(linked / "pw:dv"))
    (real / "dvdoctor.yaml").write_text("copies:\n  repository: ~/repo\n  password_file: ~/.dv-pw\n")
    copies = load(str(linked / "dvdoctor.yaml")).copies
    assert (copies.repository, copies.password_file) == (str(tmp_path / "home" / "repo"),
                                                        str(tmp_path / "home" / ".dv-pw"))


def test_the_config_file_takes_a_storage_class_as_the_command_line_does(tmp_path):
    """One name rule: the schema's storage_class is core.names' DNS-1123 subdomain, whole (break-it,
    session 21: the file took `fast.ssd` while --storage-class refused it, and took `a..b`)."""
    from dvdoctor.core.names import DNS1123_SUBDOMAIN

    prop = schema()["properties"]["bar"]["properties"]["storage_class"]
    assert prop["pattern"] == f"^{DNS1123_SUBDOMAIN.pattern}$" and prop["maxLength"] == 253
    for good in ("fast.ssd", "nfs-client", "a"):
        assert parse(f"bar:\n  storage_class: {good}\n", "site.yaml").storage_class == good
    for bad in ("a..b", "a.-b", "Fast", "-a"):
        with pytest.raises(UsageError):
            parse(f"bar:\n  storage_class: '{bad}'\n", "site.yaml")
