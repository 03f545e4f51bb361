"""The studies' declarations against docs/theory.md: the margin table is `MARGINS`, word for
word, and every row of every study takes its margin from it; the rows tables in the docs carry
the margins the declarations use, paper by paper."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from maelab.experiments.declaration import MARGINS, Study
from maelab.experiments.studies.cao_q4 import cao_q4
from maelab.experiments.studies.kong_code import WORLD_FULL
from maelab.experiments.studies.real_images import REAL_IMAGES
from maelab.experiments.studies.world import WORLD

THEORY = Path(__file__).resolve().parents[2] / "docs" / "theory.md"
STUDIES: list[Study] = [WORLD_FULL, REAL_IMAGES.labelled("digits"), cao_q4(4)]


def docs_table(header: str) -> list[list[str]]:
    """The body rows of the markdown table under `header` (its first line, verbatim)."""
    lines = THEORY.read_text().splitlines()
    start = lines.index(header) + 2  # skip the |---| line
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def numbers(cell: str) -> set[float]:
    return {float(x) for x in re.findall(r"\d+\.\d+", cell)}


def test_the_margin_table_is_the_declared_margins() -> None:
    table = docs_table("| readout (per-seed value) | margin | why |")
    assert {r[0]: float(r[1]) for r in table} == {m.readout: m.value for m in MARGINS}


@pytest.mark.parametrize("study", STUDIES, ids=lambda s: s.name)
def test_every_row_takes_a_declared_margin(study: Study) -> None:
    for row in study.rows:
        assert any(row.margin is m for m in MARGINS), row.claim
        assert set(row.gates) <= set(study.gates), row.claim
        assert set(row.conditions) <= set(study.conditions), row.claim


def test_the_rows_tables_carry_the_declarations_margins() -> None:
    header = "| paper | row | per-seed value | prediction | margin | kind | gate |"
    declared: dict[str, set[float]] = {}
    for study in (WORLD_FULL, REAL_IMAGES):
        for row in study.rows:
            declared.setdefault(row.paper, set()).add(row.margin.value)
    documented: dict[str, set[float]] = {}
    for paper, *_, margin, _kind, _gate in docs_table(header):
        if paper in declared:
            documented.setdefault(paper, set()).update(numbers(margin))
    assert documented == declared
    q4 = docs_table("| row | per-seed value | prediction | margin | gate |")
    assert {float(r[3]) for r in q4} == {r.margin.value for r in cao_q4(4).rows}
    assert len(q4) == len(cao_q4(4).rows)


def test_the_world_declaration_has_the_documented_rows() -> None:
    assert len(WORLD.rows) == 15 and len(WORLD_FULL.rows) == 20
    assert list(WORLD.conditions) == ["patch", "cell", "region", "straddled", "umae"]
    assert len(REAL_IMAGES.rows) == 6
