"""The real tier: dvdoctor against a real Kubernetes API server of DV's era (1.20, RBAC, no nodes).

One control plane per pytest run (scripts/kube-real.sh up/down; shared by xdist's workers), one namespace per test,
loaded from tests/real/manifests. Skipped, with the reason, where the control plane cannot be
built (not root, not Debian 12) or has not been built; `make test` builds it first where it can,
and sets DVDOCTOR_REAL_REQUIRED=1 so that a missing build fails instead of skipping.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from labs import locked

from .api import Api, load_manifests

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "kube-real.sh"
MANIFESTS = Path(__file__).parent / "manifests"
CACHE = Path(os.environ.get("KUBE_REAL_CACHE") or ROOT / ".cache" / "kube")
BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


def _is_real(path: str) -> bool:
    return Path(path).is_relative_to(Path(__file__).parent)


def pytest_collection_modifyitems(items):
    """Mark the real tier (tests/run_order.py schedules it first, from tests/conftest.py)."""
    for item in items:
        if _is_real(str(item.fspath)):
            item.add_marker(pytest.mark.real)


#: The run's real-tier tests, once collection is final (every xdist worker collects the same list).
_REAL_NODEIDS: set[str] = set()


def pytest_collection_finish(session):
    _REAL_NODEIDS.update(item.nodeid for item in session.items if _is_real(str(item.fspath)))


def pytest_runtest_logfinish(nodeid, location):
    """The last real-tier test of the run stops the control plane, whichever worker ran it: the
    plane otherwise idles on (about 0.1 CPU-second a second) until the slowest worker ends."""
    if nodeid in _REAL_NODEIDS and _SHARED:
        _shared_finished_one(_SHARED[0])


def _unavailable() -> str | None:
    """Why the control plane cannot run here, or None when its binaries are built."""
    if all((CACHE / "bin" / b).is_file() for b in BINARIES):
        return None
    probe = subprocess.run(["bash", str(SCRIPT), "can-build"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"real tier skipped: a Kubernetes control plane cannot be built here ({probe.stdout.strip()})"
    why = f"real tier: the control plane is not built in {CACHE}/bin (run `make kube-real`, about 5 minutes)"
    if os.environ.get("DVDOCTOR_REAL_REQUIRED") == "1":
        pytest.fail(why, pytrace=False)
    return f"{why}; skipped"


@dataclass
class ControlPlane:
    run: Path
    server: str
    admin_token: str

    @property
    def ca(self) -> str:
        return str(self.run / "pki" / "ca.crt")

    def api(self, token: str | None = None) -> Api:
        return Api(self.server, token or self.admin_token, self.ca)

    def kubeconfig(self, path: Path, token: str, namespace: str) -> Path:
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "real",
            "clusters": [{"name": "real", "cluster": {"server": self.server, "certificate-authority": self.ca}}],
            "users": [{"name": "u", "user": {"token": token}}],
            "contexts": [{"name": "real", "context": {"cluster": "real", "user": "u", "namespace": namespace}}],
        }))
        path.chmod(0o600)
        return path


def _script(run: Path, command: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KUBE_REAL_RUN": str(run), "KUBE_REAL_CACHE": str(CACHE)}
    return subprocess.run(["bash", str(SCRIPT), command], env=env, capture_output=True, text=True)


def _up(run: Path) -> str | None:
    """Start a control plane in `run`; None when it is up, else why not (what was started is stopped)."""
    up = _script(run, "up")
    if up.returncode == 0:
        return None
    _script(run, "down")
    return f"kube-real.sh up failed:\n{up.stderr}"


def _plane(run: Path) -> ControlPlane:
    values = dict(line.split("=", 1) for line in (run / "env").read_text().split())
    token = next(line.split(",")[0] for line in (run / "tokens.csv").read_text().splitlines() if ",admin," in line)
    return ControlPlane(run, values["KUBE_REAL_SERVER"], token)


def _users(path: Path, change: int) -> int:
    """The count of workers using the shared control plane, changed by `change` (under the lock)."""
    count = int(path.read_text() or 0) + change if path.exists() else change
    path.write_text(str(count))
    return count


#: The folder the run's workers share (set by `control_plane`), for the count of finished real tests.
_SHARED: list[Path] = []


class _Shared:
    """What the workers of one run share about its control plane, all in the run's common folder: the
    plane's run folder, the lock they take turns under, the count of workers using it, why it failed
    to start (once, for all), and the count of real-tier tests finished."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.run, self.lock, self.users, self.failure, self.finished = (
            folder / f"kube-real{suffix}" for suffix in ("", ".lock", ".users", ".failed", ".finished"))


