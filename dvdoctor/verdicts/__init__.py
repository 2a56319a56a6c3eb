"""The frame checks register with: a check, its problems, the verdict of a run."""
