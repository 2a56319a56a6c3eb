"""The lab: a simulated DV 1.5.0 namespace on local disk, behind the same Cluster port as a cluster.

`create_lab(DIR)` builds a healthy namespace (DV's objects, real folders as volumes, one real
backup); `break_lab(DIR, ID)` switches on one of the runbook's failure modes; `LabCluster(DIR)`
is the port dvdoctor talks to; `destroy_lab(DIR)` stops its processes and removes it.
"""

from __future__ import annotations

from .cluster import LabCluster
from .create import churn_lab, create_lab, destroy_lab
from .faults import FAULTS, break_lab

__all__ = ["FAULTS", "LabCluster", "break_lab", "churn_lab", "create_lab", "destroy_lab"]
