"""The shape of the code: the import graph has no cycle and runs one way; the public surface is
what it says; the errors form one tree; the per-turn bridge process stays light."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

from tools.import_graph import cycles, graph, violations

import plexum_openai_provider as package
from plexum_openai_provider import errors

SRC = Path(package.__file__).parent

# What a host author imports (the README's example among it); changing it is an API change.
PUBLIC = [
    "ACTIVITY_TYPES",
    "AgentBusyError",
    "AgentContext",
    "AppServerError",
    "BASE_TYPES",
    "BridgeError",
    "ChatMessage",
    "CodexHomeError",
    "CodexNotFoundError",
    "CodexProcessError",
    "CodexProvider",
    "ConfigError",
    "ConsumeResult",
    "ContextWindow",
    "EngineInfo",
    "ErrorEvent",
    "Event",
    "FileChange",
    "FileChanged",
    "HostConfig",
    "ImagePart",
    "InvalidRequestError",
    "Notice",
    "Plan",
    "PlanStep",
    "ProviderError",
    "ReasoningDelta",
    "SessionFormatError",
    "TextDelta",
    "TextPart",
    "ThreadBusyError",
    "Timing",
    "ToolCall",
    "ToolCallRequest",
    "ToolHandler",
    "ToolImage",
    "ToolOutput",
    "ToolOutputDelta",
    "ToolResult",
    "ToolSpec",
    "ToolStarted",
    "Turn",
    "TurnError",
    "TurnRequest",
    "TurnResult",
    "Usage",
    "__version__",
]


def test_no_import_cycle_and_every_import_goes_down() -> None:
    edges = graph(SRC)
    assert len(edges) > 40
    assert cycles(edges) == []
    assert violations(edges) == []


def test_the_public_surface_is_pinned() -> None:
    assert sorted(package.__all__) == PUBLIC
    for name in package.__all__:
        assert getattr(package, name) is not None
    public_modules = {p.stem for p in SRC.glob("*.py")} | {
        p.name for p in SRC.iterdir() if p.is_dir()
    }
    private = {m for m in public_modules if m.startswith("_") and not m.startswith("__")}
    assert private == {
        "_bridge",
        "_codex",
        "_engine",
        "_io",
        "_jsonrpc",
        "_otel",
        "_turn",
        "_version",
    }
    assert public_modules - private - {"__init__", "__main__", "__pycache__", "py"} == {
        "cli",
        "config",
        "conversation",
        "errors",
        "events",
        "plugin",
        "provider",
        "requests",
        "telemetry",
        "testing",
    }


def test_every_error_raised_on_purpose_is_in_the_tree_and_exported() -> None:
    tree = [
        value
        for value in vars(errors).values()
        if isinstance(value, type)
        and issubclass(value, Exception)
        and value.__module__ == errors.__name__
    ]
    assert all(issubclass(cls, errors.ProviderError) for cls in tree)
    assert {cls.__name__ for cls in tree} <= set(package.__all__)
    process = errors.CodexProcessError("x", exit_code=3, stderr_tail="tail")
    assert (process.exit_code, process.stderr_tail, process.code) == (3, "tail", "codex_exited")
    # No exception class of its own anywhere else in the package.
    for path in SRC.rglob("*.py"):
        if path.name in ("errors.py", "__main__.py") or "_jsonrpc" in path.parts:
            continue
        name = ".".join(["plexum_openai_provider", *path.relative_to(SRC).with_suffix("").parts])
        name = name.removesuffix(".__init__")
        if "relay" in name:
            continue  # runs as a lone file in codex's MCP server process
        module = importlib.import_module(name)
        own = [
            v.__name__
            for v in vars(module).values()
            if isinstance(v, type)
            and issubclass(v, BaseException)
            and v.__module__ == module.__name__
            and not issubclass(v, OSError)  # NotRegularFile is an OSError, by design
        ]
        assert own == [], (name, own)


def test_the_relay_and_the_cli_import_no_heavy_module() -> None:
    code = (
        "import sys, plexum_openai_provider.cli, plexum_openai_provider._bridge.relay;"
        "print(','.join(m for m in ('pydantic', 'mcp', 'anyio', 'zstandard') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
