"""How a lab pod really runs: its mount view, its uid, its process, and exec into it.

A pod's mounts become symlinks under `pods/<pod>/rootfs/` to the claim folders under `volumes/`,
and its command gets `DV_ROOT=<rootfs>`: the in-pod scripts prefix every absolute path with
`${DV_ROOT:-}` (empty in a real pod), so they see `/mnt/PV/bar` as the pod would. When the lab
runs as root the process drops to the pod's runAsUser (gid runAsGroup, else 0 as OpenShift does,
plus fsGroup and supplementalGroups), so permission errors are real EACCES; a non-root lab runs
pods as its own uid. Pods of an image that grants sudo (DV's init-volume image gives bigsql sudo)
keep the setuid/setgid capabilities, which is what the image's `sudo` stand-in uses.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..cluster.port import ExecResult
from ..core.errors import ClusterError
from .store import DIR_MODE, mkdirs, write_atomic

RUNNER = Path(__file__).with_name("runner.sh")
IMAGE_ROOT = Path(__file__).with_name("image")
BASE_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
#: Seconds a pod's runner may take to write its pid (a busy machine).
LAUNCH_SECONDS = 30
#: Exit code of a process killed by SIGKILL, as a container runtime reports it.
KILLED = 137


@dataclass(frozen=True)
class Identity:
    """Who a pod's process runs as."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    sudo: bool

    def wrap(self, argv: list[str]) -> list[str]:
        """argv, run as this identity when the lab runs as root (as is, otherwise)."""
        if os.geteuid() != 0 or self.uid == 0:
            return argv
        groups = ",".join(str(g) for g in self.groups)
        drop = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}",
                f"--groups={groups}" if groups else "--clear-groups"]
        if self.sudo:
            drop += ["--inh-caps=+setuid,+setgid", "--ambient-caps=+setuid,+setgid"]
        return [*drop, "--", *argv]


def identity(spec: dict, container: dict, default_uid: int, sudo: bool) -> Identity:
    """The container's securityContext over the pod's; no uid at all gets the namespace's first uid."""
    pod_sc = spec.get("securityContext") or {}
    c_sc = container.get("securityContext") or {}
    uid = c_sc.get("runAsUser", pod_sc.get("runAsUser", default_uid))
    gid = c_sc.get("runAsGroup", pod_sc.get("runAsGroup", 0))
    groups = [g for g in [pod_sc.get("fsGroup"), *(pod_sc.get("supplementalGroups") or [])] if g is not None]
    return Identity(int(uid), int(gid), tuple(int(g) for g in groups), sudo)


def image_bin(image_info: dict) -> Path | None:
    """The bin folder of a known image, put first on PATH (the lab's stand-in for the image's tools)."""
    rel = image_info.get("bin")
    return IMAGE_ROOT / rel if rel else None


def environment(container: dict, rootfs: Path, pod: str, image_info: dict) -> dict[str, str]:
    """The env a container gets: its own env[].value as is, DV_ROOT, and PATH with the image's bin first."""
    bin_dir = image_bin(image_info)
    env = {"PATH": f"{bin_dir}:{BASE_PATH}" if bin_dir else BASE_PATH, "HOME": "/", "HOSTNAME": pod,
           "LANG": "C.UTF-8", "DV_ROOT": str(rootfs)}
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
    return env


def build_rootfs(rootfs: Path, spec: dict, container: dict, volume_dir, owner: int | None) -> None:
    """Map each volumeMount onto the claim folders; a mount nested in another goes inside the parent's folder.

    `volume_dir(claim)` gives a claim's folder. Links are relative, so a lab folder can be moved.
    """
    mkdirs(rootfs)
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    placed: dict[str, Path] = {}
    for mount in sorted(container.get("volumeMounts") or [], key=lambda m: m["mountPath"].count("/")):
        path = mount["mountPath"].rstrip("/") or "/"
        volume = volumes.get(mount["name"]) or {}
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim:
            target = volume_dir(claim) / mount.get("subPath", "")
        else:
            target = rootfs.parent / "emptydirs" / mount["name"]
        if not target.exists():
            mkdirs(target)
            if owner is not None:
                os.chown(target, owner, 0)
        parent = max((p for p in placed if path.startswith(p + "/")), key=len, default=None)
        link = placed[parent] / path[len(parent) + 1:] if parent else rootfs / path.lstrip("/")
        placed[path] = target
        if link.is_symlink() or link.exists():
            continue
        mkdirs(link.parent)
        link.symlink_to(os.path.relpath(target, link.parent))


def write_file_as(path: Path, text: str, uid: int | None, mode: int = 0o644) -> None:
    """A file a pod's uid owns (when the lab can chown): what the pod itself would have written."""
    write_atomic(path, text, mode)
    if uid is not None and os.geteuid() == 0:
        os.chown(path, uid, 0)


