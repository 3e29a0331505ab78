"""Rollout reading on sessions recorded from the real codex: 0.163 (a turn with a shell call),
0.171 (a code-mode turn with one exec call)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from plexum_openai_provider._codex.consume import append_response_items, rewrite_rollout
from plexum_openai_provider._codex.records import message_item
from plexum_openai_provider._codex.rollout import (
    RolloutLocator,
    read_records,
    tool_blocks,
    turn_usage,
)
from plexum_openai_provider.errors import SessionFormatError
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


CODE_MODE = DATA / "rollout-0.171-code-mode-turn.jsonl"  # codex 0.171, gpt-6.2-sol, one exec call
CODE_MODE_THREAD = "01a23e03-dece-7e42-b5f9-2fb363661d51"


def test_a_code_mode_call_is_one_exec_block() -> None:
    [block] = tool_blocks(read_records(CODE_MODE))
    assert (block.call_id, block.name, block.namespace) == ("call_js", "exec", "functions")
    assert "tools.mcp__plexum_host_cx__get_weather(" in block.arguments
    assert block.output is not None and "sunny" in block.output and not block.is_error


def test_consuming_a_code_mode_call_makes_its_input_and_output_the_marker(tmp_path: Path) -> None:
    path = tmp_path / CODE_MODE.name
    shutil.copy(CODE_MODE, path)
    before = path.read_bytes().splitlines(keepends=True)
    outcome = rewrite_rollout(path, CODE_MODE_THREAD, ["call_js"], "[used]")
    assert (outcome.consumed, outcome.rewritten) == (["call_js"], True)
    after = path.read_bytes().splitlines(keepends=True)
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    payloads = [json.loads(after[i])["payload"] for i in changed]
    assert [(p["type"], p.get("input", p.get("output"))) for p in payloads] == [
        ("custom_tool_call", "[used]"),
        ("custom_tool_call_output", "[used]"),
    ]
    [block] = tool_blocks(read_records(path))
    assert (block.arguments, block.output) == ("[used]", "[used]")
    again = rewrite_rollout(path, CODE_MODE_THREAD, ["call_js"], "[used]")
    assert (again.consumed, again.rewritten) == (["call_js"], False)


# codex 0.171 may give a response item an `id_allocation`: how codex derived the item's id. It
# wrote none in the sessions tried (plain, tool, code-mode, resumed, interrupted, compacted and
# forked turns); the shape is the one codex 0.171.0 reads back (its rollout reader names a
# missing `salt`, `ordinal` or `value`, and takes `prefix` and `suffix` as strings), where its
# serializer writes it: after the item's other fields.
ID_ALLOCATION = {"prefix": "ctco", "salt": "call_js", "ordinal": 3, "value": 1, "suffix": "x"}


def dumped(record: dict[str, object]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def test_an_items_id_allocation_is_kept_by_blocks_and_consume(tmp_path: Path) -> None:
    path = tmp_path / CODE_MODE.name
    lines = []
    for line in CODE_MODE.read_bytes().splitlines(keepends=True):
        record = json.loads(line)
        if record["type"] == "response_item" and record["payload"].get("call_id") == "call_js":
            record["payload"]["id_allocation"] = ID_ALLOCATION
            line = dumped(record)
        lines.append(line)
    path.write_bytes(b"".join(lines))
    assert tool_blocks(read_records(path)) == tool_blocks(read_records(CODE_MODE))
    outcome = rewrite_rollout(path, CODE_MODE_THREAD, ["call_js"], "[used]")
    assert (outcome.consumed, outcome.rewritten) == (["call_js"], True)
    after = [json.loads(line) for line in path.read_bytes().splitlines()]
    assert [r["ordinal"] for r in after] == list(range(len(lines)))
    items = [r["payload"] for r in after if r["payload"].get("id_allocation")]
    assert [(p["type"], p.get("input", p.get("output"))) for p in items] == [
        ("custom_tool_call", "[used]"),
        ("custom_tool_call_output", "[used]"),
    ]
    assert all(list(p.items())[-1] == ("id_allocation", ID_ALLOCATION) for p in items)


def test_a_record_of_a_type_the_plugin_does_not_know_is_passed_over(tmp_path: Path) -> None:
    """codex 0.171 skips a record whose type it does not know ("skipping unknown rollout line"),
    and so does the plugin: no block from it, copied byte for byte by a consume, and what is
    appended after it is numbered after it."""
    path = tmp_path / CODE_MODE.name
    lines = CODE_MODE.read_bytes().splitlines(keepends=True)
    last = json.loads(lines[-1])
    unknown = b'{"timestamp":"%s","ordinal":%d,"type":"a_later_record","payload":{"ordinal":7}}\n'
    extra = unknown % (last["timestamp"].encode(), last["ordinal"] + 1)
    path.write_bytes(b"".join(lines) + extra)
    assert tool_blocks(read_records(path)) == tool_blocks(read_records(CODE_MODE))
    append_response_items(path, CODE_MODE_THREAD, [message_item("developer", "later")])
    rewrite_rollout(path, CODE_MODE_THREAD, ["call_js"], "[used]")
    after = path.read_bytes().splitlines(keepends=True)
    assert after[len(lines)] == extra
    assert json.loads(after[-1])["ordinal"] == last["ordinal"] + 2


def test_only_a_records_own_ordinal_counts(tmp_path: Path) -> None:
    """A session whose records have no ordinal (codex's legacy history mode) is consumed even
    where a payload has an "ordinal" near the start of its line; a numbered session with one
    record whose own ordinal is missing is refused, whatever its payload holds."""
    path = tmp_path / CODE_MODE.name
    own = re.compile(rb'^(\{"timestamp":"[^"]*",)"ordinal":\d+,')
    lines = [own.sub(rb"\1", line) for line in CODE_MODE.read_bytes().splitlines(keepends=True)]
    early = b'{"timestamp":"2026-12-03T22:26:11.000Z","type":"event_msg","payload":{"ordinal":1}}\n'
    path.write_bytes(b"".join(lines) + early)
    outcome = rewrite_rollout(path, CODE_MODE_THREAD, ["call_js"], "[used]")
    assert outcome.consumed == ["call_js"]
    assert b'"ordinal":' not in path.read_bytes().replace(b'{"ordinal":1}', b"")
    numbered = CODE_MODE.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(numbered[:-1]) + own.sub(rb"\1", numbered[-1]) + early)
    before = path.read_bytes()
    with pytest.raises(SessionFormatError, match="some records have an ordinal and some"):
        rewrite_rollout(path, CODE_MODE_THREAD, ["call_js"], "[used]")
    assert path.read_bytes() == before


SUB_AGENT = DATA / "rollout-0.163-sub-agent.jsonl"  # codex 0.163 exec, gpt-6.1-sol's sub-agent
PARENT = "01a23e18-98d0-77d1-bd23-e039402c6b92"


def test_a_sub_agents_work_is_read_from_its_rollout(tmp_path: Path) -> None:
    """What codex exec does not report: the sub-agent's host tool call and answer, from its
    rollout (found by its parent thread, in today's day folder, written since the run began)."""
    import datetime as dt
    import time

    from plexum_openai_provider._codex.sub_agents import (
        SubAgentBlock,
        SubAgentMessage,
        sub_agent_work,
    )

    today = dt.datetime.now(dt.UTC).date()
    folder = tmp_path / "sessions" / f"{today:%Y}" / f"{today:%m}" / f"{today:%d}"
    folder.mkdir(parents=True)
    shutil.copy(SUB_AGENT, folder / SUB_AGENT.name.replace("0.163-sub-agent", "x"))
    work = sub_agent_work(tmp_path, PARENT, since=0)
    assert [type(w) for w in work] == [SubAgentBlock, SubAgentMessage]
    block, message = work
    assert isinstance(block, SubAgentBlock) and isinstance(message, SubAgentMessage)
    assert (block.sub_agent, block.call_id, block.name, block.namespace) == (
        "/root/helper",
        "child_call",
        "get_weather",
        "mcp__plexum_host_cx",
    )
    assert block.output.endswith("sunny in Oslo") and not block.is_error
    assert (message.sub_agent, message.text) == ("/root/helper", "CHILD-RESULT")
    assert sub_agent_work(tmp_path, "another-thread", since=0) == []
    assert sub_agent_work(tmp_path, PARENT, since=time.time() + 60) == []  # older than the run
