"""Figures are saved without pyplot and without switching the user's matplotlib backend."""

import subprocess
import sys

import matplotlib.pyplot as plt
import pytest

from maelab.plotting import new_figure, save_figure
from maelab.report import figures

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_save_figure_leaves_the_backend_alone(tmp_path):
    code = (
        "import matplotlib; matplotlib.use('svg')\n"
        "from maelab.plotting import new_figure, save_figure\n"
        "fig = new_figure(figsize=(2, 2)); fig.subplots().plot([0, 1], [1, 0])\n"
        f"save_figure(fig, {str(tmp_path / 'a.png')!r})\n"
        "print(matplotlib.get_backend())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "svg"
    assert (tmp_path / "a.png").read_bytes()[:8] == PNG_MAGIC


def test_save_figure_still_closes_pyplot_figures(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    assert fig.number in plt.get_fignums()
    save_figure(fig, tmp_path / "sub" / "b.png")
    assert fig.number not in plt.get_fignums()
    assert (tmp_path / "sub" / "b.png").read_bytes()[:8] == PNG_MAGIC


def test_report_figures_do_not_use_pyplot(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("pyplot used")

    monkeypatch.setattr(plt, "figure", refuse)
    monkeypatch.setattr(plt, "subplots", refuse)
    path = figures.curves_figure({"run": [(0, 2.0), (1, 1.0)]}, tmp_path / "c.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    path = figures.bars_figure({"MAE": {"rank": (3.0, 0.5)}}, ["rank"], tmp_path / "d.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    fig = new_figure()
    assert fig.canvas.manager is None  # not registered with pyplot


@pytest.mark.parametrize("dpi", [50, 100])
def test_save_figure_dpi_sets_the_pixel_size(tmp_path, dpi):
    fig = new_figure(figsize=(2, 1))
    fig.subplots()
    path = save_figure(fig, tmp_path / "e.png", dpi=dpi)
    width = int.from_bytes(path.read_bytes()[16:20], "big")  # IHDR width
    assert width == 2 * dpi
