from __future__ import annotations

from plexum_openai_provider.codex.command import exec_argv


def test_new_thread() -> None:
    assert exec_argv("/bin/codex") == [
        "/bin/codex",
        "exec",
        "--skip-git-repo-check",
        "--dangerously-bypass-approvals-and-sandbox",
        "--json",
        "-",
    ]


def test_options_go_before_resume_and_the_prompt_is_stdin() -> None:
    argv = exec_argv(
        "codex",
        resume_thread="0199aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeee",
        model="gpt-5",
        config_overrides=["mcp_servers.x.enabled=true"],
        extra_args=["--enable", "foo"],
    )
    assert argv[argv.index("resume") :] == ["resume", "0199aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeee", "-"]
    head = argv[: argv.index("resume")]
    assert head[-6:] == ["--model", "gpt-5", "-c", "mcp_servers.x.enabled=true", "--enable", "foo"]
