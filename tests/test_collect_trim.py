"""What collect keeps of an object: not the bulk nobody reads, and never by changing the listing's object."""

from __future__ import annotations

import copy

from dvdoctor.facts.collect import LAST_APPLIED, _trim


def test_managed_fields_and_last_applied_are_dropped_and_the_listed_object_is_unchanged():
    listed = {
        "kind": "Pod",
        "metadata": {"name": "p", "managedFields": [{"manager": "kubectl"}],
                     "annotations": {LAST_APPLIED: '{"big": 1}', "keep": "me"}},
        "spec": {"containers": [{"name": "c"}]},
    }
    before = copy.deepcopy(listed)
    kept = _trim(listed)
    assert kept["metadata"] == {"name": "p", "annotations": {"keep": "me"}}
    assert kept["spec"] == before["spec"]
    assert listed == before  # the listing's object: its metadata and annotations were copied, not changed


def test_objects_without_metadata_or_annotations_pass_as_they_are():
    for obj in ({"kind": "X"}, {"kind": "X", "metadata": {}}, {"kind": "X", "metadata": {"annotations": None}}):
        assert _trim(obj) == obj
