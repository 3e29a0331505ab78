"""What codex's rollout records mean: which records are tool calls and outputs, and how an output
reads as text. Written once here; the block reader and the consume rewrite both use it.

A rollout line is ``{"timestamp", "ordinal", "type", "payload", "metadata"?}`` (codex 0.163+; 0.136
has no ordinals). The model's history is rebuilt from ``response_item`` records, among them the
calls and their outputs (codex 0.136-0.169)::

    {"type":"response_item","payload":{"type":"function_call","name":…,"namespace":…,
                                       "arguments":"{…}","call_id":"call_2"}}
    {"type":"response_item","payload":{"type":"function_call_output","call_id":"call_2",
                                       "output":"…" | [{"type":"input_text","text":"…"}]}}
    {"type":"response_item","payload":{"type":"custom_tool_call","name":"exec","input":"…",…}}
    {"type":"response_item","payload":{"type":"custom_tool_call_output","call_id":…,"output":…}}

codex 0.171 may give a response item an ``id_allocation``, after its other fields: how codex
derived the item's ``id`` (``{"prefix"?: str, "salt": str, "ordinal": int, "value": int,
"suffix"?: str}``; it reads the item back only while the allocation has that shape, and drops
the item from the model's history when it does not). It is not a record type: 0.171 has none
of that name, and skips a record of a type it does not know. Nothing here needs it, and the
consume rewrite keeps it as it is, with every field it does not change.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "CALL_FIELDS",
    "CONSUMED_ARGUMENTS",
    "OUTPUT_TYPES",
    "RESPONSE_ITEM",
    "TURN_END_EVENTS",
    "message_item",
    "output_text",
]

RESPONSE_ITEM = "response_item"
# A call's record type → the field holding what the model sent (arguments, or code mode's input).
CALL_FIELDS = {"function_call": "arguments", "custom_tool_call": "input"}
OUTPUT_TYPES = frozenset({"function_call_output", "custom_tool_call_output"})
# What a consumed call's arguments become (a consumed custom call's input becomes the marker).
CONSUMED_ARGUMENTS = "{}"
# ``event_msg`` payload types codex writes when a turn ends (completed, or aborted by interrupt).
TURN_END_EVENTS = frozenset({"task_complete", "turn_aborted"})


def output_text(output: Any) -> str:
    """A call output as text: codex records a string, or a list of ``input_text`` items."""
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "\n".join(
            str(part.get("text", ""))
            for part in output
            if isinstance(part, dict) and "text" in part
        )
    return json.dumps(output)


def message_item(role: str, text: str) -> dict[str, Any]:
    """A message of the model's history, as codex records it (``response_item``) and as
    ``thread/inject_items`` takes it (codex 0.163-0.171): a developer or user message's text is
    ``input_text``, an assistant's ``output_text``."""
    kind = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}
