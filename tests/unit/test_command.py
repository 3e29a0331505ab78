from __future__ import annotations

from plexum_openai_provider._codex.command import McpServerSpec, exec_argv, split_app_server_args


def test_new_thread() -> None:
    assert exec_argv("/bin/codex") == [
        "/bin/codex",
        "exec",
        "--skip-git-repo-check",
        "--json",
        "--dangerously-bypass-approvals-and-sandbox",
        "-",
    ]


def test_options_go_before_resume_and_the_prompt_is_stdin() -> None:
    server = McpServerSpec(
        "plexum-host-cx", ("/usr/bin/python3", "-I", "relay.py"), {"A": "b"}, 12.5
    )
    argv = exec_argv(
        "codex",
        resume_thread="0199aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeee",
        model="gpt-5",
        mcp_server=server,
        extra_args=["--enable", "foo"],
    )
    assert argv[argv.index("resume") :] == ["resume", "0199aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeee", "-"]
    head = argv[: argv.index("resume")]
    assert head[5:7] == ["--model", "gpt-5"]
    assert head[-2:] == ["--enable", "foo"]
    overrides = [head[i + 1] for i, arg in enumerate(head) if arg == "-c"]
    assert overrides == [
        'mcp_servers.plexum-host-cx.command="/usr/bin/python3"',
        'mcp_servers.plexum-host-cx.args=["-I", "relay.py"]',
        'mcp_servers.plexum-host-cx.env={"A" = "b"}',
        "mcp_servers.plexum-host-cx.enabled=true",
        "mcp_servers.plexum-host-cx.required=true",
        "mcp_servers.plexum-host-cx.tool_timeout_sec=12.5",
        'mcp_servers.plexum-host-cx.default_tools_approval_mode="approve"',
    ]


def test_the_inline_server_is_valid_toml_whatever_the_strings() -> None:
    import tomllib

    server = McpServerSpec("n", ('/p/"q"\\ü', "a b", "-c"), {"K": 'v"\n'}, 1.0)
    overrides = server.overrides()
    assert overrides[::2] == ["-c"] * len(server.config())
    for override in overrides[1::2]:
        key, value = override.split("=", 1)
        parsed = tomllib.loads(f"x = {value}")["x"]
        assert parsed == server.config()[key]


def test_app_server_takes_config_and_feature_flags_only() -> None:
    takes = ["-c", "a=1", "--config", "b=2", "--config=c=3", "-cd=4", "--enable", "x"]
    takes += ["--disable=y", "--strict-config"]
    exec_only = ["--model", "gpt", "--search", "-p", "prof"]
    assert split_app_server_args(takes + exec_only) == (takes, exec_only)
