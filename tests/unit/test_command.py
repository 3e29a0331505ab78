from __future__ import annotations

from pathlib import Path

from plexum_openai_provider._codex.command import McpServerSpec, exec_argv, split_app_server_args
from plexum_openai_provider._codex.project_docs import project_docs_possible


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
        'mcp_servers.plexum-host-cx.omit_tools_from=["deferred"]',
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


def test_project_docs_are_looked_for_only_where_codex_could_find_some(tmp_path: Path) -> None:
    home = tmp_path / "codex-home"
    home.mkdir()
    repo = tmp_path / "repo"
    workspace = repo / "agents" / "cx"
    workspace.mkdir(parents=True)
    assert not project_docs_possible(workspace, home)  # no root: the workspace alone, empty
    (repo / "AGENTS.md").write_text("x")
    assert not project_docs_possible(workspace, home)  # above the workspace, but no project root
    (repo / ".git").mkdir()
    assert project_docs_possible(workspace, home)  # from the root down to the workspace
    (repo / "AGENTS.md").unlink()
    (workspace / "AGENTS.override.md").write_text("x")
    assert project_docs_possible(workspace, home)
    (workspace / "AGENTS.override.md").unlink()
    assert not project_docs_possible(workspace, home)
    # The operator tuned the discovery: codex looks as configured.
    assert project_docs_possible(workspace, home, ["-c", 'project_doc_fallback_filenames=["X.md"]'])
    (home / "config.toml").write_text('project_root_markers = [".hg"]\n')
    assert project_docs_possible(workspace, home)


def test_an_exec_with_no_project_docs_to_find_does_not_look() -> None:
    argv = exec_argv("codex", skip_project_docs=True, extra_args=["-c", "project_doc_max_bytes=9"])
    at = argv.index("project_doc_max_bytes=0")
    assert argv[at - 1] == "-c" and at < argv.index("project_doc_max_bytes=9")  # extra_args win
    assert "project_doc_max_bytes=0" not in exec_argv("codex")
