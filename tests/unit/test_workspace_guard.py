"""Where a confined agent's workspace may be (``WorkspaceGuard``): never holding or inside another
agent's, codex's home, the plugin's folders or a credential path; never through a link; never
with a ``.codex/config.toml``. Refused before its records are opened: nothing changes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from plexum_openai_provider import AgentContext, InvalidRequestError
from plexum_openai_provider._codex.policy import AgentPolicy
from plexum_openai_provider._turn.records import open_records, records_dir
from plexum_openai_provider._turn.workspace import OWNER_FILE, WorkspaceGuard
from plexum_openai_provider.requests import TurnRequest
from plexum_openai_provider.testing import FakeEngine, FakeRun, exec_lines
from tests.helpers import provider_on

THREAD = "01a20aa4-ab5b-7f40-9ba8-8bc39951a3e1"
pytestmark = pytest.mark.timeout(10)


def claimed(state: Path, workspace: Path, agent: str) -> Path:
    """The records another plugin process left of ``agent``'s turn in ``workspace``."""
    workspace.mkdir(parents=True, exist_ok=True)
    folder = open_records(state, workspace)
    (folder / OWNER_FILE).write_text(agent + "\n")
    return folder


def refusal(guard: WorkspaceGuard, agent: str, workspace: Path, **kw: object) -> str:
    with pytest.raises(InvalidRequestError) as err:
        guard.check(agent, workspace, **kw)  # type: ignore[arg-type]
    assert err.value.field == "agent.workspace"
    return err.value.message


def test_a_workspace_holding_or_inside_another_agents_is_refused(tmp_path: Path) -> None:
    state, outer = tmp_path / "state", tmp_path / "outer"
    records = claimed(state, outer / "inner", "inner")
    gone = claimed(state, outer / "gone", "gone")
    (outer / "gone").rmdir()  # records of a folder no longer there bar nothing
    guard = WorkspaceGuard(state, never=())
    message = refusal(guard, "outer", outer)
    assert f"{str(outer / 'inner')!r}, the workspace of agent 'inner'" in message
    assert str(records) in message  # what to remove to forget it
    assert str(outer / "inner") in refusal(guard, "deep", outer / "inner" / "deep")
    guard.check("inner", outer / "inner")  # its own
    guard.check("inner", outer)  # one agent's two workspaces reach nothing of another's
    (outer / "side").mkdir()
    guard.check("side", outer / "side")  # beside it
    # This process's own agents count before their records are read (another state folder).
    fresh = WorkspaceGuard(tmp_path / "other-state", never=())
    assert "another agent of this plugin" in refusal(
        fresh, "outer", outer, others=[str(outer / "side")]
    )
    assert gone.exists()


def test_a_workspace_near_what_no_agent_may_see_or_through_a_link_is_refused(
    tmp_path: Path,
) -> None:
    home, codex_home = tmp_path / "home", tmp_path / "home" / "codex-home"
    (home / ".ssh").mkdir(parents=True)
    (codex_home / "sessions").mkdir(parents=True)
    guard = WorkspaceGuard(tmp_path / "state", never=[str(codex_home), str(home / ".ssh")])
    assert "which no agent may see" in refusal(guard, "a", codex_home)
    assert "which no agent may see" in refusal(guard, "a", codex_home / "sessions")
    assert "which no agent may see" in refusal(guard, "a", home)  # holds both
    (tmp_path / "ws").mkdir()
    (tmp_path / "link").symlink_to(codex_home)
    (tmp_path / "up").symlink_to(tmp_path)  # a link further up the path
    for path in (tmp_path / "link", tmp_path / "up" / "ws"):
        assert "has a symbolic link in it" in refusal(guard, "a", path)
    guard.check("a", tmp_path / "ws")
    (tmp_path / "ws" / ".codex").mkdir()
    (tmp_path / "ws" / ".codex" / "config.toml").write_text("[mcp_servers.x]\n")
    assert "has a .codex/config.toml" in refusal(guard, "a", tmp_path / "ws")
    guard.check("a", tmp_path / "ws", runs=False)  # a consume runs nothing there
    (tmp_path / "ws" / ".codex" / "config.toml").unlink()
    (tmp_path / "ws" / ".codex" / "hooks.json").write_text("{}")
    assert "has a .codex/hooks.json" in refusal(guard, "a", tmp_path / "ws")


def test_another_folder_at_a_checked_path_is_checked_again(tmp_path: Path) -> None:
    state, workspace = tmp_path / "state", tmp_path / "ws"
    workspace.mkdir()
    guard = WorkspaceGuard(state, never=())
    guard.check("a", workspace)
    workspace.rename(tmp_path / "aside")
    claimed(state, workspace / "b", "b")  # a new folder there, holding another's workspace
    assert "the workspace of agent 'b'" in refusal(guard, "a", workspace)


async def test_a_refused_workspace_changes_nothing_and_its_older_records_stay_out(
    tmp_path: Path,
) -> None:
    """An agent plants older-layout records (another thread's id) in a folder of its workspace
    that is not yet one: a turn there is refused, and the records are not moved in."""
    outer = tmp_path / "outer"
    planted = outer / "b"
    planted.mkdir(parents=True)
    engine = FakeEngine([FakeRun(exec_lines.turn(THREAD, "x"))])
    provider = provider_on(engine, tmp_path, policy=AgentPolicy("workspace", "confined"))
    await (await provider.start_turn(TurnRequest(AgentContext("outer", outer), "hi"))).result()
    (planted / ".plexum-codex-session").write_text(THREAD + "\n")
    (planted / ".plexum-codex-agent").write_text("b\n")
    with pytest.raises(InvalidRequestError, match="holds or lies in") as err:
        await provider.start_turn(TurnRequest(AgentContext("b", planted), "hi"))
    assert err.value.field == "agent.workspace"
    assert not records_dir(tmp_path / "state", planted).exists()
    assert sorted(os.listdir(planted)) == [".plexum-codex-agent", ".plexum-codex-session"]
    assert len(engine.specs) == 1
    await provider.close()
