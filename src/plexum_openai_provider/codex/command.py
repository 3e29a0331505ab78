"""The ``codex exec`` command line of one turn."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["EXEC_FLAGS", "exec_argv"]

# Every turn runs unattended in the agent's workspace: no git check, no approval prompts (nobody is
# there to answer them), JSONL on stdout.
EXEC_FLAGS = (
    "--skip-git-repo-check",
    "--dangerously-bypass-approvals-and-sandbox",
    "--json",
)


def exec_argv(
    binary: str,
    *,
    resume_thread: str | None = None,
    model: str | None = None,
    config_overrides: Sequence[str] = (),
    extra_args: Sequence[str] = (),
) -> list[str]:
    """``codex exec [options] [resume ID] -``: the prompt itself goes to stdin.

    Options go before ``resume`` (codex parses them there). The prompt is read from stdin (``-``)
    rather than passed as an argument: codex keeps stdin's bytes exactly (leading dashes, newlines,
    any size), while an argument is limited to 128 KiB on Linux and one starting with ``-`` would
    be taken for a flag.
    """
    argv = [binary, "exec", *EXEC_FLAGS]
    if model is not None:
        argv += ["--model", model]
    for override in config_overrides:
        argv += ["-c", override]
    argv += list(extra_args)
    if resume_thread is not None:
        argv += ["resume", resume_thread]
    argv.append("-")
    return argv
