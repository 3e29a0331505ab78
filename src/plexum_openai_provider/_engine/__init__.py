"""How codex is driven: the seam a turn talks to, and its engines (a ``codex exec`` per turn; one
shared ``codex app-server``)."""
