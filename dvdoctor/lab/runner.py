"""Run one lab pod's container command, detached, and leave its outcome on disk.

Started as `python runner.py PODDIR` (by file path, stdlib only, so it starts fast and needs no
package import). It forks once and the parent exits, so the runner is nobody's child and no
long-lived dvdoctor process collects zombies; the grandchild writes its pid, leads its own session
(deleting the pod kills that whole process group), runs the argv from PODDIR/launch.json with
stdout and stderr appended to PODDIR/log, and writes the exit code to PODDIR/exitcode. A pod whose
runner died without an exit code was killed (job deletion, deadline): the lab reads it as 137.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def _write_atomic(path: Path, text: str) -> None:
    """dvdoctor.core.files.write_atomic's way (mkstemp in the folder, then rename), in the stdlib only:
    this file runs by its path, before (and without) importing the package."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fh.fileno(), 0o644)
        fh.write(text)
    os.replace(tmp, path)


def main(pod_dir: Path) -> int:
    launch = json.loads((pod_dir / "launch.json").read_text(encoding="utf-8"))
    child = os.fork()
    if child > 0:
        # the lab waits for this parent only: the pid is on disk before it returns, or a busy machine
        # lets the lab look for the pod's process first, find none, and call the pod killed (137)
        _write_atomic(pod_dir / "pid", f"{child}\n")
        return 0  # the child below runs on, reparented
    os.setsid()
    with open(pod_dir / "log", "ab", buffering=0) as log, open(os.devnull, "rb") as stdin:
        try:
            rc = subprocess.call(launch["argv"], env=launch["env"], cwd=launch["cwd"],
                                 stdin=stdin, stdout=log, stderr=subprocess.STDOUT)
        except OSError as exc:  # the command does not exist: like a container's exec failure
            log.write(f"exec {launch['argv'][0]}: {exc.strerror}\n".encode())
            rc = 127
    _write_atomic(pod_dir / "exitcode", f"{rc if rc >= 0 else 128 - rc}\n")
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
