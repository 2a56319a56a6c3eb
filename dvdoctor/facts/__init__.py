"""Facts: what a run collects from a namespace once, and what it reads from them (backups, trust, origin)."""
