"""Generic I/O: line framing of byte streams, crash-safe and distrustful file access.

Knows nothing of codex, of Plexum or of the rest of this package.
"""