def _down(shared: _Shared) -> None:
    """Stop the plane if it is up (under the lock)."""
    if (shared.run / "env").exists():
        _script(shared.run, "down")
        (shared.run / "env").unlink(missing_ok=True)


def _shared_finished_one(folder: Path) -> None:
    shared = _Shared(folder)
    with locked(shared.lock):
        if _users(shared.finished, +1) >= len(_REAL_NODEIDS):
            _down(shared)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory) -> Iterator[ControlPlane]:
    """One control plane for the whole run. Under pytest-xdist the workers share it: the first to need
    it starts it in the run's common temp folder (the others wait on a lock, then use it). It stops when
    the run's last real-tier test has finished (`pytest_runtest_logfinish`), or else when the last
    worker using it ends (an interrupted run); every test has its own namespace, so they can run side by
    side on it."""
    why = _unavailable()
    if why:
        pytest.skip(why)
    base = tmp_path_factory.getbasetemp()
    # under xdist each worker's basetemp is inside the run's folder; alone, the run's folder is basetemp
    shared = _Shared(base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base)
    _SHARED[:] = [shared.folder]
    with locked(shared.lock):
        if shared.failure.exists():
            pytest.fail(shared.failure.read_text(), pytrace=False)
        if not (shared.run / "env").exists():
            shared.run.mkdir(exist_ok=True)
            failed = _up(shared.run)
            if failed:
                shared.failure.write_text(failed)
                pytest.fail(failed, pytrace=False)
        _users(shared.users, +1)
    try:
        yield _plane(shared.run)
    finally:
        with locked(shared.lock):
            if _users(shared.users, -1) == 0:
                _down(shared)


class _TimedOut(BaseException):
    """A run in this process went past its test's bound (a BaseException: nothing in dvdoctor catches it)."""


def in_process(argv: list[str], env: dict[str, str], cwd: Path, timeout: float) -> Result:
    """dvdoctor.cli.run(argv) here, with `env` set, DVDOCTOR_AUDIT unset and `cwd` current for the run
    only; stdout and stderr are captured as text (not a terminal). A run still going after `timeout`
    seconds is stopped and fails the test: SIGALRM raises _TimedOut, again each second after the
    first (a cleanup that swallowed one meets the next), and never once the run has returned. Every
    change is undone whatever happens, each by itself; under an interval timer someone else armed
    (pytest-timeout's signal mode) that one stays the bound, untouched."""
    import io
    import signal

    from dvdoctor.cli import run

    out, err = io.StringIO(), io.StringIO()
    running = [True]

    def alarm(_sig, _frame):
        if running[0]:
            raise _TimedOut()

    with contextlib.ExitStack() as undo:
        saved_env = {k: os.environ.get(k) for k in (*env, "DVDOCTOR_AUDIT")}
        undo.callback(_put_back_env, saved_env)
        os.environ.update(env)
        os.environ.pop("DVDOCTOR_AUDIT", None)
        saved_cwd = os.getcwd()
        os.chdir(cwd)
        undo.callback(os.chdir, saved_cwd)
        saved_streams = sys.stdout, sys.stderr
        undo.callback(_put_back_streams, saved_streams)
        sys.stdout, sys.stderr = out, err
        if signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0):
            previous = signal.signal(signal.SIGALRM, alarm)
            undo.callback(signal.signal, signal.SIGALRM, previous)
            undo.callback(signal.setitimer, signal.ITIMER_REAL, 0)
            signal.setitimer(signal.ITIMER_REAL, timeout, 1.0)
        try:
            code = run(argv)
        except _TimedOut:
            code = None
        finally:
            running[0] = False
    if code is None:
        pytest.fail(f"dvdoctor {' '.join(argv)} ran past {timeout} s:\n{out.getvalue()}{err.getvalue()}", pytrace=False)
    return Result(code, out.getvalue(), err.getvalue())


