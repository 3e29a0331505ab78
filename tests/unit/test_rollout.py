"""Rollout reading on a session recorded from the real codex 0.163 (a turn with a shell call)."""

from __future__ import annotations

import shutil
from pathlib import Path

from plexum_openai_provider._codex.rollout import (
    RolloutLocator,
    read_records,
    tool_blocks,
    turn_usage,
)
from plexum_openai_provider.events import Usage

DATA = Path(__file__).parent.parent / "data"
RECORDED = DATA / "rollout-0.163-tool-turn.jsonl"
THREAD = "01a20aa9-1f0f-7e20-a261-459ebb6374ca"


def test_turn_usage_is_the_last_turn_token_usage() -> None:
    assert turn_usage(read_records(RECORDED)) == Usage(200, 0, 20, 0)


def test_tool_blocks_pair_calls_with_outputs_and_keep_calls_without_one(tmp_path: Path) -> None:
    [block] = tool_blocks(read_records(RECORDED))
    assert (block.call_id, block.name, block.namespace) == ("call_2", "exec_command", None)
    assert block.arguments == '{"cmd": "echo hi-from-shell"}'
    assert block.output is not None and "hi-from-shell" in block.output and not block.is_error
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(
        b"".join(
            line
            for line in RECORDED.read_bytes().splitlines(keepends=True)
            if b'"type":"function_call_output"' not in line
        )
    )
    [block] = tool_blocks(read_records(cut))
    assert block.call_id == "call_2" and block.output is None


def test_records_keep_offsets_and_raw_bytes() -> None:
    data = RECORDED.read_bytes()
    records = list(read_records(RECORDED))
    assert [r.data["ordinal"] for r in records] == list(range(len(records)))
    for record in records:
        assert data[record.offset : record.offset + len(record.raw) + 1] == record.raw + b"\n"
    tail = list(read_records(RECORDED, records[-3].offset))
    assert tail == records[-3:]


def test_a_partial_last_line_and_junk_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(RECORDED.read_bytes() + b"not json\n" + b'{"timestamp": "x", "ordi')
    assert len(list(read_records(path))) == len(list(read_records(RECORDED)))


def test_locator_finds_by_thread_id_and_caches(tmp_path: Path) -> None:
    folder = tmp_path / "sessions" / "2025" / "01" / "02"
    folder.mkdir(parents=True)
    target = folder / f"rollout-2025-01-02T10-00-00-{THREAD}.jsonl"
    shutil.copy(RECORDED, target)
    locator = RolloutLocator(tmp_path)
    assert locator.find(THREAD) == target
    assert locator.find("01a20aa9-0000-7e20-a261-459ebb6374ca") is None
    archived = tmp_path / "archived_sessions"
    archived.mkdir()
    moved = archived / target.name
    target.rename(moved)
    assert locator.find(THREAD) == moved  # the cached path is gone: searched again
