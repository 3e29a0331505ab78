"""What the README says is so: each figure it quotes from docs/performance.md is that page's."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent.parent

# A quoted figure carries a marker right after it: `294<!-- perf: ROW | COLUMN -->` (the cell of
# the performance table whose row starts with ROW, in the column named COLUMN) or
# `25–50 ms<!-- perf: text -->` (the figure with its unit, in the page's text).
MARKED = re.compile(r"(\d[\d.,–]*(?: ?(?:MiB|ms|s))?)<!-- perf: (.+?) -->")


def tables(markdown: str) -> list[list[list[str]]]:
    """The page's tables, as rows of cells (the header first, the |---| line left out)."""
    out: list[list[list[str]]] = []
    rows: list[list[str]] = []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= {"-"} for c in cells):
                rows.append(cells)
        elif rows:
            out.append(rows)
            rows = []
    return out


def cell(markdown: str, row: str, column: str) -> str:
    found = [
        body[header.index(column)]
        for header, *bodies in tables(markdown)
        if column in header
        for body in bodies
        if body[0].startswith(row)
    ]
    assert len(found) == 1, f"docs/performance.md: {len(found)} cells for {row!r} | {column!r}"
    return found[0]


def test_every_figure_the_readme_quotes_is_the_performance_pages() -> None:
    readme = (ROOT / "README.md").read_text()
    page = (ROOT / "docs" / "performance.md").read_text()
    quoted = MARKED.findall(readme)
    assert len(quoted) >= 4  # the marks are there (the check cannot pass on none)
    for figure, where in quoted:
        if where == "text":
            assert figure in page, (
                f"README quotes {figure!r}, which docs/performance.md does not say"
            )
        else:
            row, column = (part.strip() for part in where.split("|"))
            assert cell(page, row, column) == figure, (figure, row, column)
    # No figure in the README names the page without being checked.
    for line in readme.splitlines():
        if "docs/performance.md" in line and re.search(r"\d+ ?(?:MiB|ms)\b", line):
            assert "<!-- perf:" in line, line
