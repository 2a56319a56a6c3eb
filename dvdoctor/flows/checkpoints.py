"""Named steps of a backup or restore, where a test can make something happen at one exact moment.

The fault tests kill or signal a real dvdoctor process right after DV's side deployments are
scaled down, after DV's job is created, while it is watched, at postflight, and as an interrupted
backup's cleanup starts to stop DV's job, and check that
what is left is put back or repairable. They used to do it by replacing flow functions by name
from a string of Python, so renaming one would have left a test that interrupts nothing. Here
the flows announce each step themselves (`reached`); a test registers an action for a step by
its name (`at`), and an unknown name is an error, not a silent no-op. A run that registered
nothing (every real run) pays one dictionary lookup per step.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

#: In the order a backup passes them; a restore passes the last three (it scales nothing itself).
STEPS = ("scaled-down", "job-created", "job-running", "postflight")
#: Only an interrupted backup passes this one: its cleanup is about to stop DV's job.
STOPPING_JOB = "stopping-job"
#: copy, prune --copies and restore --from-copy pass this one each time the copy program is about to
#: start (its intent already audited); the program then runs on by itself if dvdoctor is killed.
COPY_PROGRAM = "copy-program"
KNOWN = (*STEPS, STOPPING_JOB, COPY_PROGRAM)

_actions: dict[str, list[Callable[[], None]]] = {}


def reached(step: str) -> None:
    """The flow is at `step`: run what was registered for it (normally nothing)."""
    if step not in KNOWN:
        raise ValueError(f"unknown flow step {step!r}; steps: {', '.join(KNOWN)}")
    for action in list(_actions.get(step, ())):
        action()


def on(step: str, action: Callable[[], None]) -> None:
    """Run `action` each time a flow reaches `step`, for the rest of this process."""
    if step not in KNOWN:
        raise ValueError(f"unknown flow step {step!r}; steps: {', '.join(KNOWN)}")
    _actions.setdefault(step, []).append(action)


@contextmanager
def at(step: str, action: Callable[[], None]) -> Iterator[None]:
    """`on(step, action)` for the length of a with-block."""
    on(step, action)
    try:
        yield
    finally:
        _actions[step].remove(action)
