"""What every report section reads: the collected folder, its seed-pooled groups, the reference
axis values and the folder the section's figures go to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maelab.report.collect import Collected, Group, group_runs
from maelab.report.page import Section
from maelab.report.slicing import reference_values


@dataclass(frozen=True)
class ReportContext:
    collected: Collected
    groups: list[Group]  # finished runs pooled over seeds, in sweep order
    ref: dict[str, Any]  # axis -> its most common value (see slicing.reference_values)
    fig_dir: Path  # where sections write their PNGs

    @classmethod
    def of(cls, collected: Collected, fig_dir: Path) -> ReportContext:
        groups = group_runs(collected.runs, collected.keys if collected.kind == "sweep" else [])
        return cls(collected, groups, reference_values(groups, collected.keys), fig_dir)


# A section of the page: None when it has nothing to show for this folder.
SectionBuilder = Callable[[ReportContext], Section | None]
