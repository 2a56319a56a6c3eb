"""Facts: everything checks may look at, gathered once per run, as plain JSON-able data.

A Facts object wraps the dict that `collect` builds and `collect -o` saves, so a saved bundle and a
live run are analysed by the same code. Checks read facts through the accessors here and never talk
to the cluster; they take "now" from the facts, so a bundle gives the same answers tomorrow.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Iterable

from ..cluster import k8s
from ..core.errors import Incomplete, UsageError
from ..core.names import DEFAULT, DvNames, Settings, Thresholds
from ..core.units import parse_time

SCHEMA_ID = "dvdoctor/facts/v1"

#: Parts of the facts that only an in-pod look can give; checks declare which they need.
SECTION_BAR = "bar_volume"
SECTION_ENGINE = "engine"
SECTION_ACCESS = "access"
SECTION_COPIES = "copies"
#: The largest facts file `check --from` reads: a namespace with thousands of objects is tens of MiB.
MAX_BYTES = 256 * 1024 * 1024
#: The facts' name in a support bundle (`collect --bundle`), written first so that they are read alone.
FACTS_MEMBER = "facts.json"
GZIP_MAGIC = b"\x1f\x8b"


def pod_at_work(pod: dict, jobs: dict[str, dict], names: DvNames) -> str | None:
    """The backup or restore job whose work this pod still does without its Job object (deleted, or
    replaced by a newer Job of the same name: DV reuses the name every run), else None. At work is
    any phase but Succeeded and Failed: Unknown (its node lost) may still be writing."""
    job, _ = k8s.job_of_pod(pod)
    if job not in (names.backup_job, names.restore_job) or k8s.pod_phase(pod) in ("Succeeded", "Failed"):
        return None
    return None if k8s.has_its_job(pod, jobs) else job  # its own Job there: judged as that Job


def pods_at_work(jobs: Iterable[dict], pods: Iterable[dict], names: DvNames) -> dict[str, dict]:
    """Each backup or restore job with a pod still at work without its Job object (pod_at_work):
    the job's name -> the first such pod."""
    by_name = {k8s.name(j): j for j in jobs}
    out: dict[str, dict] = {}
    for pod in pods:
        job = pod_at_work(pod, by_name, names)
        if job is not None:
            out.setdefault(job, pod)
    return out


@dataclass
class Facts:
    data: dict
    settings: Settings = field(default_factory=lambda: DEFAULT)

    # ---- identity and time -------------------------------------------------------------
    @property
    def namespace(self) -> str:
        return self.data["namespace"]

    @property
    def now(self) -> datetime:
        return parse_time(self.data["collected_at"]) or datetime.now(timezone.utc)

    @property
    def names(self) -> DvNames:
        return self.settings.names

    @property
    def thresholds(self) -> Thresholds:
        return self.settings.thresholds

    # ---- objects ------------------------------------------------------------------------
    def objects(self, kind: str) -> list[dict]:
        return self.data["objects"].get(kind) or []

    def has_kind(self, kind: str) -> bool:
        """False when the kind could not be listed (e.g. PVs without cluster-wide rights)."""
        return kind in self.data["objects"]

    def get(self, kind: str, name: str) -> dict | None:
        for obj in self.objects(kind):
            if obj["metadata"]["name"] == name:
                return obj
        return None

    def pods_of_job(self, job: str) -> list[dict]:
        return [
            p
            for p in self.objects("pods")
            if (p["metadata"].get("labels") or {}).get("job-name") == job
            or any(o.get("kind") == "Job" and o.get("name") == job for o in p["metadata"].get("ownerReferences") or [])
        ]

    def active_bar_jobs(self) -> list[str]:
        """DV's backup and restore jobs that have not ended, or whose pod is still at work without its
        Job object (pod_at_work): while one runs, DV is down on purpose
        and the markers, the backup volume and the side deployments are its business."""
        wanted = (self.names.backup_job, self.names.restore_job)
        active = [k8s.name(j) for j in self.objects("jobs") if k8s.name(j) in wanted and k8s.job_state(j) == "active"]
        return active + sorted(set(pods_at_work(self.objects("jobs"), self.objects("pods"), self.names)) - set(active))

    def pv_of(self, pvc: dict) -> dict | None:
        volume = (pvc.get("spec") or {}).get("volumeName")
        return self.get("persistentvolumes", volume) if volume else None

    def events_for(self, name: str) -> list[dict]:
        return [e for e in self.objects("events") if (e.get("involvedObject") or {}).get("name") == name]

    def unread(self, kind: str) -> str | None:
        """Why a kind could not be listed (refused, or the server kept failing), or None when it was."""
        if self.has_kind(kind):
            return None
        return next((str(e.get("error")) for e in self.data.get("errors") or [] if e.get("what") == f"list {kind}"),
                    "not collected")

    def event_lines(self, name: str, last: int = 3) -> list[str]:
        """The last events of an object as evidence lines, or one line saying why events are not known."""
        why = self.unread("events")
        if why is not None:
            return [f"events of {name}: skipped ({why})"]
        return [f"event {e.get('reason')}: {e.get('message', '').strip()}" for e in self.events_for(name)[-last:]]

    def log(self, pod: str) -> str | None:
        return (self.data.get("logs") or {}).get(pod)

    # ---- in-pod sections ----------------------------------------------------------------
    def section(self, name: str) -> dict | None:
        """An in-pod section, or None when it was skipped (see `skipped`)."""
        return self.data.get(name)

    def skipped(self, name: str) -> str | None:
        """Why an in-pod section is missing, or None when it is there."""
        return (self.data.get("skipped") or {}).get(name)

    def unknown(self, name: str) -> bool:
        """Whether a skipped in-pod section leaves what it holds unknown (no rights, a pod that failed).

        Not so when the user left it out (--no-pod) or when there was nothing to look at (no backup
        claim yet, no service account: states their own checks report).
        """
        chosen = (self.data.get("left_out") or []) + (self.data.get("not_applicable") or [])
        if name == SECTION_COPIES and getattr(self.settings, "copies", None) is None:
            return False  # no copies configured: nothing to know (facts saved before copies existed too)
        return self.section(name) is None and name not in chosen

    def require(self, name: str) -> dict:
        """An in-pod section a repair or flow cannot do without: one clear error when it was skipped."""
        got = self.section(name)
        if got is None:
            what = {SECTION_BAR: f"the backup volume {self.names.bar_mount} could not be inspected",
                    SECTION_ENGINE: f"cannot look inside {self.names.engine_pod}"}.get(name, f"{name} was not collected")
            error = Incomplete if self.unknown(name) else UsageError
            raise error(f"{what}: {self.skipped(name) or 'not collected'}")
        return got

    def marker(self, name: str) -> dict | None:
        """A marker file in dv-engine-0's marker folder, or None (also when the engine was not looked at)."""
        return next((m for m in (self.engine or {}).get("markers", []) if m["name"] == name), None)

    @property
    def bar(self) -> dict | None:
        return self.section(SECTION_BAR)

    @property
    def engine(self) -> dict | None:
        return self.section(SECTION_ENGINE)

    # ---- persistence --------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(self.data, indent=2, sort_keys=True)

    @classmethod
    def load(cls, path: Path, settings: Settings = DEFAULT) -> "Facts":
        """Read saved facts (`collect -o`) or a support bundle's (`collect --bundle`); anything malformed
        (or too big, or too deep) is one clear UsageError."""
        from ..core.bounded import json_loads

        try:
            data = json_loads(_facts_text(path), MAX_BYTES)
        except FileNotFoundError:
            raise UsageError(f"bundle {path} does not exist") from None
        except IsADirectoryError:
            raise UsageError(f"bundle {path} is a folder; give the file `dvdoctor collect -o` wrote") from None
        except OSError as exc:
            raise UsageError(f"bundle {path} cannot be read: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise UsageError(f"bundle {path} is not a JSON facts bundle: it is not UTF-8 text (byte "
                             f"{exc.object[exc.start]:#04x} at offset {exc.start}); give the file `dvdoctor "
                             "collect -o` or `collect --bundle` wrote") from None
        except ValueError as exc:  # not JSON, too big, too deep
            raise UsageError(f"bundle {path} is not a JSON facts bundle: {exc}") from None
        validate(data, str(path))
        return cls(data, settings)


def _facts_text(path: Path) -> str:
    """The facts file's text, or a support bundle's facts: its first member, read alone and bounded
    (streamed, so a bundle that is large or not one is not read through)."""
    from ..core.bounded import TooBig, read_text

    with open(path, "rb") as fh:
        if fh.read(2) != GZIP_MAGIC:
            return read_text(path, MAX_BYTES)
    import gzip
    import tarfile
    import zlib

    not_one = f"bundle {path} is gzip'd but not a support bundle of `dvdoctor collect --bundle`"
    try:
        with gzip.open(path) as stream:
            # the first header, judged before tarfile reads what it announces (a pax header of any size)
            header = stream.read(tarfile.BLOCKSIZE)
            name, kind = header[:100].split(b"\0", 1)[0], header[156:157]
            if name != FACTS_MEMBER.encode() or kind not in (tarfile.REGTYPE, tarfile.AREGTYPE):
                what = "is not facts.json" if name != FACTS_MEMBER.encode() else "is not a regular file"
                raise UsageError(f"{not_one}: its first member {what}")
            stream.seek(0)
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                first = tar.next()
                if first is None or first.name != FACTS_MEMBER or not first.isfile():  # a ustar prefix: x/facts.json
                    raise UsageError(f"{not_one}: its first member is not {FACTS_MEMBER}")
                if first.size > MAX_BYTES:
                    raise TooBig(f"its {FACTS_MEMBER} is larger than {MAX_BYTES // 1024**2} MiB, the most dvdoctor reads")
                raw = tar.extractfile(first).read(MAX_BYTES + 1)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:  # gzip.BadGzipFile is an OSError
        raise UsageError(f"{not_one}: {exc}") from None
    return raw.decode("utf-8")


def schema() -> dict:
    return json.loads(resources.files("dvdoctor").joinpath("schemas", "facts.schema.json").read_text())


def _formats():
    """The schema's two formats, judged by the parsers the checks use: a bundle whose time or size
    they could not read is refused on load (jsonschema alone checks no format)."""
    import jsonschema

    from ..core.units import parse_quantity

    formats = jsonschema.FormatChecker(formats=())
    formats.checks("date-time", raises=(ValueError, TypeError))(
        lambda v: not isinstance(v, str) or (_RFC3339.fullmatch(v) is not None and parse_time(v) is not None))
    formats.checks("quantity", raises=(ValueError, OverflowError))(lambda v: not isinstance(v, str) or parse_quantity(v) >= 0)
    return formats


#: A time as the API writes it: RFC 3339 with its offset (Python would also take a bare date, a time
#: with no offset or a week date, which checks cannot compare with aware times), in years that
#: leave room for the checks' arithmetic (a year 1 start or a 9999 collection overflows a datetime).
_RFC3339 = re.compile(r"(19|[2-8][0-9]|9[0-8])[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
                      r"(Z|[+-][0-9]{2}:[0-9]{2})", re.ASCII)


@functools.lru_cache(maxsize=1)
def _validator():
    """The schema's validator, built once a process: its schema file read and its references resolved
    took a third of each bundle's validation (a process that reads several bundles, the tests)."""
    import jsonschema

    return jsonschema.Draft202012Validator(schema(), format_checker=_formats())


def validate(data: object, where: str = "facts") -> None:
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        at = "/".join(str(p) for p in err.absolute_path) or "(top)"
        raise UsageError(f"{where} is not a valid dvdoctor facts bundle: at {at}: {err.message}")
