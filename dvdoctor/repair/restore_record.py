"""The Patches that write and clear the record of a restore that failed part-way.

The record itself, and how it is read, are dvdoctor/facts/restore_record.py: checks read it, so it
sits with the facts; writing it is an action of a plan, so it sits here with the other actions.
"""

from __future__ import annotations

from ..core.names import RESTORE_INCOMPLETE_ANNOTATION
from ..facts.model import Facts
from ..facts.origin import engine_statefulset
from ..facts.restore_record import Incomplete, recorded
from .plan import Patch


def record_action(facts: Facts, record: Incomplete) -> Patch:
    sts = engine_statefulset(facts)
    return Patch("statefulsets", sts, {"metadata": {"annotations": {RESTORE_INCOMPLETE_ANNOTATION: record.to_json()}}},
                 f"record on statefulset/{sts} (annotation {RESTORE_INCOMPLETE_ANNOTATION}) that the restore of "
                 f"{record.backup} failed part-way")


def clear_action(facts: Facts) -> Patch | None:
    """Remove the record after a successful restore; None when there is none."""
    found = recorded(facts)
    if found is None:
        return None
    sts = engine_statefulset(facts)
    return Patch("statefulsets", sts, {"metadata": {"annotations": {RESTORE_INCOMPLETE_ANNOTATION: None}}},
                 f"remove the record of the failed restore of {found.backup} from statefulset/{sts}: "
                 "this restore succeeded")
