"""The names, paths and thresholds of a DV 1.5.0 namespace, as the runbook gives them.

They are defaults: a site that renamed an object overrides it in its config file. Objects are
matched by these exact names, never by substring (dvcli.sh's `grep -i` picks up look-alikes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import UsageError

#: Kubernetes' two name forms, matched whole (`fullmatch`: a trailing newline is not a name).
#: A label (namespaces, most object names): at most 63 characters.
DNS1123_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?")
#: A subdomain (labels joined by dots): at most 253 characters.
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*")


def is_label(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 63 and DNS1123_LABEL.fullmatch(value) is not None


def is_subdomain(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 253 and DNS1123_SUBDOMAIN.fullmatch(value) is not None


def valid_name(value: str, what: str, *, subdomain: bool = False) -> str:
    """The one check of a name a user gives, or one UsageError naming the value and what is allowed:
    a DNS-1123 label (a namespace), or with `subdomain` a DNS-1123 subdomain, the form Kubernetes gives
    most objects' names (a storage class, a persistent volume, a service account: `fast.ssd`)."""
    if (is_subdomain if subdomain else is_label)(value):
        return value
    allowed = ("lower-case letters, digits, '-' and '.', each part between dots starting and ending with a "
               "letter or digit, at most 253 characters" if subdomain else
               "lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters")
    raise UsageError(f"{what} {value!r} is not a valid Kubernetes name: {allowed}")


@dataclass(frozen=True)
class DvNames:
    engine_pod: str = "dv-engine-0"
    engine_container: str = "dv-engine"
    statefulsets: tuple[str, ...] = ("dv-engine", "dv-metastore", "dv-utils", "dv-worker")
    side_deployments: tuple[str, ...] = ("dv-caching", "dv-api", "dv-unified-console")
    caching_deployment: str = "dv-caching"
    init_volume_job: str = "dv-init-volume"
    data_pvc: str = "dv-pvc"
    bar_pvc: str = "dv-bar-pvc"
    bar_sa: str = "dv-bar-sa"
    backup_job: str = "dv-backup-job"
    restore_job: str = "dv-restore-job"
    list_job: str = "dv-list-backups-job"
    test_job: str = "dv-test-job"
    bar_mount: str = "/mnt/PV/bar"
    marker_dir: str = "/mnt/marker_files"
    bar_marker: str = ".bar"
    restore_marker: str = ".bar_restored.txt"
    template_dir: str = "/opt/dv/current/bar/yaml"
    templates: tuple[str, ...] = (
        "dv-backup-job.yaml",
        "dv-restore-job.yaml",
        "dv-bar-pvc.yaml",
        "dv-list-backups-job.yaml",
    )
    caching_script: str = "/opt/dv/current/bar/scripts/dv-caching-bar.sh"
    symlink: str = "dv_backup.tar.gz"
    combined_tarball: str = "dv_backup.tar.gz"
    component_tarballs: tuple[str, ...] = ("dv_backup_dv_metastore.tar.gz", "dv_backup_dv_engine.tar.gz")
    #: Used only when neither DV's backup job template nor the init-volume job names a uid.
    bar_uid: int = 1000322824

    @property
    def bar_jobs(self) -> tuple[str, ...]:
        return (self.backup_job, self.restore_job, self.list_job, self.test_job)


@dataclass(frozen=True)
class Thresholds:
    #: `no-recent-backup` fails when the newest complete backup is older than this.
    max_backup_age_hours: float = 7 * 24
    #: Free space must exceed the next backup's expected size by this fraction.
    space_margin: float = 0.10
    #: Events younger than this are kept in the facts.
    event_window_minutes: int = 120


@dataclass(frozen=True)
class CopySettings:
    """Where copies of good backups go (`copies:` in dvdoctor.yaml): a restic repository.

    On this machine (the lab) the repository and a password file are named; in a cluster a Secret
    holds them (RESTIC_REPOSITORY, RESTIC_PASSWORD, the backend's credentials) and never leaves it.
    """

    repository: str | None = None
    password_file: str | None = None
    secret: str | None = None
    #: A claim in DV's namespace the copy Job mounts at `REPOSITORY_MOUNT`, for a repository that is
    #: a path on another volume (the issue's "a path on another claim"); never the backup claim.
    claim: str | None = None
    #: dvdoctor's image (with restic), which the copy Job runs in a cluster.
    image: str | None = None
    #: `no-recent-copy` fails when the newest copy is older than this.
    max_age_hours: float = 36.0

    @property
    def local(self) -> bool:
        return self.secret is None


@dataclass(frozen=True)
class Settings:
    names: DvNames = field(default_factory=DvNames)
    thresholds: Thresholds = field(default_factory=Thresholds)
    #: Storage class and size for a dv-bar-pvc that dvdoctor creates, when the command line names none.
    storage_class: str | None = None
    bar_size: str | None = None
    #: Copies off the backup volume; None when the site configured none.
    copies: CopySettings | None = None


DEFAULT = Settings()

#: Label on every object dvdoctor creates, so `leftover-bar-pods` and cleanup can find them.
OWNED_LABEL = "app.kubernetes.io/managed-by"
OWNED_VALUE = "dvdoctor"
#: Annotation recording a deployment's replicas before dvdoctor scaled it to 0.
REPLICAS_ANNOTATION = "dvdoctor.io/original-replicas"
#: Annotations on DV's BAR jobs that dvdoctor starts: which command, and which run (user@host:pid,
#: the identity its lock holds), so a job whose run is gone can be told from one that is watched.
STARTED_BY_ANNOTATION = "dvdoctor.io/started-by"
RUN_ANNOTATION = "dvdoctor.io/run"
#: On a backup job dvdoctor starts: the newest backup folder before it ("" for none), so the folders
#: it writes are known exactly when it has to be stopped.
NEWEST_BEFORE_ANNOTATION = "dvdoctor.io/newest-before"
#: Annotation on the dv-engine StatefulSet while a restore that failed part-way is not yet redone:
#: JSON {"when", "backup", "why"}; the next successful restore removes it.
RESTORE_INCOMPLETE_ANNOTATION = "dvdoctor.io/restore-incomplete"


#: Where restore --from-copy renames a damaged backup folder while its copy takes the name, then
#: removes it (dvdoctor/copies/job.py); one left behind is named by odd-backup-folders.
DAMAGED_ASIDE = ".dvdoctor-damaged-"
