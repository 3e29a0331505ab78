from __future__ import annotations

import json
from pathlib import Path

import pytest

from plexum_openai_provider.config import HostConfig, load_config_file
from plexum_openai_provider.errors import ConfigError


def test_defaults() -> None:
    config = HostConfig.parse(None)
    assert config.supported_models == ("codex",)
    assert config.model_arg("codex") is None
    assert (config.turn_timeout_s, config.idle_timeout_s, config.tool_timeout_s) == (1800, 600, 300)
    assert config.consume_marker == "...(tool called)"
    assert config.extra_args == () and config.binary is None


def test_full_config_from_json() -> None:
    config = HostConfig.parse(
        json.loads(
            '{"binary": "/usr/bin/codex", "extra_args": ["-c", "x=1"],'
            ' "supported_models": ["codex", "gpt"], "model_args": {"gpt": "gpt-5"},'
            ' "turn_timeout_s": 10, "idle_timeout_s": 2.5, "tool_timeout_s": 1,'
            ' "consume_marker": "[gone]"}'
        )
    )
    assert config.extra_args == ("-c", "x=1")
    assert config.model_arg("gpt") == "gpt-5" and config.model_arg("codex") is None
    assert config.idle_timeout_s == 2.5


@pytest.mark.parametrize(
    ("data", "key", "needle"),
    [
        ({"bogus": 1}, "bogus", "not known"),
        ({"turn_timeout_s": "abc"}, "turn_timeout_s", '"abc"'),
        ({"idle_timeout_s": 0}, "idle_timeout_s", "greater than 0"),
        ({"tool_timeout_s": True}, "tool_timeout_s", "true"),
        ({"extra_args": "--foo"}, "extra_args", '"--foo"'),
        ({"extra_args": [1]}, "extra_args", "[1]"),
        ({"extra_args": ["a\u0000b"]}, "extra_args", "NUL"),
        ({"supported_models": []}, "supported_models", "[]"),
        ({"supported_models": ["a", "a"]}, "supported_models", "unique"),
        ({"model_args": {"gpt": "gpt-5"}}, "model_args", "'gpt'"),
        ({"model_args": {"codex": 5}}, "model_args", "5"),
        ({"model_args": {"codex": {"effort": "HIGH"}}}, "model_args", "model_args.codex.effort"),
        ({"model_args": {"codex": {"efort": "low"}}}, "model_args", "efort"),
        ({"model_args": {"codex": {"model": ""}}}, "model_args", "model_args.codex"),
        ({"model_args": {"codex": {"effort": "\udc80"}}}, "model_args", "unicode"),
        ({"binary": ""}, "binary", '""'),
        ({"consume_marker": ""}, "consume_marker", '""'),
        ({"consume_marker": "\ud800"}, "consume_marker", "unicode"),
        ({"tool_timeout_s": 1e300}, "tool_timeout_s", "604800"),
        ({"turn_timeout_s": float("inf")}, "turn_timeout_s", "finite"),
        ({"idle_timeout_s": float("nan")}, "idle_timeout_s", "finite"),
        ({"engine": "threads"}, "engine", "'app-server' or 'exec'"),
        ({"extra_args": ["\udc80"]}, "extra_args", "lone surrogate"),
    ],
)
def test_bad_values_name_the_key_and_value(data: dict[str, object], key: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        HostConfig.parse(data)
    assert err.value.key == key
    assert key in str(err.value) and needle in str(err.value)


def test_model_args_give_a_model_and_a_default_effort() -> None:
    """The old form (a model name) stays valid; the new one gives an effort, with or without a
    model (without: codex's default model)."""
    config = HostConfig.parse(
        {
            "supported_models": ["fast", "deep", "plain"],
            "model_args": {
                "fast": "gpt-5.5",
                "deep": {"model": "gpt-6.1-sol", "effort": "ultra"},
                "plain": {"effort": "low"},
            },
        }
    )
    assert [(config.model_arg(m), config.model_effort(m)) for m in config.supported_models] == [
        ("gpt-5.5", None),
        ("gpt-6.1-sol", "ultra"),
        (None, "low"),
    ]


def test_not_an_object() -> None:
    with pytest.raises(ConfigError, match="JSON object"):
        HostConfig.parse(["codex"])


def test_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config_file(bad)
    good = tmp_path / "good.json"
    good.write_text('{"idle_timeout_s": 5}')
    assert load_config_file(good).idle_timeout_s == 5


def test_a_config_file_with_infinity_is_refused(tmp_path: Path) -> None:
    """Python's json reads `Infinity`; a timeout that never ends a turn is not a timeout."""
    path = tmp_path / "config.json"
    path.write_text('{"turn_timeout_s": Infinity}')
    with pytest.raises(ConfigError) as err:
        load_config_file(path)
    assert err.value.key == "turn_timeout_s"


def test_a_config_file_may_be_the_hosts_whole_section(tmp_path: Path) -> None:
    """`--config` takes HostConfig keys, or the host's section for the plugin (command and
    config), as examples/plexum-config.json has it."""
    example = json.loads(
        (Path(__file__).parent.parent.parent / "examples" / "plexum-config.json").read_text()
    )
    section = example["providers"]["openai"]
    path = tmp_path / "section.json"
    path.write_text(json.dumps(section))
    assert load_config_file(path) == HostConfig.parse(section["config"])
    path.write_text(json.dumps(section["config"]))
    assert load_config_file(path) == HostConfig.parse(section["config"])
    path.write_text(json.dumps({**section, "env": {}}))  # not a section: its keys are checked
    with pytest.raises(ConfigError, match="config key 'command' is not known"):
        load_config_file(path)
