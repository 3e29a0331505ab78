from __future__ import annotations

import asyncio

from plexum_openai_provider._io.framing import LineFramer, OversizeLine, read_lines


def test_lines_split_across_chunks_are_joined() -> None:
    framer = LineFramer()
    assert framer.feed(b'{"a":') == []
    assert framer.feed(b'1}\n{"b"') == [b'{"a":1}']
    assert framer.feed(b":2}\n\n") == [b'{"b":2}', b""]
    assert framer.flush() is None


def test_unterminated_last_line_is_flushed() -> None:
    framer = LineFramer()
    assert framer.feed(b"one\ntwo") == [b"one"]
    assert framer.flush() == b"two"
    assert framer.flush() is None


def test_a_line_over_the_limit_is_replaced_and_the_next_line_survives() -> None:
    framer = LineFramer(max_line=10)
    out = framer.feed(b"x" * 8) + framer.feed(b"x" * 8 + b"\nok\n")
    assert out == [OversizeLine(16), b"ok"]


def test_crlf_is_kept_for_the_parser() -> None:
    assert LineFramer().feed(b"a\r\n") == [b"a\r"]


async def test_read_lines_handles_a_16_mib_line() -> None:
    reader = asyncio.StreamReader(limit=1024)
    big = b"y" * (16 * 1024 * 1024)
    reader.feed_data(big + b"\nlast")
    reader.feed_eof()
    lines = [line async for line in read_lines(reader)]
    assert lines == [big, b"last"]
