"""What the plugin reads or writes in a workspace on the agent's behalf cannot be redirected: images
are read once, without following a link, and codex gets those bytes; the plugin's records of a
workspace live in its state folder, where an agent cannot write, and the older layout's move
there without losing the thread. On the fake codex seam."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from plexum_openai_provider import AgentContext, InvalidRequestError
from plexum_openai_provider._engine.app_server.run import input_items
from plexum_openai_provider._engine.exec import _image_files
from plexum_openai_provider._turn.delivery import Delivery, load_delivery, save_delivery
from plexum_openai_provider._turn.records import (
    WORKSPACE_FILE,
    open_records,
    records_dir,
)
from plexum_openai_provider._turn.thread_store import SESSION_FILE, read_thread_id
from plexum_openai_provider._turn.workspace import OWNER_FILE
from plexum_openai_provider.conversation import parse_messages
from plexum_openai_provider.requests import TurnRequest
from plexum_openai_provider.testing import FakeEngine, FakeRun, exec_lines
from tests.helpers import provider_on, wait_until

THREAD = "01a20aa4-ab5b-7f40-9ba8-8bc39951a3e1"
OTHER = "01a20aa9-1f0f-7e20-a261-459ebb6374ca"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGP4z8AARAwQCgAf7gP9i18U1AAAAABJRU5ErkJggg=="
)
VICTIM_PNG = PNG + b"victim"  # still a PNG by its bytes; told apart by the tail
RUNNING = [exec_lines.thread_started(THREAD), exec_lines.turn_started()]
pytestmark = pytest.mark.timeout(10)


def image_message(*paths: Path, text: str = "look") -> tuple[Any, ...]:
    parts = [{"type": "text", "text": text}] + [{"type": "image", "path": str(p)} for p in paths]
    return parse_messages([{"role": "user", "content": parts}])


# -- images ------------------------------------------------------------------------------------
def test_an_image_is_read_once_and_codex_gets_those_bytes(tmp_path: Path) -> None:
    picture = tmp_path / "p.png"
    picture.write_bytes(PNG)
    request = TurnRequest(AgentContext("cx", tmp_path), messages=image_message(picture))
    [image] = request.validate().conversation[0].images
    picture.write_bytes(VICTIM_PNG)  # whatever is there later is not what codex gets
    assert (image.content, image.mime) == (PNG, "image/png")
    # app-server: the bytes as a data: URL, never a localImage path codex would read later.
    [_, item] = input_items("look", (image,))
    assert item == {
        "type": "image",
        "url": "data:image/png;base64," + base64.b64encode(PNG).decode(),
    }
    # exec: a private copy (0600 in a fresh 0700 folder of the plugin's) for --image.
    [copy] = _image_files((image,), tmp_path / "scratch")
    assert Path(copy).read_bytes() == PNG
    assert stat.S_IMODE(os.stat(tmp_path / "scratch").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(copy).st_mode) == 0o600


@pytest.mark.parametrize("where", ["file", "folder"])
def test_an_image_reached_through_a_link_is_refused_naming_the_part(
    tmp_path: Path, where: str
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "photo.png").write_bytes(VICTIM_PNG)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    if where == "file":
        (workspace / "img.png").symlink_to(victim / "photo.png")
        path = workspace / "img.png"
    else:
        (workspace / "pics").symlink_to(victim)
        path = workspace / "pics" / "photo.png"
    request = TurnRequest(AgentContext("cx", workspace), messages=image_message(path))
    with pytest.raises(InvalidRequestError) as err:
        request.validate()
    assert err.value.field == "messages[0].content[1]"
    assert "symbolic link" in err.value.message and "real path" in err.value.message
    # Not a normal path ('..'), a FIFO: refused the same way, nothing blocks.
    for bad, why in ((workspace / ".." / "victim" / "photo.png", "normal absolute path"),):
        with pytest.raises(InvalidRequestError, match=why):
            TurnRequest(AgentContext("cx", workspace), messages=image_message(bad)).validate()
    os.mkfifo(workspace / "fifo.png")
    with pytest.raises(InvalidRequestError, match="a FIFO"):
        request = TurnRequest(
            AgentContext("cx", workspace), messages=image_message(workspace / "fifo.png")
        )
        request.validate()


async def test_a_steered_image_swapped_for_a_link_is_refused_and_one_read_is_what_codex_gets(
    tmp_path: Path,
) -> None:
    """The attack: the agent makes its image a link to another agent's while a steer comes."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    victim = tmp_path / "victim.png"
    victim.write_bytes(VICTIM_PNG)
    picture = workspace / "img.png"
    picture.write_bytes(PNG)
    steerable = FakeRun(RUNNING, hang=True, on_steer=[exec_lines.agent_message("seen")])
    engine = FakeEngine([steerable])
    provider = provider_on(engine, tmp_path)
    agent = AgentContext("cx", workspace)
    first = await provider.start_turn(TurnRequest(agent, messages=image_message(text="one")))
    await wait_until(lambda: first.record is not None)
    # Swapped before the steer: refused, naming the part; codex is given nothing.
    picture.unlink()
    picture.symlink_to(victim)
    with pytest.raises(InvalidRequestError) as err:
        await provider.start_turn(
            TurnRequest(agent, messages=image_message(text="one") + image_message(picture)),
            "steer",
        )
    assert err.value.field == "messages[1].content[1]" and engine.steered == []
    # A regular file when the steer comes, a link right after: codex has the bytes read then.
    picture.unlink()
    picture.write_bytes(PNG)
    steer = provider.start_turn(
        TurnRequest(agent, messages=image_message(text="one") + image_message(picture)), "steer"
    )
    steered = await steer
    picture.unlink()
    picture.symlink_to(victim)
    assert (await steered.result()).status == "steered"
    [[image]] = engine.steered_images
    assert image.content == PNG
    first.cancel()
    await first.result()
    await provider.close()


