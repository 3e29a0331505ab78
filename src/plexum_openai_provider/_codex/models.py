"""The models the codex in use offers: what ``codex debug models`` prints, read tolerantly.

codex 0.163-0.171 print ``{"models": [{"slug", "display_name", "description",
"default_reasoning_level", "supported_reasoning_levels": [{"effort", "description"}],
"visibility": "list" | "hide", "priority", "tool_mode"?, …}, …]}`` (the catalog it ships, the
same whatever CODEX_HOME); app-server's ``model/list`` gives the same models, order and efforts
(checked on 0.163 and 0.171), so one list serves both engines. A listed
model is one a user can pick (``visibility`` ``list``), in codex's order (``priority``, lowest
first: on 0.169 gpt-6.1-sol, the default of a ChatGPT install; on 0.171 gpt-6.2-sol).
``tool_mode: "code_mode_only"`` marks a code-mode model (its tools are called from JavaScript
in ``exec``).

Anything unexpected (an older codex without the command, an entry without a slug) leaves that
entry out, or the list empty: never an error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..config import HostConfig
from ..errors import InvalidRequestError
from .guard import run_briefly

__all__ = ["CodexModel", "choose_model", "effort_levels", "list_models", "parse_models"]

_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class CodexModel:
    id: str  # codex's slug, what --model takes
    display_name: str
    efforts: tuple[str, ...]  # reasoning efforts, lowest first
    default_effort: str | None
    description: str = ""
    code_mode: bool = False
    priority: int = 1_000_000

    def describe(self) -> dict[str, Any]:
        """What ``initialize`` reports of it."""
        return {
            "id": self.id,
            "display_name": self.display_name,
            "description": self.description,
            "efforts": list(self.efforts),
            "default_effort": self.default_effort,
            "code_mode": self.code_mode,
        }


def _model(entry: Any) -> CodexModel | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("slug"), str):
        return None
    levels = entry.get("supported_reasoning_levels")
    efforts = tuple(
        str(level["effort"])
        for level in levels or []
        if isinstance(level, dict) and isinstance(level.get("effort"), str)
    )
    default = entry.get("default_reasoning_level")
    priority = entry.get("priority")
    return CodexModel(
        id=entry["slug"],
        display_name=str(entry.get("display_name") or entry["slug"]),
        efforts=efforts,
        default_effort=default if isinstance(default, str) else None,
        description=str(entry.get("description") or ""),
        code_mode=entry.get("tool_mode") == "code_mode_only",
        priority=priority if isinstance(priority, int) else 1_000_000,
    )


def parse_models(text: str) -> list[CodexModel]:
    """The listed models of ``codex debug models``' output, in codex's order."""
    try:
        data = json.loads(text)
    except ValueError:
        return []
    entries = data.get("models") if isinstance(data, dict) else None
    models = []
    for entry in entries if isinstance(entries, list) else []:
        model = _model(entry)
        if model is not None and entry.get("visibility", "list") == "list":
            models.append(model)
    return sorted(models, key=lambda m: m.priority)


async def list_models(binary: str, env: Mapping[str, str]) -> list[CodexModel]:
    """The models ``binary`` offers ([] where it cannot say)."""
    try:
        done = await run_briefly([binary, "debug", "models"], timeout=_TIMEOUT_S, env=env)
    except OSError:
        return []
    if done.returncode != 0:
        return []
    return parse_models(done.stdout.decode("utf-8", "replace"))


def effort_levels(models: Sequence[CodexModel], model: str | None) -> tuple[str, ...]:
    """The reasoning efforts a turn of ``model`` (codex's name; None: codex's default) may ask
    for: the model's own where codex lists it, else every listed model's (() when codex lists
    none: any effort goes to codex as given)."""
    listed = {m.id: m for m in models}
    if model is not None and model in listed:
        return listed[model].efforts
    return tuple(dict.fromkeys(e for m in models for e in m.efforts))


def choose_model(
    config: HostConfig,
    models: Sequence[CodexModel],
    requested: str | None,
    effort: str | None,
) -> tuple[str | None, str | None]:
    """(codex's model, the reasoning effort) of a turn that asked for ``requested`` (an
    advertised model id, a model codex lists, or None: the first advertised) and ``effort``
    (None: the one ``model_args`` gives, else the model's default). InvalidRequestError naming
    ``model`` or ``effort`` for one that is not offered."""
    name = requested or config.supported_models[0]
    if name in config.supported_models:
        model = config.model_arg(name)
        effort = effort or config.model_effort(name)
    elif any(m.id == name for m in models):
        model = name
    else:
        offered = [*config.supported_models, *(m.id for m in models)]
        raise InvalidRequestError(
            f"model {name!r} is not advertised (supported: {', '.join(offered)})", field="model"
        )
    levels = effort_levels(models, model)
    if effort is not None and levels and effort not in levels:
        raise InvalidRequestError(
            f"effort {effort!r} is not a reasoning effort of {model or 'the default model'}"
            f" (it takes {', '.join(levels)})",
            field="effort",
        )
    return model, effort
