"""Ending processes gently (``_codex/watchdog.py``): SIGTERM first, SIGKILL only after the
grace, never twice the same signal, never a pid the kernel gave to another process; and what a
dying shell left in its group or forked is ended with it. Real processes, real signals."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plexum_openai_provider._codex.guard import ProcessGuard
from plexum_openai_provider._codex.watchdog import Ending, end_now, ending_steps, read_proc

# A shell that records each SIGTERM it gets, then exits (or, with IGNORE, carries on).
TRAPPING = r"""
trap 'echo term >> "$1"; [ -n "$IGNORE" ] || exit 0' TERM
echo ready >> "$1"
while :; do sleep 0.01; done
"""


def spawn(log: Path, *, ignore: bool = False, child: bool = False) -> subprocess.Popen[bytes]:
    script = TRAPPING if not child else 'sleep 30 & echo "$!" > "$1.child"; ' + TRAPPING
    env = {**os.environ, "IGNORE": "1" if ignore else ""}
    proc = subprocess.Popen(
        ["bash", "-c", script, "trapping", str(log)], env=env, start_new_session=True
    )
    deadline = time.monotonic() + 10
    while not (log.exists() and "ready" in log.read_text()):
        assert time.monotonic() < deadline
        time.sleep(0.005)
    return proc


def ended_by(proc: subprocess.Popen[bytes]) -> int:
    return proc.wait(10)


def test_sigterm_is_enough_for_a_process_that_heeds_it(tmp_path: Path) -> None:
    log = tmp_path / "log"
    proc = spawn(log)
    started = time.monotonic()
    end_now(Ending([proc.pid]))
    assert ended_by(proc) == 0  # its trap ran: it exited by itself, not by SIGKILL
    assert log.read_text().count("term") == 1  # once: a second could cut a trap short
    assert time.monotonic() - started < 0.4


def test_sigkill_comes_only_after_the_grace(tmp_path: Path) -> None:
    log = tmp_path / "log"
    proc = spawn(log, ignore=True)
    started = time.monotonic()
    end_now(Ending([proc.pid]))
    assert ended_by(proc) == -signal.SIGKILL
    elapsed = time.monotonic() - started
    assert log.read_text().count("term") == 1
    assert 0.45 < elapsed < 3.0, elapsed  # the grace (0.5 s) was given


def test_a_group_leader_is_ended_with_its_group_and_an_orphan_with_it(tmp_path: Path) -> None:
    log = tmp_path / "log"
    proc = spawn(log, child=True)
    child = int((tmp_path / "log.child").read_text())
    end_now(Ending([proc.pid]))
    assert ended_by(proc) == 0
    deadline = time.monotonic() + 5
    while (p := read_proc(child)) is not None and not p.zombie:
        assert time.monotonic() < deadline, "the shell's background child was left running"
        time.sleep(0.01)


def test_a_pid_with_another_start_time_is_left_alone(tmp_path: Path) -> None:
    log = tmp_path / "log"
    proc = spawn(log)
    noted = read_proc(proc.pid)
    assert noted is not None
    # As if the pid had been noted for an earlier process: it names another process now.
    ending = Ending([proc.pid], starts={proc.pid: noted.start - 1})
    assert ending.live() == []
    assert list(ending_steps(ending)) == []
    assert proc.poll() is None
    proc.kill()
    proc.wait()


def test_never_this_process_nor_its_group() -> None:
    ending = Ending([os.getpid()], groups=[os.getpgrp()])
    assert ending.live() == []


def test_the_wait_lets_a_process_end_by_itself_first() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    started = time.monotonic()
    for pause in ending_steps(Ending([proc.pid]), wait_s=5.0):
        time.sleep(pause)
        proc.poll()  # reap it when it ends (a zombie counts as ended anyway)
    assert proc.wait(5) == 0  # not signalled
    assert time.monotonic() - started < 2.0


@pytest.mark.skipif(sys.platform != "linux", reason="the guard's endings read /proc")
async def test_the_guard_ends_in_the_background_and_settles(tmp_path: Path) -> None:
    keeper = ProcessGuard()
    log = tmp_path / "log"
    proc = spawn(log, ignore=True)
    task = keeper.end([proc.pid])
    assert task is not None
    assert keeper.end([proc.pid]) is None  # already being ended: left to that ending
    await keeper.settle()
    assert task.done()
    assert await asyncio.to_thread(ended_by, proc) == -signal.SIGKILL
    assert log.read_text().count("term") == 1


# In a process of its own: the sweep is the child subreaper's, and this one must not become one.
SWEEP_WHILE_STARTING = r"""
import asyncio, os, subprocess
from plexum_openai_provider._codex.guard import ProcessGuard

async def main():
    keeper = ProcessGuard()
    assert keeper.enable_subreaper()
    # Unmarked and not registered: a leftover, or a child whose start is still under way.
    child = subprocess.Popen(["sleep", "30"], env={}, start_new_session=True)
    with keeper.starting():
        assert keeper.sweep(wait_s=0) is None  # a start is under way: left alone
        assert child.poll() is None
    ending = keeper.sweep(wait_s=0)  # no start under way: a leftover, ended
    assert ending is not None
    await ending
    child.wait(5)  # ended (and reaped by the guard: its exit status is the guard's)
    assert not os.path.exists(f"/proc/{child.pid}")
    print("ok")

asyncio.run(main())
"""


def test_a_sweep_takes_no_unmarked_child_while_a_start_is_under_way() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SWEEP_WHILE_STARTING], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr


# In a process of its own, a subreaper: a "codex" whose shell runs one command of thread T under it
# (and leaves a zombie), and orphans another (re-parented here); a process of ours that says it is
# T's but carries no mark is not codex's.
THREAD_PROCESSES = r"""
import os, subprocess, time
from plexum_openai_provider._codex.guard import OWNER_ENV, descendants, guard, thread_processes

assert guard().enable_subreaper()
mark = {OWNER_ENV: "test:r1"}
script = (
    "true & CODEX_THREAD_ID=T sleep 30 & echo $!; "
    "(CODEX_THREAD_ID=T setsid sleep 31 & echo $!); exec sleep 32"
)
root = subprocess.Popen(["sh", "-c", script], env={**os.environ, **mark}, stdout=subprocess.PIPE)
under, orphan = (int(root.stdout.readline()) for _ in range(2))
stranger = subprocess.Popen(["sleep", "33"], env={**os.environ, "CODEX_THREAD_ID": "T"})
def slept(pid):  # exec'd into sleep: only then does its environment name the thread
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().startswith(b"sleep")
    except OSError:
        return False

try:
    deadline = time.monotonic() + 10
    # Once the first child has exited (a zombie: sleep never reaps it) only the command is left.
    while (
        descendants(root.pid) != [under]
        or orphan not in descendants(os.getpid())
        or not (slept(under) and slept(orphan))
    ):
        assert time.monotonic() < deadline, (descendants(root.pid), under, orphan)
    assert sorted(thread_processes(root.pid, "T", mark)) == sorted([under, orphan])
    assert thread_processes(root.pid, "U", mark) == []
    print("ok")
finally:
    for pid in (under, orphan, root.pid, stranger.pid):
        os.kill(pid, 9)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_a_threads_processes_are_found_under_codex_and_where_they_were_orphaned() -> None:
    done = subprocess.run(
        [sys.executable, "-c", THREAD_PROCESSES], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr
