"""`lab status`: what is in a lab right now, read from its folder (objects, volumes, backups, processes).

Reads through LabCluster, so job and pod states are reconciled first and match what dvdoctor sees.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..cluster import k8s
from ..core.units import human_bytes, is_timestamp
from . import runtime
from .cluster import LabCluster
from .contents import NAMES
from .bar import claim_capacity, du


def _state(kind: str, obj: dict) -> str:
    st = obj.get("status") or {}
    if kind == "pods":
        extra = k8s.waiting_reasons(obj) or ([k8s.pod_unschedulable(obj)] if k8s.pod_unschedulable(obj) else [])
        ready = " Ready" if k8s.pod_ready(obj) else ""
        restarts = f" restarts {k8s.restarts(obj)}" if k8s.restarts(obj) else ""
        return f"{k8s.pod_phase(obj)}{ready}{restarts}" + (f" ({', '.join(extra)})" if extra else "")
    if kind == "jobs":
        state = k8s.job_state(obj)
        return state + (f" ({k8s.job_failure(obj)})" if state == "failed" else "")
    if kind in ("deployments", "statefulsets"):
        return f"replicas {k8s.spec_replicas(obj)}, ready {k8s.ready_replicas(obj)}"
    if kind == "persistentvolumeclaims":
        cap = (st.get("capacity") or {}).get("storage", "-")
        return f"{st.get('phase', 'Unknown')} {cap} ({(obj.get('spec') or {}).get('storageClassName', '')})"
    if kind == "persistentvolumes":
        spec = obj.get("spec") or {}
        return (f"{st.get('phase', '')} {spec.get('capacity', {}).get('storage', '')} "
                f"reclaim {spec.get('persistentVolumeReclaimPolicy', '')}")
    if kind == "storageclasses":
        return f"allowVolumeExpansion {bool(obj.get('allowVolumeExpansion'))}"
    return ""


def _backups(bar: Path) -> tuple[list[dict], str | None]:
    if not bar.is_dir() or not os.access(bar, os.R_OK | os.X_OK):
        return [], None
    items = []
    for folder in sorted(p for p in bar.iterdir() if p.is_dir() and is_timestamp(p.name)):
        files = {f.name: f.stat().st_size for f in folder.iterdir() if f.is_file()}
        items.append({"timestamp": folder.name, "bytes": du(folder), "files": files,
                      "complete": files.get(NAMES.combined_tarball, 0) > 0})
    link = bar / NAMES.symlink
    return items, (os.readlink(link) if link.is_symlink() else None)


def overview(path: Path | str) -> dict:
    """Everything `lab status` shows, as JSON-able data."""
    lab = LabCluster(path, admin=True)
    store = lab.store
    meta = store.meta()
    objects = {kind: [{"name": k8s.name(o), "state": _state(kind, o)} for o in lab.list(kind)]
               for kind in ("statefulsets", "deployments", "jobs", "pods", "persistentvolumeclaims",
                            "persistentvolumes", "storageclasses", "serviceaccounts")}
    volumes = []
    for folder in sorted((store.root / "volumes").iterdir()):
        volumes.append({"claim": folder.name, "path": str(folder), "bytes": du(folder),
                        "capacity": claim_capacity(store, folder.name)})
    released = store.root / "released"
    for folder in sorted(released.iterdir()) if released.is_dir() else []:  # data of kept (Released) volumes
        pv = store.read("persistentvolumes", folder.name)
        ref = ((pv or {}).get("spec") or {}).get("claimRef") or {}
        volumes.append({"claim": f"({ref.get('name', '?')}, deleted)", "path": str(folder), "bytes": du(folder),
                        "capacity": ((pv or {}).get("spec") or {}).get("capacity", {}).get("storage"),
                        "volume": folder.name, "phase": ((pv or {}).get("status") or {}).get("phase", "gone")})
    backups, link = _backups(store.volume_dir(NAMES.bar_pvc) / "1.5.0")
    markers_dir = store.volume_dir(NAMES.data_pvc) / "marker_files"
    markers = sorted(p.name for p in markers_dir.iterdir()) if markers_dir.is_dir() else []
    processes = []
    for pod_dir in sorted((store.root / "pods").iterdir()):
        for pid in runtime.running_pids(pod_dir):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
            except OSError:
                continue
            processes.append({"pod": pod_dir.name, "pid": pid, "argv": [a.decode("utf-8", "replace") for a in argv]})
    return {"path": str(store.root), "namespace": meta["namespace"], "created": meta["created"],
            "breaks": meta.get("breaks", []), "settings": meta.get("settings", {}), "objects": objects,
            "volumes": volumes, "backups": backups, "restore_point": link, "markers": markers,
            "processes": processes}


def render(view: dict) -> str:
    """The overview as text for a terminal."""
    lines = [f"lab {view['path']}  namespace {view['namespace']}  created {view['created']}",
             f"faults switched on: {', '.join(view['breaks']) or 'none'}", ""]
    for kind, items in view["objects"].items():
        lines.append(f"{kind}:")
        lines += [f"  {o['name']:44} {o['state']}" for o in items] or ["  (none)"]
    lines += ["", "volumes:"]
    lines += [f"  {v['claim']:20} {human_bytes(v['bytes']):>10} of {v['capacity'] or '?'}   {v['path']}"
              + (f"   (volume {v['volume']}, {v['phase']})" if v.get("volume") else "")
              for v in view["volumes"]]
    lines += ["", f"backups on {NAMES.bar_mount} (restore point -> {view['restore_point'] or 'none'}):"]
    lines += [f"  {b['timestamp']}  {human_bytes(b['bytes']):>10}  {'complete' if b['complete'] else 'INCOMPLETE'}  "
              f"{', '.join(sorted(b['files']))}" for b in view["backups"]] or ["  (none readable)"]
    lines += ["", f"markers in {NAMES.marker_dir}: {', '.join(view['markers']) or 'none'}", "", "running processes:"]
    lines += [f"  {p['pod']:36} pid {p['pid']:<7} {' '.join(p['argv'])[:80]}" for p in view["processes"]] or ["  (none)"]
    return "\n".join(lines)
