"""The backup, restore, list and prune flows: DV's own BAR jobs driven with the checks as a gate."""
