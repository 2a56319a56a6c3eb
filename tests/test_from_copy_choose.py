"""Which copy `restore --from-copy` takes: a backup timestamp, restic's short id, or the full id or any
prefix of it of 8 hex characters or more; a prefix naming two copies is refused."""

from __future__ import annotations

import pytest

import builders as b
from dvdoctor.copies.restic import Snapshot
from dvdoctor.core.errors import UsageError
from dvdoctor.facts.model import Facts
from dvdoctor.flows.from_copy import Wanted, choose

OLDER = "2021-01-21-19-27-31"
FULL = "4f3c2a1b9d8e7f60" + "a" * 48
TWIN = "4f3c2a1b9d8e7f61" + "b" * 48  # restic's short ids of the two are the same 8 characters


def _copies() -> list[dict]:
    return [{**b.copy_of(OLDER, FULL[:8]), "id": FULL}, {**b.copy_of("2021-01-20-19-27-31", "0c0ffee0"),
                                                         "id": "0c0ffee0" + "c" * 56}]


@pytest.mark.parametrize("wanted", [OLDER, FULL[:8], FULL, FULL[:12], FULL[:63]])
def test_a_copy_is_named_by_its_timestamp_short_id_full_id_or_a_prefix(wanted):
    assert choose(Facts(b.healthy()), _copies(), Wanted(wanted))["backup"] == OLDER


@pytest.mark.parametrize("wanted", [FULL[:7], FULL[:12] + "0", "4f3c2a1b" + "f" * 56, FULL.upper()])
def test_an_id_that_is_no_prefix_of_a_copys_names_none(wanted):
    with pytest.raises(UsageError, match="no complete copy"):
        choose(Facts(b.healthy()), _copies(), Wanted(wanted))


def test_a_prefix_naming_two_copies_is_refused():
    twins = _copies() + [{**b.copy_of("2021-01-19-19-27-31", TWIN[:8]), "id": TWIN}]
    with pytest.raises(UsageError, match="names 2 copies"):
        choose(Facts(b.healthy()), twins, Wanted(FULL[:12]))
    assert choose(Facts(b.healthy()), twins, Wanted(FULL[:16]))["backup"] == OLDER


def test_restics_full_id_is_kept_beside_its_short_one():
    snap = Snapshot.from_json({"id": FULL, "short_id": FULL[:8], "time": "t", "tags": ["backup=" + OLDER]})
    assert snap.to_json()["snapshot"] == FULL[:8] and snap.to_json()["id"] == FULL
