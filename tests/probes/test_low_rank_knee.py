"""Cao Q2 as an experiment: the knee of the low-rank optimum sits at k = visible patches, and the
verdict flips between a model that reaches the optimum and one that does not."""

from __future__ import annotations

import pytest
import torch

from maelab.config import DataConfig, LowRankConfig
from maelab.data import build_splits
from maelab.data.base import Splits
from maelab.masking import mask_from_noise, num_keep
from maelab.models import MaskedAutoencoder
from maelab.models.mae import patchify
from maelab.probes.inputs import normalised
from maelab.probes.low_rank import (
    Q2_MARGIN,
    conditional_patches,
    knee_error,
    measured_knee,
    patch_covariance,
    q2_experiment,
)
from maelab.probes.questions import question_row
from maelab.verdicts import decide_table

ARCH = dict(
    img_size=16, patch_size=4, in_chans=3, embed_dim=32, depth=1, num_heads=2,
    decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2, norm_pix_loss=False,
)  # fmt: skip


def family(rank: int, num_train: int = 256, num_test: int = 96) -> Splits:
    cfg = DataConfig(name="lowrank", num_train=num_train, num_test=num_test)
    return build_splits(cfg.model_copy(update={"lowrank": LowRankConfig(rank=rank)}))


def optimum_error(splits: Splits, ratio: float) -> float:
    """Unexplained share of the removed patches' variance for the covariance predictor."""
    mean, cov = patch_covariance(patchify(normalised(splits.train), 4))
    x = patchify(normalised(splits.test), 4).double()
    noise = torch.rand(x.shape[0], 16, generator=torch.Generator().manual_seed(0))
    keep = num_keep(16, ratio)
    visible, removed = noise.argsort(1)[:, :keep], noise.argsort(1)[:, keep:]
    err = (conditional_patches(x, visible, mean, cov) - x).pow(2).mean(-1)
    return float(torch.gather(err, 1, removed).mean() / x.var(0).mean())


def test_the_formula() -> None:
    assert [knee_error(k, 4) for k in (1, 2, 4, 8, 16)] == [0.0, 0.0, 0.0, 0.5, 0.75]
    assert measured_knee({1: 0.0, 2: 0.01, 4: 0.02, 8: 0.5, 16: 0.75}) == 4
    assert measured_knee({1: 0.3, 2: 0.01}) is None
    assert measured_knee({1: 0.0, 2: 0.3, 4: 0.0}) == 1  # the first crossing decides
    with pytest.raises(ValueError):
        knee_error(0, 4)


@pytest.mark.parametrize(("ratio", "visible"), [(0.75, 4), (0.5, 8)])
def test_the_optimum_has_its_knee_where_the_formula_puts_it(ratio: float, visible: int) -> None:
    errors = {k: optimum_error(family(k), ratio) for k in (2, visible, 2 * visible)}
    for k, err in errors.items():
        assert err == pytest.approx(knee_error(k, visible), abs=0.06), (k, err)
    assert measured_knee(errors) == visible


class OracleMAE(MaskedAutoencoder):
    """Predicts the removed patches with the data-only optimum (a test double for a model that
    has learnt the family)."""

    def __init__(self, fit: torch.Tensor, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.stats = patch_covariance(patchify(fit, self.patch_size))

    def forward(self, imgs, mask_ratio=0.75, noise=None, mask=None):  # type: ignore[no-untyped-def]
        m = mask if mask is not None else mask_from_noise(noise, mask_ratio)
        pred = conditional_patches(patchify(imgs, self.patch_size), m.ids_keep, *self.stats)
        removed = m.removed.float()
        return self.forward_loss(imgs, pred.float(), removed), pred.float(), removed


def test_the_verdict_flips_between_an_untrained_and_an_optimal_model() -> None:
    splits = family(2)
    torch.manual_seed(0)
    untrained = q2_experiment(
        MaskedAutoencoder(**ARCH), splits.test, rank=2, fit_images=splits.train
    )
    oracle = q2_experiment(
        OracleMAE(normalised(splits.train), **ARCH), splits.test, rank=2, fit_images=splits.train
    )
    for res in (untrained, oracle):
        assert res.question == "Q2" and res.margin == Q2_MARGIN and res.predicted == "none"
        assert len(res.paired) == 96
        assert res.details["visible"] == 4 and res.details["formula_error"] == 0.0
        assert res.control_value < 0.02  # rank 2 <= 4 visible: the optimum reconstructs
    assert untrained.treated > 0.5
    assert oracle.treated == pytest.approx(oracle.control_value, abs=1e-4)
    rows = decide_table([question_row(untrained), question_row(oracle)])
    assert [r.outcome for r in rows] == ["disagrees", "agrees"]


def test_without_fit_images_half_of_the_images_fit_the_reference() -> None:
    splits = family(8, num_test=64)
    torch.manual_seed(0)
    res = q2_experiment(MaskedAutoencoder(**ARCH), splits.test, rank=8, num_masks=1)
    assert len(res.paired) == 32
    assert res.details["formula_error"] == 0.5
    assert res.control_value == pytest.approx(0.5, abs=0.15)  # 32 fit images: a rough optimum
