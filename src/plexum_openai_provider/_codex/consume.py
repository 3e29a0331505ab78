"""The consume mirror: rewrite tool calls in a rollout so that a resumed codex no longer sends the
model their heavy arguments and outputs.

For every ``response_item`` whose ``call_id`` is consumed, a call's ``arguments`` become ``"{}"``
(still the JSON object the tool's schema asks for), a custom call's ``input`` (code mode's
JavaScript, free text) and an output's ``output`` become the marker. Every other line is copied
byte for byte (ordinals included: codex refuses a file whose last record has none). codex resumes
by rebuilding the model's history from the ``response_item`` lines, so this is what the model sees.

The file is streamed (memory does not grow with it) into a temporary file in the same folder,
fsynced and renamed over the original: a kill at any instant leaves the old file or the new one.

The format is "best effort, not a contract" to codex's maintainers, so before anything is written
the file is checked against what this code understands (see :class:`SessionFormatError`); a file
it does not understand is left untouched.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .._io.files import fsync_dir, sweep_temporaries, temporary_path
from ..errors import SessionFormatError
from .records import CALL_FIELDS, CONSUMED_ARGUMENTS, OUTPUT_TYPES, RESPONSE_ITEM
from .rollout import open_rollout

__all__ = ["ConsumeOutcome", "append_response_items", "rewrite_rollout"]

_CALL_ID = re.compile(rb'"call_id":"([^"\\]+)"')
_RECORD_START = b'{"timestamp":"'
_ORDINAL = b'"ordinal":'


@dataclass(frozen=True)
class ConsumeOutcome:
    consumed: list[str]
    not_found: list[str]
    rewritten: bool  # False when every consumed id was consumed already (nothing written)


class _Guard:
    """What the rewrite checks as it streams; raises SessionFormatError naming the writer."""

    def __init__(self, path: Path, thread_id: str) -> None:
        self.path = path
        self.thread_id = thread_id
        self.version = "an unknown codex version"
        # codex 0.163+ numbers every record; 0.136 numbers none. Either is fine, a mix is not.
        self.ordinals = True

    def fail(self, why: str) -> SessionFormatError:
        return SessionFormatError(
            f"cannot consume in {self.path.name}: {why}. The session was written by codex"
            f" {self.version}, whose format this plugin does not understand; it was left untouched",
            path=str(self.path),
        )

    def session_meta(self, line: bytes) -> None:
        try:
            record = json.loads(line)
        except ValueError:
            raise self.fail("its first line is not JSON") from None
        payload = record.get("payload") if isinstance(record, dict) else None
        if not isinstance(payload, dict) or record.get("type") != "session_meta":
            raise self.fail("its first record is not session_meta")
        version = payload.get("cli_version")
        if isinstance(version, str):
            self.version = version
        if payload.get("id") != self.thread_id:
            raise self.fail(f"its session_meta names thread {payload.get('id')!r}")
        self.ordinals = isinstance(record.get("ordinal"), int)
        self.record(line)

    def record(self, line: bytes) -> None:
        # A cheap structural check of every line: codex writes `{"timestamp":"…","ordinal":N,…}`.
        if not line.endswith(b"\n"):
            raise self.fail("its last line is incomplete (is a codex still writing it?)")
        if not line.startswith(_RECORD_START):
            raise self.fail("a record does not start with its timestamp")
        # The record's own ordinal is the key right after its timestamp; an "ordinal" further on
        # is a payload's (a response item's id_allocation has one, codex 0.171).
        end = line.find(b'",', len(_RECORD_START))
        if (end > 0 and line.startswith(_ORDINAL, end + 2)) != self.ordinals:
            raise self.fail("some records have an ordinal and some have none")

    def last(self, line: bytes) -> int | None:
        """The last record's ordinal (None where codex numbers none)."""
        try:
            record = json.loads(line)
        except ValueError:
            raise self.fail("its last line is not JSON") from None
        if not isinstance(record, dict):
            raise self.fail("its last record is not an object")
        ordinal = record.get("ordinal")
        if self.ordinals and not isinstance(ordinal, int):
            raise self.fail("its last record has no integer ordinal")
        return ordinal if self.ordinals else None


