"""What this package knows of the codex CLI: the binary, its command lines, its processes, its
exec JSONL and app-server messages, its session files (rollouts) and its writer lock."""
