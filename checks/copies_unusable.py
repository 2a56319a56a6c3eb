"""Copies are configured, but their restic repository cannot be used.

Symptom: `dvdoctor copy` and `dvdoctor list --copies` end with one line: the repository's password
is wrong, the repository refused the credentials, cannot be reached, or is not there. Every
scheduled copy fails the same way, so the backups stay on dv-bar-pvc alone: if its volume is lost,
they are lost with it.
Cause: the password file (or the Secret's RESTIC_PASSWORD) changed or is wrong, the object
storage's keys expired, the repository moved or was never created (`dvdoctor copy --init`), or the
network between the cluster and the repository is closed.
Repair: manual: correct the Secret named by copies.secret (RESTIC_REPOSITORY, RESTIC_PASSWORD, the
backend's keys) or copies.repository and copies.password_file in dvdoctor.yaml, create the
repository with `dvdoctor copy --init` if it was never made, then `dvdoctor list --copies`.
"""

from dvdoctor.facts.model import SECTION_COPIES, Facts
from dvdoctor.verdicts.registry import NOW, Problem, check


@check(
    "The restic repository of copies can be used",
    applies=[NOW],
    needs=[SECTION_COPIES],
    tags=["copies"],
)
def run(facts: Facts):
    error = facts.section(SECTION_COPIES).get("error")
    if not error:
        return
    copies = facts.settings.copies
    where = (f"Secret {copies.secret} (copies.secret)" if copies is not None and copies.secret
             else "copies.repository and copies.password_file in dvdoctor.yaml")
    yield Problem(
        "copies are configured, but their repository cannot be used",
        (error, f"the repository and its password come from: {where}"),
        "restic repository",
    )