def _record(item: dict[str, Any], ordinal: int | None) -> bytes:
    """A ``response_item`` record as codex writes one (codex 0.163-0.171)."""
    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    record: dict[str, Any] = {"timestamp": now}
    if ordinal is not None:
        record["ordinal"] = ordinal
    record.update({"type": RESPONSE_ITEM, "payload": item})
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def _consume_line(line: bytes, marker: str, guard: _Guard) -> tuple[bytes, str | None]:
    """(the line to write, the consumed call id or None) for a line that names a target id."""
    try:
        record = json.loads(line)
    except ValueError:
        raise guard.fail("a record with a call_id is not JSON") from None
    payload = record.get("payload") if isinstance(record, dict) else None
    if record.get("type") != RESPONSE_ITEM or not isinstance(payload, dict):
        return line, None
    kind = payload.get("type")
    call_id = payload.get("call_id")
    if kind in CALL_FIELDS:
        field = CALL_FIELDS[kind]
        if not isinstance(payload.get(field), str):
            raise guard.fail(f"a {kind} has a {field} that is not a string")
        consumed = CONSUMED_ARGUMENTS if field == "arguments" else marker
        if payload[field] in (consumed, CONSUMED_ARGUMENTS):  # "{}": consumed before, as such
            return line, call_id
        payload[field] = consumed
    elif kind in OUTPUT_TYPES:
        output = payload.get("output")
        if not isinstance(output, (str, list)) or (
            isinstance(output, list) and not all(isinstance(p, dict) for p in output)
        ):
            raise guard.fail(f"a {kind} has an output that is neither text nor a list of items")
        if output == marker:
            return line, call_id
        payload["output"] = marker
    else:
        return line, None
    dumped = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    return dumped.encode("utf-8") + b"\n", call_id


def append_response_items(path: Path, thread_id: str, items: Iterable[dict[str, Any]]) -> None:
    """Add ``items`` (model history items: a developer message, say) at the end of the rollout,
    as ``response_item`` records numbered after the last one: a resumed codex then sends the model
    its history with them (codex exec has no ``thread/inject_items``). Through the same
    crash-safe rewrite as a consume. Hold codex's writer lock around this."""
    rewrite_rollout(path, thread_id, (), "", append=tuple(items))


def rewrite_rollout(
    path: Path,
    thread_id: str,
    block_ids: Iterable[str],
    marker: str,
    *,
    append: tuple[dict[str, Any], ...] = (),
) -> ConsumeOutcome:
    """Consume ``block_ids`` in the rollout at ``path`` (and add ``append`` at its end). Hold
    codex's writer lock around this.

    First removes what a rewrite killed mid-way left beside the file (a full-size temporary)."""
    sweep_temporaries(path.parent, path.name)
    order = list(dict.fromkeys(block_ids))
    targets = set(order)
    found: set[str] = set()
    changed = False
    guard = _Guard(path, thread_id)
    tmp = temporary_path(path)
    try:
        with open_rollout(path) as src, open(tmp, "wb") as raw_out:
            with _writer(path, raw_out) as out:
                first = src.readline()
                guard.session_meta(first)
                out.write(first)
                last = first
                for line in src:
                    guard.record(line)
                    if b'"call_id":"' in line and any(
                        m.decode() in targets for m in _CALL_ID.findall(line)
                    ):
                        new, call_id = _consume_line(line, marker, guard)
                        if call_id in targets:
                            found.add(call_id)
                            changed = changed or new != line
                            line = new
                    out.write(line)
                    last = line
                ordinal = guard.last(last)
                for item in append:
                    out.write(_record(item, None if ordinal is None else ordinal + 1))
                    ordinal = None if ordinal is None else ordinal + 1
                    changed = True
            raw_out.flush()
            os.fsync(raw_out.fileno())
        if changed:
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)
            os.replace(tmp, path)
            fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return ConsumeOutcome(
        consumed=[i for i in order if i in found],
        not_found=[i for i in order if i not in found],
        rewritten=changed,
    )


@contextlib.contextmanager
def _writer(path: Path, raw: BinaryIO) -> Any:
    if not path.name.endswith(".zst"):
        yield raw
        return
    import zstandard

    with zstandard.ZstdCompressor().stream_writer(raw, closefd=False) as z:
        yield z
