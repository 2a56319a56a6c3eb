"""Helpers every layer may use: errors, names and settings, words, bounded reading, files, redaction."""
