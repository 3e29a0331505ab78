"""codex command lines: ``codex exec`` of one turn, ``codex app-server``, and an MCP server defined
inline (no ``config.toml`` entry) for either."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .policy import AgentPolicy
from .project_docs import SKIP_PROJECT_DOCS_CONFIG

__all__ = [
    "APP_SERVER_CONFIG",
    "EXEC_FLAGS",
    "UNCONFINED_FLAG",
    "McpServerSpec",
    "app_server_argv",
    "config_overrides",
    "exec_argv",
    "split_app_server_args",
    "toml_value",
]

# Every turn runs unattended in the agent's workspace: no git check, JSONL on stdout.
EXEC_FLAGS = ("--skip-git-repo-check", "--json")
# Unconfined (sandbox "none"): full access and no approval prompts (nobody is there to answer).
UNCONFINED_FLAG = "--dangerously-bypass-approvals-and-sandbox"
# Confined: the agent's permission profile, and still no prompts (a refused operation fails
# inside the turn, and the model reads why).
NO_APPROVALS = 'approval_policy="never"'

# Without it an unsubscribed thread stays loaded, holding codex's writer lock, for 30 minutes
# (codex 0.163/0.169): a consume could not rewrite it, and another process could not resume it.
APP_SERVER_CONFIG = ("thread_unload_delay_secs=0",)


@dataclass(frozen=True)
class McpServerSpec:
    """A stdio MCP server given to codex for one run (exec) or one thread load (app-server)."""

    name: str
    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    tool_timeout_s: float = 300.0

    def config(self) -> dict[str, Any]:
        """The ``mcp_servers.<name>.*`` config keys and their values.

        ``required``: codex silently leaves out a server that is not ready within about a second
        (0.169); required, it waits. ``enabled``: an older registration of the same name in
        config.toml may say false. ``tool_timeout_sec``: codex's own per-call limit would cut a
        slow host tool off before the plugin's ``tool_timeout_s``. ``default_tools_approval_mode``:
        in a sandbox, with approvals off, codex refuses every MCP call otherwise ("MCP tool call
        requires approval, but approval policy is never", 0.163): the host's tools are the host's
        to allow, and the host offered them. ``omit_tools_from``: on a catalog model (every model
        of codex 0.163–0.171 has ``supports_search_tool``) codex defers an MCP server's tools
        behind its ``tool_search`` (gpt-5.5) or leaves them out of code mode's ``exec``
        declaration (gpt-6.1-sol, gpt-6.2-sol): the model would not see the host's tools, and a
        call by name in its first response fails. ``["deferred"]`` keeps this server out of the
        deferred set, so its tools are in the first request (0.163, 0.169, 0.171)."""
        prefix = f"mcp_servers.{self.name}"
        return {
            f"{prefix}.command": self.command[0],
            f"{prefix}.args": list(self.command[1:]),
            f"{prefix}.env": dict(self.env),
            f"{prefix}.enabled": True,
            f"{prefix}.required": True,
            f"{prefix}.tool_timeout_sec": self.tool_timeout_s,
            f"{prefix}.default_tools_approval_mode": "approve",
            f"{prefix}.omit_tools_from": ["deferred"],
        }

    def overrides(self) -> list[str]:
        """The same as ``-c key=value`` arguments."""
        return config_overrides(self.config())


def config_overrides(config: Mapping[str, Any]) -> list[str]:
    """codex config keys as ``-c key=value`` arguments (the value in TOML)."""
    out: list[str] = []
    for key, value in config.items():
        out += ["-c", f"{key}={toml_value(value)}"]
    return out


def toml_value(value: Any) -> str:
    """A value in TOML: JSON strings, arrays and numbers are TOML too; a table becomes an inline
    table."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value)


def exec_argv(
    binary: str,
    *,
    resume_thread: str | None = None,
    model: str | None = None,
    effort: str | None = None,
    mcp_server: McpServerSpec | None = None,
    policy: AgentPolicy | None = None,
    instructions: str | None = None,
    images: Sequence[str] = (),
    extra_args: Sequence[str] = (),
    skip_project_docs: bool = False,
    git_folder: bool = True,
) -> list[str]:
    """``codex exec [options] [resume ID] -``: the prompt itself goes to stdin.

    Options go before ``resume`` (codex parses them there). The prompt is read from stdin (``-``)
    rather than passed as an argument: codex keeps stdin's bytes exactly (leading dashes, newlines,
    any size), while an argument is limited to 128 KiB on Linux and one starting with ``-`` would
    be taken for a flag. ``policy``: the agent's sandbox and codex features (None: unconfined,
    codex's own features). ``instructions``: a new thread's developer instructions (codex 0.163+
    ignores them on ``resume``). ``images``: image files given with the prompt. ``effort``: the
    model's reasoning effort (codex's ``model_reasoning_effort``; None: the model's default).
    ``skip_project_docs``: there are none to find (:mod:`.project_docs`): codex does not look.
    ``git_folder``: the workspace's ``.git`` is a real folder (:func:`.policy.prepare_git_folder`).
    """
    argv = [binary, "exec", *EXEC_FLAGS]
    if policy is not None and policy.confined:
        argv += ["-c", NO_APPROVALS]
    else:
        argv.append(UNCONFINED_FLAG)
    if model is not None:
        argv += ["--model", model]
    if effort is not None:
        argv += config_overrides({"model_reasoning_effort": effort})
    argv += mcp_server.overrides() if mcp_server else []
    argv += config_overrides(policy.config(git_folder=git_folder)) if policy else []
    if instructions:
        argv += config_overrides({"developer_instructions": instructions})
    for image in images:
        argv += ["--image", image]
    if skip_project_docs:
        argv += config_overrides(SKIP_PROJECT_DOCS_CONFIG)
    argv += list(extra_args)
    if resume_thread is not None:
        argv += ["resume", resume_thread]
    argv.append("-")
    return argv


def app_server_argv(binary: str, extra_args: Sequence[str] = ()) -> list[str]:
    argv = [binary, "app-server"]
    for override in APP_SERVER_CONFIG:
        argv += ["-c", override]
    return argv + list(extra_args)


_WITH_VALUE = ("-c", "--config", "--enable", "--disable")
_FLAGS = ("--strict-config",)


def split_app_server_args(extra_args: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the arguments ``codex app-server`` takes too, the ones it does not).

    ``codex app-server`` (0.163/0.169) takes ``-c/--config key=value``, ``--enable`` and
    ``--disable`` (features) and ``--strict-config``; the rest of exec's options (``--model``,
    ``--profile``, ``--image``, ``--add-dir``, …) have no app-server form."""
    usable: list[str] = []
    rest: list[str] = []
    args = list(extra_args)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in _WITH_VALUE and i + 1 < len(args):
            usable += [arg, args[i + 1]]
            i += 2
            continue
        if (
            arg in _FLAGS
            or any(arg.startswith(f"{o}=") for o in _WITH_VALUE if o != "-c")
            or (arg.startswith("-c") and len(arg) > 2 and not arg.startswith("--"))
        ):
            usable.append(arg)
        else:
            rest.append(arg)
        i += 1
    return usable, rest
