"""Every end-to-end test runs on each engine (one parameter, not a copy), unless it is marked
``one_engine`` because it does not depend on how codex is driven, or ``engines(name, …)``
because it tests what only those engines do."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import CURRENT, ENGINES


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    only = metafunc.definition.get_closest_marker("engines")
    if metafunc.definition.get_closest_marker("one_engine"):
        metafunc.parametrize("engine", ENGINES[:1], indirect=True)
    elif only is not None:
        metafunc.parametrize("engine", [e for e in ENGINES if e in only.args], indirect=True)
    else:
        metafunc.parametrize("engine", ENGINES, indirect=True)


@pytest.fixture(autouse=True)
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    name = request.param
    CURRENT["engine"] = name
    yield name
    CURRENT["engine"] = "exec"
