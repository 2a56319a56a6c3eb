"""One module per repair; installed as `dvdoctor.fixes`.

A module repairs the check of the same name (fixes/stale_bar_marker.py repairs `stale-bar-marker`):
it registers one planning function with `@fix`, which is handed the facts, the problems that check
found in them and the user's options, and returns a Plan. Its docstring says what the repair changes.
"""
