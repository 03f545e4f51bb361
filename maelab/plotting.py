"""Saving matplotlib figures as PNGs, without touching the user's matplotlib backend.

Figures built with `new_figure` (a plain `matplotlib.figure.Figure`) render through Agg on their
own, so no backend switch and no display is needed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure


def new_figure(**kwargs: Any) -> Figure:
    """A figure outside pyplot's registry (nothing to close, no backend involved)."""
    return Figure(**kwargs)


def save_figure(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Tight layout, write a PNG (creating its folder), release the figure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    # a figure made through pyplot stays alive in pyplot's registry until closed; pyplot is only
    # imported (and only holds figures) where a caller drew with it
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)
    return path
