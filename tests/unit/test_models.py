"""The models codex offers, read from ``codex debug models`` as codex 0.171 printed it (its long
instruction texts cut), and how a turn's model and effort are chosen from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from plexum_openai_provider._codex.models import choose_model, effort_levels, parse_models
from plexum_openai_provider.config import HostConfig
from plexum_openai_provider.errors import InvalidRequestError

RECORDED = Path(__file__).parent.parent / "data" / "debug-models-0.171.json"
MODELS = parse_models(RECORDED.read_text())


def test_the_listed_models_in_codex_order() -> None:
    ids = [m.id for m in MODELS]
    assert ids[:2] == ["gpt-6.2-sol", "gpt-6.2-astra"]  # priority 1, 2: the default first
    assert "gpt-5.5" in ids
    assert "codex-auto-review" not in ids and "gpt-daybreak-blue-latest" not in ids  # hidden
    sol, gpt55 = MODELS[0], next(m for m in MODELS if m.id == "gpt-5.5")
    assert sol.code_mode and not gpt55.code_mode
    assert sol.efforts == ("low", "medium", "high", "xhigh", "max", "ultra")
    assert (gpt55.efforts, gpt55.default_effort) == (("low", "medium", "high", "xhigh"), "medium")
    assert gpt55.describe() == {
        "id": "gpt-5.5",
        "display_name": "GPT-5.5",
        "description": "Legacy coding model.",
        "efforts": ["low", "medium", "high", "xhigh"],
        "default_effort": "medium",
        "code_mode": False,
    }


@pytest.mark.parametrize("text", ["", "not json", "[]", '{"models": 3}', '{"models": [{"x": 1}]}'])
def test_what_is_not_a_catalog_is_an_empty_list(text: str) -> None:
    assert parse_models(text) == []


def test_a_turn_picks_a_model_and_an_effort_among_those_offered() -> None:
    config = HostConfig.parse(
        {
            "supported_models": ["codex", "deep"],
            "model_args": {"deep": {"model": "gpt-5.5", "effort": "xhigh"}},
        }
    )
    assert choose_model(config, MODELS, None, None) == (None, None)
    assert choose_model(config, MODELS, "deep", None) == ("gpt-5.5", "xhigh")
    assert choose_model(config, MODELS, "deep", "low") == ("gpt-5.5", "low")
    assert choose_model(config, MODELS, "gpt-6.2-sol", "ultra") == ("gpt-6.2-sol", "ultra")
    # codex's default model: any effort some listed model takes.
    assert choose_model(config, MODELS, "codex", "max") == (None, "max")
    assert "ultra" not in effort_levels(MODELS, "gpt-5.5")
    for model, effort, field in [
        ("deep", "ultra", "effort"),  # gpt-5.5 stops at xhigh
        ("codex", "hyper", "effort"),
        ("gpt-9", None, "model"),
    ]:
        with pytest.raises(InvalidRequestError) as err:
            choose_model(config, MODELS, model, effort)
        assert err.value.field == field
    # Without a catalog (a codex that cannot list one), any effort goes to codex as given.
    assert choose_model(config, [], "codex", "hyper") == (None, "hyper")
