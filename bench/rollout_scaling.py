"""Rollout scaling: block extraction after one new turn, and consume's rewrite, on sessions of
1 MB, 50 MB and 200 MB. Extraction must stay flat (only the turn's appended part is read);
consume streams, so its peak memory must not grow with the file.

    python bench/rollout_scaling.py [--sizes 1 50 200]

The sessions are a real codex 0.163 rollout (tests/data) grown with real tool-call pairs and
token_count events, ordinals numbered again, then one real turn appended.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import machine, median

from plexum_openai_provider._codex.rollout import read_records, tool_blocks

RECORDED = Path(__file__).parent.parent / "tests" / "data" / "rollout-0.163-tool-turn.jsonl"
THREAD = "01a20aa9-1f0f-7e20-a261-459ebb6374ca"

# VmHWM (peak resident set) starts afresh at exec, unlike ru_maxrss, which keeps the forking
# parent's figure on Linux.
REWRITE = """
import sys, time
from pathlib import Path
from plexum_openai_provider._codex.consume import rewrite_rollout
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
base = hwm()
start = time.perf_counter()
out = rewrite_rollout(Path(sys.argv[1]), sys.argv[2], sys.argv[3:], "...(tool called)")
elapsed = time.perf_counter() - start
print(elapsed, base, hwm(), len(out.consumed))
"""


def build(path: Path, megabytes: int) -> tuple[int, list[str]]:
    """Write a session of about ``megabytes`` MB; return the offset where the last turn begins
    and the call ids of the history (the consume targets)."""
    lines = RECORDED.read_bytes().splitlines(keepends=True)
    head, turn = (
        lines[:7],
        lines[7:],
    )  # session start; one whole turn (user message → task_complete)
    call = next(line for line in turn if b'"type":"function_call"' in line)
    output = next(line for line in turn if b'"type":"function_call_output"' in line)
    count = next(line for line in turn if b'"type":"token_count"' in line)
    filler = b"x" * 4000
    history: list[bytes] = []
    ids = []
    size = sum(map(len, head))
    n = 0
    while size < megabytes * 1_000_000:
        cid = f"call_hist_{n}".encode()
        pair = [
            call.replace(b"call_2", cid),
            output.replace(b"call_2", cid).replace(b"hi-from-shell", filler),
            count,
        ]
        history += pair
        size += sum(map(len, pair))
        if n % 50 == 0:
            ids.append(cid.decode())
        n += 1
    body = head + history
    offset_lines = len(body)
    body += turn
    out = [
        re.sub(rb'"ordinal":\d+', b'"ordinal":%d' % i, line, count=1) for i, line in enumerate(body)
    ]
    path.write_bytes(b"".join(out))
    return sum(map(len, out[:offset_lines])), ids[:200]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="*", default=[1, 50, 200])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="plexum-rollout-") as tmp:
        for mb in args.sizes:
            path = Path(tmp) / f"rollout-2026-01-01T00-00-00-{THREAD}.jsonl"
            offset, ids = build(path, mb)
            size = path.stat().st_size
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                blocks = tool_blocks(read_records(path, offset))
                times.append(time.perf_counter() - start)
            assert [b.call_id for b in blocks] == ["call_2"], blocks
            start = time.perf_counter()
            everything = tool_blocks(read_records(path, 0))
            whole = time.perf_counter() - start
            done = subprocess.run(
                [sys.executable, "-c", REWRITE, str(path), THREAD, *ids],
                capture_output=True,
                text=True,
                check=True,
            )
            elapsed, base, peak, consumed = done.stdout.split()
            assert int(consumed) == len(ids)
            json.loads(path.read_bytes().splitlines()[-1])  # still a whole file
            rows.append(
                (size, median(times), whole, len(everything), float(elapsed), int(base), int(peak))
            )
            path.unlink()
    print(f"machine: {machine()}")
    print(
        "| session | blocks of the new turn (median ms) | whole-file scan for comparison (ms) |"
        " consume rewrite (s) | rewrite throughput (MB/s) | peak RSS of the rewriting process (MiB) |"
    )
    print("|---|---|---|---|---|---|")
    for size, extract, whole, _n, elapsed, base, peak in rows:
        print(
            f"| {size / 1e6:.0f} MB | {extract * 1000:.2f} | {whole * 1000:.0f} | {elapsed:.2f} |"
            f" {size / 1e6 / elapsed:.0f} | {peak / 1024:.1f} (interpreter alone {base / 1024:.1f}) |"
        )


if __name__ == "__main__":
    main()
