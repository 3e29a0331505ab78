"""The record of what the agent's codex thread was given: ``delivered`` in the workspace's
records folder (:mod:`.records`: the plugin's, where no agent can write).

Which of the host's messages (since the agent's last answer) codex took, whether the turn that
took them ended without an answer, and which instructions the thread has: what
:func:`~.messages.plan_turn` needs so that a message is never given twice, even when a turn failed
or was cancelled after codex had its input and the host sends the same conversation again.

Written atomically, like the thread record (a temporary file, fsync, rename, fsync of the folder):
a crash leaves the old record or the new one. The record that closes a turn ("it answered") is
written without the fsyncs, which were most of the time from codex's end to the turn's result
(1.4 ms of 1.8 here): a crash or power cut that takes it back leaves the open record, as a crash
just before it was written does, and an open record gives codex nothing twice. Read distrustfully (the older layout's file, moved in
from the workspace, may be an unconfined agent's: a regular file only, bounded, and anything
malformed is no record at all, which at worst gives codex a message again rather than losing
one).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from .._io.files import NotRegularFile, atomic_write, read_small_regular_file

__all__ = ["DELIVERY_FILE", "Delivery", "load_delivery", "save_delivery"]

log = logging.getLogger(__name__)

DELIVERY_FILE = "delivered"
_READ_LIMIT = 64 * 1024
_MAX_KEPT = 1000  # digests of one segment kept (a host's burst is far smaller)


@dataclass(frozen=True)
class Delivery:
    thread_id: str
    boundary: str | None  # the digest of the agent's last answer the messages came after
    delivered: tuple[str, ...]  # the digests of the messages codex has, in order
    open: bool  # the turn that took them has not ended with an answer
    instructions: str | None  # the digest of the instructions the thread has

    def closed(self) -> Delivery:
        return Delivery(self.thread_id, self.boundary, self.delivered, False, self.instructions)


def load_delivery(records: Path) -> Delivery | None:
    """What ``records`` (a workspace's records folder) holds of the delivery, or None."""
    try:
        content = read_small_regular_file(records / DELIVERY_FILE, _READ_LIMIT)
    except (NotRegularFile, OSError):
        return None
    if content is None or content.truncated:
        return None
    try:
        data = json.loads(content.data)
        delivered = data["delivered"]
        record = Delivery(
            str(data["thread_id"]),
            data["boundary"] if isinstance(data["boundary"], str) else None,
            tuple(str(d) for d in delivered) if isinstance(delivered, list) else (),
            data["open"] is True,
            data["instructions"] if isinstance(data["instructions"], str) else None,
        )
    except (ValueError, KeyError, TypeError):
        log.warning("%s does not hold a delivery record; it is ignored", records / DELIVERY_FILE)
        return None
    return record


def save_delivery(records: Path, record: Delivery) -> None:
    data = {
        "thread_id": record.thread_id,
        "boundary": record.boundary,
        "delivered": list(record.delivered[:_MAX_KEPT]),
        "open": record.open,
        "instructions": record.instructions,
    }
    atomic_write(records / DELIVERY_FILE, json.dumps(data).encode() + b"\n", durable=record.open)
