"""Everything that knows the codex CLI: its command line, process, JSONL events and session files."""
