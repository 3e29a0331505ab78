"""The host tools ``chat`` offers its agent: notes, kept in a JSON file of the host's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["NOTES_TOOLS", "NotesTools"]

NOTES_TOOLS: list[dict[str, Any]] = [
    {
        "name": "save_note",
        "description": "Save a note for the user.",
        "input_schema": {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
        },
    },
    {
        "name": "read_notes",
        "description": "Read every saved note.",
        "input_schema": {"type": "object", "properties": {}},
    },
]


class NotesTools:
    """Notes the agent can save and read, kept in a JSON file of the host's."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> list[str]:
        try:
            data = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return []
        return [str(x) for x in data] if isinstance(data, list) else []

    def save_note(self, arguments: dict[str, Any]) -> str:
        notes = [*self._load(), str(arguments.get("text", ""))]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(notes))
        return f"saved note #{len(notes)}: {notes[-1]}"

    def read_notes(self, arguments: dict[str, Any]) -> str:
        notes = self._load()
        return "\n".join(f"{i}. {n}" for i, n in enumerate(notes, 1)) or "no notes yet"

    def functions(self) -> dict[str, Any]:
        return {"save_note": self.save_note, "read_notes": self.read_notes}