# -- records -----------------------------------------------------------------------------------
def test_the_records_live_in_a_private_folder_named_for_the_workspace(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (tmp_path / "link").symlink_to(workspace)
    folder = open_records(tmp_path / "state", workspace)
    assert folder == records_dir(tmp_path / "state", tmp_path / "link")  # by the real path
    assert (folder / WORKSPACE_FILE).read_text() == f"{workspace}\n"
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert list(workspace.iterdir()) == []
    # A folder that names another workspace is not used for this one.
    (folder / WORKSPACE_FILE).write_text("/somewhere/else\n")
    with pytest.raises(OSError, match="/somewhere/else"):
        open_records(tmp_path / "state", workspace)


def test_the_older_layout_moves_in_once_and_is_removed(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / ".plexum-codex-session").write_text(THREAD + "\n")
    (workspace / ".plexum-codex-agent").write_text("cx\n")
    record = '{"thread_id": "%s", "boundary": null, "delivered": ["d1"], "open": false, "instructions": null}'
    (workspace / ".plexum-codex-delivered").write_text(record % THREAD)
    (workspace / f"..plexum-codex-session.{2**22 + 1}.abcd1234.tmp").write_text("x")  # dead writer
    (workspace / "notes.txt").write_text("the agent's own")
    folder = open_records(tmp_path / "state", workspace)
    assert read_thread_id(folder) == THREAD
    assert (folder / OWNER_FILE).read_text() == "cx\n"
    delivery = load_delivery(folder)
    assert delivery is not None and delivery.delivered == ("d1",)
    assert sorted(p.name for p in workspace.iterdir()) == ["notes.txt"]
    # Once moved, files of those names in the workspace are nothing to the plugin.
    (workspace / ".plexum-codex-session").write_text(OTHER + "\n")
    (workspace / ".plexum-codex-agent").write_text("intruder\n")
    assert open_records(tmp_path / "state", workspace) == folder
    assert read_thread_id(folder) == THREAD and (folder / OWNER_FILE).read_text() == "cx\n"


def test_an_older_record_that_is_a_link_is_not_moved_in(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    elsewhere = tmp_path / "other-session"
    elsewhere.write_text(OTHER + "\n")
    (workspace / ".plexum-codex-session").symlink_to(elsewhere)
    folder = open_records(tmp_path / "state", workspace)
    assert read_thread_id(folder) is None and not (folder / SESSION_FILE).exists()
    assert elsewhere.read_text() == OTHER + "\n"  # the link went, not what it pointed at
    assert not (workspace / ".plexum-codex-session").is_symlink()


async def test_what_an_agent_writes_in_its_workspace_changes_nothing_about_its_next_turn(
    tmp_path: Path,
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    engine = FakeEngine(
        [FakeRun(exec_lines.turn(THREAD, "first")), FakeRun(exec_lines.turn(THREAD, "second"))]
    )
    provider = provider_on(engine, tmp_path)
    agent = AgentContext("cx", workspace)
    first = await provider.start_turn(TurnRequest(agent, messages=image_message(text="A")))
    await first.result()
    # What an agent could write in its workspace: another thread, a forged delivery record.
    (workspace / ".plexum-codex-session").write_text(OTHER + "\n")
    forged = '{"thread_id": "%s", "boundary": null, "delivered": [], "open": false, "instructions": null}'
    (workspace / ".plexum-codex-delivered").write_text(forged % OTHER)
    (workspace / ".plexum-codex-agent").write_text("someone-else\n")
    messages = parse_messages(
        [
            {"role": "user", "content": "A"},
            {"role": "assistant", "content": "first"},
            {"role": "user", "content": "B"},
        ]
    )
    second = await provider.start_turn(TurnRequest(agent, messages=messages))
    assert (await second.result()).status == "completed"
    assert [s.resume for s in engine.specs] == [None, THREAD]
    assert engine.specs[1].prompt == "B"  # every message it has not heard, and only those
    await provider.close()


async def test_two_providers_see_each_other_s_claims(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    one = provider_on(FakeEngine([FakeRun(exec_lines.turn(THREAD, "x"))]), tmp_path)
    two = provider_on(FakeEngine([]), tmp_path)  # the same state folder, a lock object its own
    turn = await one.start_turn(TurnRequest(AgentContext("cx", workspace), "hi"))
    await turn.result()
    with pytest.raises(InvalidRequestError, match="is the workspace of agent 'cx'") as err:
        await two.start_turn(TurnRequest(AgentContext("other", workspace), "hi"))
    assert str(records_dir(tmp_path / "state", workspace) / OWNER_FILE) in err.value.message
    await one.close()
    await two.close()


def test_the_record_that_takes_messages_is_durable_and_the_one_that_closes_the_turn_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The open record (codex has these messages) is fsynced, file and folder; the closed one
    (the turn answered) is not: losing it leaves the open one, which gives codex nothing twice.
    Both replace the record whole."""
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    opened = Delivery("t-1", None, ("d1",), True, None)
    save_delivery(tmp_path, opened)
    assert len(synced) == 2 and load_delivery(tmp_path) == opened
    synced.clear()
    save_delivery(tmp_path, opened.closed())
    assert synced == [] and load_delivery(tmp_path) == opened.closed()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["delivered"]
