"""Kong's code readout (`code_selectivity`, `code_metrics`) and the redraw behind the positive
controls (`maelab.data.redraw`), on the study world: an oracle code reads its latent at R^2 ~1,
noise at ~0, and a redraw of a share q of the images keeps (1 - q)^2 of a linear readout's R^2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from maelab import metric_names as m
from maelab.config import load_config
from maelab.data.redraw import redraw_latent
from maelab.data.synthetic import generate_synthetic
from maelab.evaluation.features import CODE, Features
from maelab.experiments.studies.kong_code import KONG_CODE, WORLD_FULL
from maelab.experiments.study_readout import code_metrics, readout_masks, redraw_share
from maelab.models.mae import MaskedAutoencoder
from maelab.models.presets import arch_from_config
from maelab.probes.selectivity import code_selectivity

WORLD_YAML = Path(__file__).resolve().parents[2] / "maelab" / "configs" / "study_world.yaml"


@pytest.fixture(scope="module")
def world():
    cfg = load_config([str(WORLD_YAML)], ["model.code_dim=4", "model.embed_dim=32",
                                          "model.depth=1", "model.num_heads=2"])  # fmt: skip
    sc = cfg.data.synthetic
    return cfg, generate_synthetic(600, sc, 1), generate_synthetic(600, sc, 2)


def code_of(x: torch.Tensor) -> Features:
    return Features({CODE: x.float()}, CODE)


def test_an_oracle_code_reads_its_latent_and_noise_reads_nothing(world) -> None:
    _, fit, held = world
    oracle = lambda s: s.latents["region_noise"].flatten(1)  # noqa: E731
    res = code_selectivity(code_of(oracle(fit)), fit, code_of(oracle(held)), held)
    assert res[m.E_R] > 0.98
    noise = code_selectivity(code_of(torch.randn(600, 8)), fit, code_of(torch.randn(600, 8)), held)
    assert abs(noise[m.E_R]) < 0.05 and abs(noise[m.Z_G]) < 0.05


def test_a_redraw_keeps_one_minus_q_squared_of_a_linear_readout(world) -> None:
    """The oracle code of the redrawn images: the share q that should cost 0.3 of R^2 ~1 does."""
    cfg, fit, held = world
    q = redraw_share(1.0, 0.3)
    assert (1 - q) ** 2 == pytest.approx(0.7)
    g = torch.Generator().manual_seed(0)
    redrawn = [redraw_latent(s, cfg.data.synthetic, "region_noise", q, g) for s in (fit, held)]
    # the redrawn images' e_r, read back from their own pixels through the world's inverse:
    # here the oracle is the latent each image now carries (the donor's, where redrawn)
    changed = [
        (r.images != s.images).flatten(1).any(1) for r, s in zip(redrawn, (fit, held), strict=True)
    ]
    assert abs(changed[0].float().mean().item() - q) < 0.02
    carried = []
    for s, c in zip((fit, held), changed, strict=True):
        e = s.latents["region_noise"].clone()
        idx = torch.nonzero(c).flatten()
        e[idx] = torch.randn(len(idx), *e.shape[1:], generator=g)  # an independent draw
        carried.append(e.flatten(1))
    res = code_selectivity(code_of(carried[0]), fit, code_of(carried[1]), held)
    assert res[m.E_R] == pytest.approx(0.7, abs=0.06)


def test_code_metrics_of_a_code_model(world) -> None:
    cfg, fit, held = world
    model = MaskedAutoencoder(arch_from_config(cfg.model, 32, 3), init_seed=1)
    masks = readout_masks(cfg.mask, model, len(fit), len(held), seed=1)
    out = code_metrics(model, cfg, fit, held, masks)
    for source in (m.ENCODER, m.RANDOM):
        for r in (m.Z_G, m.S_G, m.E_R, m.E_C):
            assert np.isfinite(out[m.selectivity(r, source, m.CODE)]), (source, r)
    assert np.isfinite(out[m.positive_control(m.selectivity(m.E_R, view=m.CODE))])


def test_the_code_study_is_part_of_full_and_fixed_by_the_map() -> None:
    assert set(KONG_CODE.conditions) <= set(WORLD_FULL.conditions)
    for values in KONG_CODE.conditions.values():
        assert values["model.code_dim"] == 8
        assert values["data.synthetic.region_noise_std"] == 0.6
    assert all(r.positive for r in KONG_CODE.rows)
