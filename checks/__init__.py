"""One module per known DV backup/restore failure mode; installed as `dvdoctor.checks`.

Each module registers one check with `@check(...)`; the module's name is the check's id
(stale_bar_marker.py is `stale-bar-marker`) and its docstring is the check's runbook text: Symptom,
Cause, Repair. A fixes/ module of the same name is its repair. Checks are pure functions of the facts.
"""
