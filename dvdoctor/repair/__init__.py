"""Repairs as plans: the typed actions, the executor and its audit log, the owner and deletion rules, the fix frame."""
