from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from plexum_openai_provider._turn.records import WORKSPACE_FILE, open_records
from plexum_openai_provider._turn.thread_store import (
    SESSION_FILE,
    clear_thread_id,
    is_thread_id,
    read_thread_id,
    write_thread_id,
)

WRITER = """
import sys, itertools
from pathlib import Path
from plexum_openai_provider._turn.thread_store import write_thread_id
ws, ids = Path(sys.argv[1]), sys.argv[2:]
print("ready", flush=True)
for tid in itertools.cycle(ids):
    write_thread_id(ws, tid)
"""


def test_write_read_clear(tmp_path: Path) -> None:
    tid = str(uuid.uuid4())
    assert read_thread_id(tmp_path) is None
    write_thread_id(tmp_path, tid)
    assert (tmp_path / SESSION_FILE).read_bytes() == tid.encode() + b"\n"
    assert read_thread_id(tmp_path) == tid
    assert clear_thread_id(tmp_path) and read_thread_id(tmp_path) is None
    assert not clear_thread_id(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == []


def test_is_thread_id() -> None:
    assert is_thread_id("01a20aa4-ab5b-7f40-9ba8-8bc39951a3e1")
    for bad in [
        "",
        "--last",
        "not-a-uuid",
        "01a20aa4ab5b7f409ba88bc39951a3e1",
        "{" + "0" * 32 + "}",
    ]:
        assert not is_thread_id(bad)


def test_kill_9_mid_write_never_leaves_an_empty_or_partial_file(tmp_path: Path) -> None:
    """Fault injection: SIGKILL a writer that rewrites the id in a loop, at random instants, in
    a workspace's records folder (where the plugin keeps it)."""
    (tmp_path / "ws").mkdir()
    tmp_path = open_records(tmp_path / "state", tmp_path / "ws")
    ids = [str(uuid.uuid4()) for _ in range(3)]
    valid = {tid.encode() + b"\n" for tid in ids}
    write_thread_id(tmp_path, ids[0])
    rng = random.Random(1234)
    hits = 0
    for _ in range(60):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), *ids],
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        try:
            proc.wait(timeout=rng.uniform(0.0, 0.03))
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        assert (tmp_path / SESSION_FILE).read_bytes() in valid
        assert read_thread_id(tmp_path) in ids
        # A temporary left behind is the evidence that this kill landed inside the write window.
        hits += any(tmp_path.glob(f".{SESSION_FILE}.*.tmp"))
    assert hits >= 5, f"only {hits} kills hit the write window; the test proved little"
    # The next write sweeps the temporaries of killed writers away.
    write_thread_id(tmp_path, ids[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == [SESSION_FILE, WORKSPACE_FILE]
