"""Every probe's figure writes a PNG; the registry runs probes by name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from maelab.config import SyntheticConfig
from maelab.data.base import ImageSet
from maelab.data.synthetic import generate_synthetic
from maelab.models import MaskedAutoencoder
from maelab.probes import PROBES, figures, get_probe, run_theory_probe
from maelab.probes.decoder import decoder_ablation
from maelab.probes.identifiability import pixel_identifiability

PNG = b"\x89PNG"


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:4] == PNG


def test_registry_names() -> None:
    assert set(PROBES) == {
        "identifiability", "position", "low_rank", "stability", "interpolation", "decoder_ablation",
    }  # fmt: skip
    assert get_probe("decoder_ablation").kind == "runs"
    assert get_probe("identifiability").needs_latents
    with pytest.raises(ValueError, match="unknown probe"):
        get_probe("nope")


@pytest.mark.parametrize("name", ["position", "low_rank", "stability", "interpolation"])
def test_model_probe_figures(
    name: str, images: ImageSet, make_model: Callable[..., MaskedAutoencoder], tmp_path: Path
) -> None:
    out = tmp_path / "figs" / f"{name}.png"
    result = run_theory_probe(name, make_model(), images, figure_path=out, max_images=16)
    assert result is not None and _is_png(out)


def test_identifiability_figures(
    make_model: Callable[..., MaskedAutoencoder], tmp_path: Path
) -> None:
    images = generate_synthetic(80, SyntheticConfig(), seed=2)
    model = make_model()
    a = run_theory_probe("identifiability", model, images, max_images=40, kernel=False, label="tiny",
                  figure_path=tmp_path / "one.png")  # fmt: skip
    b = pixel_identifiability(images, 4, max_images=40)
    assert _is_png(tmp_path / "one.png")
    assert _is_png(figures.identifiability_figure([a, b], tmp_path / "two.png"))
    points = [(0.5, a), (0.5, b), (0.75, a)]
    assert _is_png(figures.identifiability_trend_figure(points, tmp_path / "trend.png"))


def test_comparison_and_decoder_figures(
    images: ImageSet, make_model: Callable[..., MaskedAutoencoder], tmp_path: Path
) -> None:
    runs = {
        f"seed {s}": PROBES["stability"].run(make_model(s), images, max_images=8) for s in (0, 1)
    }
    assert _is_png(figures.stability_figure(runs, tmp_path / "q3.png"))
    pos = {"a": PROBES["position"].run(make_model(), images, max_images=8)}
    assert _is_png(figures.position_figure(pos, tmp_path / "q1.png"))
    rows = [
        {"decoder_depth": d, "decoder_embed_dim": w, "linear": 0.1 * d, "knn": 0.05 * d,
         "effective_rank": 10.0 + d, "seed": s}
        for d in (1, 2, 4) for w in (32, 64) for s in (0, 1)
    ]  # fmt: skip
    table = run_theory_probe("decoder_ablation", rows, figure_path=tmp_path / "q4.png")
    assert len(table.cells) == 6 and _is_png(tmp_path / "q4.png")
    assert _is_png(figures.decoder_ablation_figure(decoder_ablation(rows), tmp_path / "q4b.png"))
