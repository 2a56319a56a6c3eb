"""What every command shares: where to connect, how loud to be, and how to open the Cluster port.

Opening is lazy: the kubernetes client is imported only when a command really talks to a cluster,
so `dvdoctor --help` and lab runs never pay for it.
"""

from __future__ import annotations

import os

from dataclasses import dataclass, field
from pathlib import Path

from ..cluster.port import Cluster
from ..core.errors import UsageError
from ..core.names import Settings, valid_name

@dataclass
class Options:
    verbose: bool = False
    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None
    lab: str | None = None
    #: --config; without it ./dvdoctor.yaml is used when present (see dvdoctor.cli.config).
    config: str | None = None
    _settings: Settings | None = field(default=None, repr=False)
    _cluster: Cluster | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        """The site's settings, read on first use, so `--help` never fails on a broken config file."""
        if self._settings is None:
            from .config import load

            self._settings = load(self.config)
        return self._settings

    @property
    def suppressions(self) -> tuple:
        """The findings the site accepted (dvdoctor.yaml), which every run of the checks is handed;
        none without a config file."""
        return getattr(self.settings, "suppressions", ())

    @property
    def source(self) -> str:
        return "lab" if self.lab else "cluster"

    def open_cluster(self) -> Cluster:
        """The port this run talks to, opened once and shared by every step of a command."""
        if self._cluster is None:
            self._cluster = self._open()
        return self._cluster

    def _open(self) -> Cluster:
        if self.namespace is not None:
            valid_name(self.namespace, "namespace")
        if self.lab:
            from ..lab import LabCluster

            path = Path(self.lab)
            if not (path / "lab.json").is_file():
                raise UsageError(f"{path} is not a dvdoctor lab (create one with: dvdoctor lab create {path})")
            if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
                raise UsageError(f"the lab {path} belongs to uid {path.stat().st_uid} and this user cannot change it: "
                                 "run dvdoctor as that user, or create a lab of your own")
            lab = LabCluster(path)
            if self.namespace is not None and self.namespace != lab.namespace:
                raise UsageError(f"-n {self.namespace}: the lab {path} simulates namespace {lab.namespace}; "
                                 f"drop -n or give -n {lab.namespace}")
            return lab
        from ..cluster.kube import connect

        return connect(self.kubeconfig, self.context, self.namespace)