def launch(pod_dir: Path, argv: list[str], env: dict[str, str], cwd: Path) -> None:
    """Start the pod's command detached (see runner.sh); returns once its pid is on disk.

    launch.json records what was started (argv, env, cwd), for whoever looks into a lab; the runner
    gets them as its own argv, env and nothing else. It leads a new session (the pod's process group,
    which deleting the pod kills; no terminal's signal reaches it). The pid is the runner's own,
    written by it once it runs the script: the lab never sees a pid whose process is still on its
    way there (the spawn may return before /proc shows the new program, whose command line `_alive`
    reads). The runner is this process's child, reaped at a later launch (`_reap`); one that ended
    unreaped is a zombie, which `_alive` counts as ended, and one still running when this process ends
    is the lab's (init reaps it).
    """
    write_atomic(pod_dir / "launch.json", json.dumps({"argv": argv, "env": env, "cwd": str(cwd)}, indent=2))
    (pod_dir / "log").touch()
    _reap()
    quiet = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0), (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
             (os.POSIX_SPAWN_DUP2, 1, 2)]
    try:
        _RUNNERS.append(os.posix_spawn("/bin/sh", ["/bin/sh", str(RUNNER), str(pod_dir), str(cwd), *argv], env,
                                       file_actions=quiet, setsid=True))
    except OSError as exc:
        raise ClusterError(f"lab pod {pod_dir.name}: its process could not start: {exc.strerror or exc}") from None
    deadline = time.monotonic() + LAUNCH_SECONDS
    while _pid(pod_dir) is None:  # the runner writes it in one write: empty, then whole
        if time.monotonic() > deadline:
            raise ClusterError(f"lab pod {pod_dir.name}: its process wrote no pid within {LAUNCH_SECONDS} s")
        time.sleep(0.002)


#: Runners this process started and has not reaped yet (pids).
_RUNNERS: list[int] = []


def _reap() -> None:
    """Collect the exit status of this process's runners that ended (a waitpid each, never blocking), so
    they do not linger as zombies in a long-lived process (a test worker starts hundreds)."""
    for pid in list(_RUNNERS):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            _RUNNERS.remove(pid)


def _pid(pod_dir: Path) -> int | None:
    try:
        return int((pod_dir / "pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _alive(pid: int, pod_dir: Path) -> bool:
    """The pid is our runner (not a reused pid) and not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z" and str(pod_dir).encode() in cmdline


def launched(pod_dir: Path) -> bool:
    return (pod_dir / "launch.json").exists()


def process_state(pod_dir: Path) -> tuple[str, int | None]:
    """("running", None) | ("exited", rc); a runner that vanished without an exit code was killed."""
    try:
        return "exited", int((pod_dir / "exitcode").read_text().strip())
    except (FileNotFoundError, ValueError):
        pass
    pid = _pid(pod_dir)
    if pid is not None and _alive(pid, pod_dir):
        return "running", None
    try:  # the runner may have finished between the two reads
        return "exited", int((pod_dir / "exitcode").read_text().strip())
    except (FileNotFoundError, ValueError):
        return "exited", KILLED


def _group(pgid: int) -> list[int]:
    """Live (not zombie) processes whose process group is `pgid`."""
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                out.append(int(proc.name))
    return out


def running_pids(pod_dir: Path) -> list[int]:
    """Every process in the pod's process group (the runner leads it)."""
    pid = _pid(pod_dir)
    return _group(pid) if pid is not None and _alive(pid, pod_dir) else []


def kill(pod_dir: Path, timeout: float = 2.0) -> None:
    """SIGKILL the pod's whole process group and wait until all of it is gone, as the kubelet does on delete."""
    pid = _pid(pod_dir)
    if pid is None or not _alive(pid, pod_dir):
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while _group(pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def wait_for_an_exit(pods: Path, timeout: float) -> None:
    """Block until one of the lab's running pod processes ends, or `timeout` seconds pass.

    A lab has no daemon: what a pod's end changes (its phase, its Job's state) shows at the next read.
    Waiting on the processes themselves (a pidfd each) instead of sleeping a fixed step lets that
    read come the moment a job's pod ends, so a lab job's wait costs what the job costs. Anything
    else that may change meanwhile (another process's writes, a deadline) is seen at the timeout.
    """
    fds: list[int] = []
    try:
        for pod_dir in pods.iterdir() if pods.is_dir() else []:
            pid = _pid(pod_dir)
            if pid is None or (pod_dir / "exitcode").exists() or not _alive(pid, pod_dir):
                continue
            try:
                fds.append(os.pidfd_open(pid))
            except ProcessLookupError:
                return  # it ended just now
            except (AttributeError, OSError):  # no pidfd on this kernel: a plain wait
                break
            if not _alive(pid, pod_dir):  # ended (or its pid was reused) between the two looks
                return
        else:
            if fds:
                poller = select.poll()
                for fd in fds:
                    poller.register(fd, select.POLLIN)
                poller.poll(max(0.0, timeout) * 1000)
                return
        time.sleep(max(0.0, timeout))
    finally:
        for fd in fds:
            os.close(fd)


def run_sync(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> ExecResult:
    """exec: run argv to completion in the pod's view and hand back rc and output."""
    try:
        proc = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout)
    except FileNotFoundError as exc:
        return ExecResult(126, "", f"OCI runtime exec failed: exec: {argv[0]!r}: {exc.strerror}\n")
    except subprocess.TimeoutExpired:
        raise ClusterError(f"exec of {argv[0]} did not finish within {timeout:.0f} s") from None
    return ExecResult(proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"))


def remove_pod_dir(pod_dir: Path) -> None:
    """A deleted pod's folder (log, rootfs links); the claim folders its links point at stay."""
    kill(pod_dir)
    shutil.rmtree(pod_dir, ignore_errors=True)


def ensure_pod_dir(pod_dir: Path) -> Path:
    mkdirs(pod_dir)
    pod_dir.chmod(DIR_MODE)
    return pod_dir
