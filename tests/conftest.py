"""Fixtures every test folder shares; a module that needs another shape overrides one by its name.

- `golden_lab`: the session's healthy lab, made once per session (per xdist worker) and only ever
  copied (tests/labs.py), since creating one runs a real backup job.
- `api`, `kubeconfig`, `cluster`: an empty fake API server for namespace cpd30 (tests/fakeapi.py),
  a kubeconfig naming it, and dvdoctor's real Kubernetes adapter connected through it with a short
  retry backoff. Modules that want a loaded namespace override `api` (tests/test_rbac.py's holds a
  healthy one whose Jobs end); `kubeconfig` and `cluster` follow.
- `root`: a pod's root folder every uid can traverse, for the in-pod scripts run for real.
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path
from typing import Iterator

import pytest

import builders as b
from dvdoctor.cluster.kube import KubeCluster, connect
from dvdoctor.lab import create_lab

from fakeapi import FakeApi
from labs import remove_lab, traversable_dir


# A suite started in the background by a non-interactive shell (`pytest &`) inherits SIGINT
# ignored, and an ignored signal stays ignored in every program it starts: the Ctrl-C tests would
# then interrupt nothing. With a handler here instead, the programs the tests start get the default.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def golden_lab() -> Iterator[Path]:
    """The session's healthy lab (one complete backup): never changed, only copied (labs.copy_lab)."""
    base = traversable_dir()
    create_lab(base / "lab")
    yield base / "lab"
    remove_lab(base)


@pytest.fixture
def api() -> Iterator[FakeApi]:
    """An empty fake API server for namespace cpd30, stopped after the test."""
    fake = FakeApi(namespaces=(b.NS,)).start()
    yield fake
    fake.stop()


@pytest.fixture
def kubeconfig(api: FakeApi, tmp_path: Path) -> Path:
    """A kubeconfig whose one context is `api`, in namespace cpd30."""
    return api.kubeconfig(tmp_path / "config", namespace=b.NS)


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
