"""Small facts for plan tests that need no cluster."""

from dvdoctor.facts.model import Facts


def minimal_facts(**sections) -> Facts:
    data = {
        "schema": "dvdoctor/facts/v1",
        "collected_at": "2021-01-23T08:00:00Z",
        "namespace": "cpd30",
        "source": {"kind": "bundle"},
        "objects": {},
        "skipped": {},
        **sections,
    }
    return Facts(data)
