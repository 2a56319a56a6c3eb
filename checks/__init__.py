"""One module per known DV backup/restore failure mode; installed as `dvdoctor.checks`.

Each module registers one check with `@check(...)` and its docstring is the check's runbook text:
Symptom, Cause, Repair. Checks are pure functions of the facts.
"""
