"""Every figure table in the docs names the command that measured it and the commit it was measured at.

The convention (docs/results.md states it): a *figure table* is a Markdown table most of whose body
cells (first column aside) are measured numbers: ``81.2 ± 0.2``, ``606 ms``, ``**+2.5** better``,
``0.61 (0.608, 0.609)``. The paragraph right after it starts with ``Measured:`` and holds a
command in backticks (or the table has a ``command`` column) and ``commit`` followed by a commit
hash (7 to 40 hex digits). docs/quality.md, the record of the levers tried, keeps its own form: each
of its sections names the run its tables come from.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXEMPT = {"quality.md"}

_NUMBER = r"[+\-−]?\d[\d,]*(?:\.\d+)?"
_FIGURE_CELL = re.compile(
    rf"^{_NUMBER}(?:\s*±\s*{_NUMBER})?(?:\s*(?:%|ms|s|min|MB|KB|°|x|img/s|pairs/s))?"
    rf"(?:\s*\([^)]*\))?(?:\s+(?:better|tie|worse))?$"
)
_MEASURED = re.compile(r"^Measured:")
_COMMIT = re.compile(r"\bcommits?\b[^|]*?\b[0-9a-f]{7,40}\b")


def _cells(line: str) -> list[str]:
    return [c.strip().replace("**", "") for c in line.strip().strip("|").split("|")]


def tables(text: str) -> list[tuple[int, list[str], list[list[str]], str]]:
    """(line number, header cells, body rows, the paragraph right after it) of each Markdown table."""
    lines = text.splitlines()
    found, i = [], 0
    while i < len(lines) - 1:
        if lines[i].startswith("|") and re.match(r"^\|\s*:?-{3}", lines[i + 1]):
            start, header, j = i + 1, _cells(lines[i]), i + 2
            body = []
            while j < len(lines) and lines[j].startswith("|"):
                body.append(_cells(lines[j]))
                j += 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            paragraph = []
            while j < len(lines) and lines[j].strip():
                paragraph.append(lines[j].strip())
                j += 1
            after = " ".join(paragraph)
            found.append((start, header, body, after))
            i = j
        else:
            i += 1
    return found


def is_figure_table(body: list[list[str]]) -> bool:
    """More than half of the body cells right of the first column are measured numbers."""
    cells = [c for row in body for c in row[1:]]
    return bool(cells) and sum(bool(_FIGURE_CELL.match(c)) for c in cells) > len(cells) / 2


def test_the_convention_tells_figure_tables_from_other_tables():
    assert is_figure_table([["`full`", "85.5 ± 0.3", "**+2.5** better"], ["a", "606 ms", "0.61 (0.608, 0.600)"]])
    assert not is_figure_table([["`optim.lr`", "1.2", "peak learning rate"], ["`steps`", "1000", "steps"]])
    assert not is_figure_table([["`instance`", "0 empty background, 1 floor", "uint16"]])


@pytest.mark.parametrize("doc", [d for d in DOCS if d.name not in EXEMPT], ids=lambda d: d.name)
def test_each_figure_table_names_its_command_and_commit(doc):
    problems = []
    for line, header, body, after in tables(doc.read_text(encoding="utf-8")):
        if not is_figure_table(body):
            continue
        has_command = "`" in after or any(h.lower() == "command" for h in header)
        if not (_MEASURED.match(after) and has_command and _COMMIT.search(after)):
            problems.append(
                f"{doc.name}:{line}: the paragraph after the table must be 'Measured: `command` ... commit abc1234'"
            )
    assert not problems, "\n".join(problems)
