"""Fixtures every test folder shares; a module that needs another shape overrides one by its name.

- `golden_lab`: the run's healthy lab, made once per run (shared by the xdist workers) and only ever
  copied (tests/labs.py), since creating one runs a real backup job; its backup is a few hundred KiB,
  or 1.4 MiB for a test marked `mib_backups`.
- `api`, `kubeconfig`, `cluster`: a fake API server (tests/fakeapi.py), a kubeconfig naming it, and
  dvdoctor's real Kubernetes adapter connected through it with a short retry backoff. The server is
  empty, for namespace cpd30, unless the test or its module is marked `fake_api`:
  `@pytest.mark.fake_api(holds=prepare, namespaces=(...), contexts=(...))` starts it serving those
  namespaces, calls `prepare(api)` (tests/namespaces.py holds the shared ones, such as
  `healthy_whose_jobs_end`), and names those contexts in the kubeconfig. It is the one fixture that
  starts a fake server, so every one is stopped after its test.
- `root`: a pod's root folder every uid can traverse, for the in-pod scripts run for real.
- `restic_repository`: makes a test's own restic repository, a copy of one `restic init` made (kept
  between runs in .cache/restic-template), re-keyed under a cheap KDF so each restic command does not
  spend half a second of CPU deriving its key (tests/restic_repo.py).
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

import builders as b
from dvdoctor.cluster.kube import KubeCluster, connect
from dvdoctor.lab import create_lab

from fakeapi import FakeApi
from labs import made_once_per_run, run_common_folder
from run_order import arrange


def _temp_files_in_memory() -> str | None:
    """Put the run's temp files (labs, restic repositories, pytest's tmp_path, the real tier's etcd) on
    a memory file system when the machine has one with room, and say where (the report header).

    Why: the suite creates and deletes a few hundred thousand files (a lab per test, its pods' files,
    each backup's tarballs). On ext4 every new inode is searched for past recently deleted ones
    (ext4's `recently_deleted`, seen in `perf` as 5% of the suite's CPU) and etcd syncs each write:
    on tmpfs a full run took 189 s instead of 240 s on this 2-core machine. A TMPDIR the user set is
    kept as it is; without /dev/shm (or with less than 2 GiB free there) the system's default stays.
    """
    if os.environ.get("TMPDIR"):
        return None
    shm = Path("/dev/shm")
    try:
        room = os.statvfs(shm)
    except OSError:
        return None
    if room.f_bavail * room.f_frsize < 2 * 1024**3 or not os.access(shm, os.W_OK | os.X_OK):
        return None
    mine = shm / f"dvdoctor-tests-{os.getuid()}"
    mine.mkdir(mode=0o755, exist_ok=True)
    if mine.is_symlink() or mine.stat().st_uid != os.getuid():
        return None  # not ours: someone else's folder (or a planted link) is no place for our labs
    mine.chmod(0o755)  # the lab's pods run as the BAR uid and must traverse it
    os.environ["TMPDIR"] = str(mine)  # the xdist workers and every program the tests start inherit it
    tempfile.tempdir = None  # gettempdir() reads TMPDIR again
    return str(mine)


_TEMP_IN_MEMORY = _temp_files_in_memory()


def _caches_of_our_own() -> None:
    """Each test process gets its own XDG_CACHE_HOME (restic's cache, of the lab's copy program
    too), removed at its exit.

    Why: restic keeps a cache folder per repository id in ~/.cache/restic and, at every start, looks
    over all of them for stale ones; every copy test makes a new repository, so the suite left
    hundreds there for good, and with 1,600 of them each restic command took 37 ms of CPU instead of
    12. The user's home is no place for a test run's files either."""
    import atexit

    cache = tempfile.mkdtemp(prefix="dvdoctor-test-cache-")
    os.environ["XDG_CACHE_HOME"] = cache
    atexit.register(shutil.rmtree, cache, True)


_caches_of_our_own()


def pytest_report_header(config) -> str:
    where = f"{_TEMP_IN_MEMORY} (tmpfs)" if _TEMP_IN_MEMORY else tempfile.gettempdir()
    return f"temp files: {where}"


def _kubernetes_schemas_read_once() -> None:
    """kubernetes_validate (the tests' judge of every manifest dvdoctor writes) reads and parses its
    schema files, the 2 MB `_definitions.json` of the version among them, at every validate: a test
    that validates every manifest at every supported version spent seconds parsing the same files.
    They are read once a worker here; the validation itself is the library's, unchanged."""
    import functools

    import kubernetes_validate.utils as kv

    if not hasattr(kv.schema_contents, "cache_info"):
        kv.schema_contents = functools.lru_cache(maxsize=None)(kv.schema_contents)


_kubernetes_schemas_read_once()


# A suite started in the background by a non-interactive shell (`pytest &`) inherits SIGINT
# ignored, and an ignored signal stays ignored in every program it starts: the Ctrl-C tests would
# then interrupt nothing. With a handler here instead, the programs the tests start get the default.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The order the workers get the tests in: the real tier and the long waits first (run_order.py)."""
    items[:] = arrange(items, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1),
                       lambda item: item.get_closest_marker("real") is not None,  # tests/real/conftest.py
                       lambda item: item.get_closest_marker("long_wait") is not None)


def _golden(tmp_path_factory: pytest.TempPathFactory, files_scale: float) -> Iterator[Path]:
    """A healthy lab, made once per run (labs.made_once_per_run): every worker's tests copy the same
    one, so what is prepared from it once (a repository holding a copy of its backup) fits all."""
    for base in made_once_per_run(run_common_folder(tmp_path_factory), f"golden-lab-{files_scale}",
                                  lambda base: create_lab(base / "lab", files_scale=files_scale)):
        yield base / "lab"


@pytest.fixture(scope="session")
def golden_lab_small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A healthy lab with DV's files at a tenth of their size: a backup of about 300 KiB. Hundreds of
    backups, read-backs, restores and copies gzip, hash and stream it in a run (at half the size, the
    suite spent 27 of its 200 CPU-seconds more on those bytes)."""
    yield from _golden(tmp_path_factory, 0.1)


@pytest.fixture(scope="session")
def golden_lab_mib(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A healthy lab with DV's files at half their size: a 1.4 MiB backup in a 2.8 MiB folder, for the
    tests marked `mib_backups` (a size said in MiB; a claim's capacity, which the lab sets in whole MiB,
    with room for a given number of backups or for half of one)."""
    yield from _golden(tmp_path_factory, 0.5)


@pytest.fixture
def golden_lab(request: pytest.FixtureRequest) -> Path:
    """The run's healthy lab (one complete backup) a test's lab is copied from (labs.copy_lab):
    made once per run, never changed. The small one, or the MiB-sized one for a test (or module)
    marked `mib_backups`."""
    mib = request.node.get_closest_marker("mib_backups") is not None
    return request.getfixturevalue("golden_lab_mib" if mib else "golden_lab_small")


@dataclass(frozen=True)
class FakeApiSetup:
    """What the `fake_api` marker asks of the `api` fixture (nothing: an empty cpd30)."""

    holds: Callable[[FakeApi], None] | None = None
    namespaces: tuple[str, ...] = (b.NS,)
    contexts: tuple[str, ...] = ("dv-admin",)


def fake_api_setup(request: pytest.FixtureRequest) -> FakeApiSetup:
    """The closest `fake_api` marker (the test's, else its class's or module's) as a setup.

    Keywords only: a marker called with one function would decorate that function instead."""
    mark = request.node.get_closest_marker("fake_api")
    return FakeApiSetup(**mark.kwargs) if mark else FakeApiSetup()


@pytest.fixture
def api(request: pytest.FixtureRequest) -> Iterator[FakeApi]:
    """A fake API server, prepared as the test's `fake_api` marker says (empty cpd30 without one),
    stopped after the test even when a preparation fails."""
    setup = fake_api_setup(request)
    fake = FakeApi(namespaces=setup.namespaces).start()
    try:
        if setup.holds is not None:
            setup.holds(fake)
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def kubeconfig(api: FakeApi, tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A kubeconfig on `api` in namespace cpd30, with the marker's contexts (one, `dv-admin`, else)."""
    return api.kubeconfig(tmp_path / "config", namespace=b.NS, contexts=fake_api_setup(request).contexts)


@pytest.fixture
def cluster(api: FakeApi, kubeconfig: Path) -> KubeCluster:
    """dvdoctor's Kubernetes adapter on `api`, retrying after 10 ms instead of its real backoff."""
    c = connect(str(kubeconfig), None, None)
    c.retry_backoff = 0.01
    return c


@pytest.fixture
def root() -> Iterator[Path]:
    """A pod's root folder every uid can traverse (builders.pod_root), removed after the test."""
    base = b.pod_root()
    yield base
    shutil.rmtree(base, ignore_errors=True)


#: Where the empty repository `restic init` made is kept between runs, by restic version (beside the
#: control plane's build, which scripts/kube-real.sh keeps in .cache/kube).
RESTIC_TEMPLATE_CACHE = Path(os.environ.get("RESTIC_TEMPLATE_CACHE")
                             or Path(__file__).resolve().parents[1] / ".cache" / "restic-template")


@pytest.fixture(scope="session")
def restic_template(tmp_path_factory: pytest.TempPathFactory):
    """The run's empty restic repository (one `restic init`, re-keyed): only ever copied."""
    restic = shutil.which("restic")
    if restic is None:
        pytest.skip("restic is not installed (make test installs it as root on Debian: apt-get install restic)")
    from restic_repo import Keys, Template, cached_template

    def make(base: Path) -> None:
        made = cached_template(RESTIC_TEMPLATE_CACHE, base / "repo", restic)
        master = base / "master.json"
        master.write_text(json.dumps(made.master.master_json()))
        master.chmod(0o600)

    # `restic init` calibrates its KDF at 2-4 CPU-seconds: paid once on a machine (RESTIC_TEMPLATE_CACHE),
    # then copied from there once per run, not once per worker
    for base in made_once_per_run(run_common_folder(tmp_path_factory), "restic-template", make):
        yield Template(base / "repo", Keys.from_master_json(json.loads((base / "master.json").read_text())))


@pytest.fixture
def restic_repository(restic_template) -> Callable[[Path, str], Path]:
    """`make(path, password)`: a repository of the test's own at path, opened by that password (a copy
    of the session's: restic's format, layout and chunker polynomial, a new id, a cheap key file)."""
    return restic_template.copy_to


def pytest_collection_finish(session: pytest.Session) -> None:
    """What a worker has made by now (every module it imported, the collected tests) lives as long as it
    does: out of the garbage collector's sight (gc.freeze), its full collections look only at what the
    tests make (they scanned some 200,000 objects each, 5 or 6 times a worker)."""
    gc.freeze()