def _put_back_env(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _put_back_streams(saved: tuple) -> None:
    sys.stdout, sys.stderr = saved


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str

    @property
    def json(self):
        return json.loads(self.stdout)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class DvNamespace:
    """One DV 1.5.0 namespace on the real server, and dvdoctor run against it as a subprocess."""

    name: str
    plane: ControlPlane
    home: Path
    kubeconfig: Path

    @property
    def api(self) -> Api:
        return self.plane.api()

    def _env(self, kubeconfig: Path | None) -> dict[str, str]:
        """What a dvdoctor run of this namespace has of its own: HOME (audit log, state), the kubeconfig,
        and a wide console."""
        return {"HOME": str(self.home), "XDG_STATE_HOME": str(self.home / "state"),
                "KUBECONFIG": str(kubeconfig or self.kubeconfig), "COLUMNS": "200"}

    def dvdoctor(self, *args: str, kubeconfig: Path | None = None, timeout: float = 120, process: bool = False,
                 **popen) -> Result:
        """Run `dvdoctor -n NS ARGS` with its own HOME (audit log, state) and this kubeconfig.

        In this process, as the flow tests run it (dvdoctor.cli.run, its output captured as a pipe
        gets it): a child process would import Python, typer and the kubernetes client again, about
        a CPU-second a run. `process=True` (or any Popen argument) runs it as its own process, for a
        test where dvdoctor's process identity matters (a lock this process holds).
        """
        env = self._env(kubeconfig)
        if process or popen:
            full = {**os.environ, **env}
            full.pop("DVDOCTOR_AUDIT", None)
            # cwd: the installed dvdoctor runs, not a package that happens to sit in the current folder
            proc = subprocess.run([sys.executable, "-m", "dvdoctor", "-n", self.name, *args], env=full, cwd=self.home,
                                  capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **popen)
            return Result(proc.returncode, proc.stdout, proc.stderr)
        return in_process(["-n", self.name, *args], env, self.home, timeout)

    def spawn(self, *args: str, kubeconfig: Path | None = None) -> subprocess.Popen:
        env = {**os.environ, **self._env(kubeconfig)}
        return subprocess.Popen([sys.executable, "-m", "dvdoctor", "-n", self.name, *args], env=env, cwd=self.home,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)

    def service_account_kubeconfig(self, account: str) -> Path:
        """A kubeconfig with the token the token controller made for `account` (Kubernetes 1.20 makes one)."""
        def token():
            for secret in self.api.list("Secret", self.name):
                ann = secret["metadata"].get("annotations") or {}
                if (secret.get("type") == "kubernetes.io/service-account-token"
                        and ann.get("kubernetes.io/service-account.name") == account and (secret.get("data") or {}).get("token")):
                    import base64
                    return base64.b64decode(secret["data"]["token"]).decode()
            return None
        value = self.api.wait(f"the token of service account {account}", token)
        return self.plane.kubeconfig(self.home / f"kubeconfig-{account}", value, self.name)

    def apply(self, objects: list[dict]) -> None:
        for obj in objects:
            namespaced = obj["kind"] not in ("PersistentVolume", "StorageClass", "ClusterRole", "ClusterRoleBinding", "Namespace")
            try:
                self.api.create(obj, self.name if namespaced else None)
            except Exception as exc:
                if "AlreadyExists" not in str(exc) or obj["kind"] != "StorageClass":
                    raise

    def events(self, name: str) -> list[dict]:
        return [e for e in self.api.list("Event", self.name) if e["involvedObject"].get("name") == name]


@pytest.fixture
def dv(control_plane, tmp_path, request) -> DvNamespace:
    """A fresh DV namespace, claims bound by the real PV binder; its volumes' reclaim policy from
    `@pytest.mark.reclaim("Delete")` (default Retain)."""
    marker = request.node.get_closest_marker("reclaim")
    reclaim = marker.args[0] if marker else "Retain"
    name = f"dv-{secrets.token_hex(4)}"
    api = control_plane.api()
    api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, None)
    home = tmp_path / "home"
    home.mkdir()
    ns = DvNamespace(name, control_plane, home, control_plane.kubeconfig(tmp_path / "kubeconfig", control_plane.admin_token, name))
    ns.apply(load_manifests(MANIFESTS / "dv-1.5.0.yaml", {"NS": name, "BAR_RECLAIM": reclaim}))
    api.wait("the PV binder to bind dv-pvc and dv-bar-pvc", lambda: all(
        (c.get("status") or {}).get("phase") == "Bound" for c in api.list("PersistentVolumeClaim", name)), timeout=60)
    api.wait("DV's pods to be created", lambda: len(api.list("Pod", name)) >= 8, timeout=60)
    # Nothing is deleted after the test: its namespace, volumes and grants are all named after it (no
    # other test sees them), and they go with the plane's etcd data when the run's real tests end.
    # Deleting a namespace makes the namespace controller list and delete every kind in it: about 0.4
    # CPU-second a test, more than many tests cost.
    return ns
