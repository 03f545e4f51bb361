"""Cao Q2 as an experiment: the knee of the low-rank optimum sits at k = visible patches, the knee
row compares where the model's error curve bends with where the optimum's does (by hand), and
the verdict flips between a model that reaches the optimum and one that does not."""

from __future__ import annotations

import math

import pytest
import torch

from maelab.config import DataConfig, LowRankConfig
from maelab.data import build_splits
from maelab.data.base import Splits
from maelab.data.low_rank_family import at_rank, rank_ladder
from maelab.masking import mask_from_noise, num_keep
from maelab.models import MaskedAutoencoder
from maelab.models.mae import patchify
from maelab.probes.inputs import normalised
from maelab.probes.low_rank import (
    Q2_KNEE_MARGIN,
    conditional_patches,
    knee_error,
    knee_offsets,
    knee_position,
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
    """Predicts the removed patches with the data-only optimum of the images it is given (a
    test double for a model that has learnt every rank of the family)."""

    def forward(self, imgs, mask_ratio=0.75, noise=None, mask=None):  # type: ignore[no-untyped-def]
        m = mask if mask is not None else mask_from_noise(noise, mask_ratio)
        x = patchify(imgs, self.patch_size)
        pred = conditional_patches(x, m.ids_keep, *patch_covariance(x))
        removed = m.removed.float()
        return self.forward_loss(imgs, pred.float(), removed), pred.float(), removed


def ladder(ranks=(1, 2, 4, 8, 16), num_test: int = 48) -> dict:
    return {k: (family(k, num_test=num_test).test, family(k, num_test=num_test).train)
            for k in ranks}  # fmt: skip


def test_knee_offsets_by_hand() -> None:
    """Two curves per rank: image 0 bends at 4 like the optimum, image 1 already at 2 (one
    doubling early), and a curve above the threshold everywhere bends below the ladder."""
    optimum = {1: [0.0, 0.0], 2: [0.0, 0.0], 4: [0.01, 0.02], 8: [0.5, 0.5], 16: [0.75, 0.7]}
    model = {1: [0.1, 0.1], 2: [0.2, 0.1], 4: [0.24, 0.3], 8: [0.6, 0.5], 16: [0.8, 0.8]}
    t = {k: torch.tensor(v) for k, v in model.items()}
    o = {k: torch.tensor(v) for k, v in optimum.items()}
    assert knee_offsets(t, o).tolist() == [0.0, -1.0]
    assert knee_position({k: 0.9 for k in optimum}) == -1.0  # log2(1) - 1
    assert knee_position({2: 0.0, 4: 0.1, 8: 0.3}) == 2.0
    with pytest.raises(ValueError, match="differ"):
        knee_offsets({1: torch.zeros(2)}, o)


def test_the_knee_row_flips_between_an_untrained_and_an_optimal_model() -> None:
    """The optimum bends at k = 4 (0.75 of 16 patches); so does an oracle, image by image (row
    agrees: offset 0); an untrained decoder never comes below the threshold (disagrees)."""
    rungs = ladder()
    untrained = MaskedAutoencoder(**ARCH, init_seed=0)
    oracle = OracleMAE(**ARCH, init_seed=0)
    good = q2_experiment(oracle, rungs[4][0], rungs, rank=4, untrained=untrained, num_masks=2)
    bad = q2_experiment(untrained, rungs[4][0], rungs, rank=4, num_masks=2)
    assert good.predicted == "none" and good.margin == Q2_KNEE_MARGIN and len(good.paired) == 48
    assert good.details["optimum_knee"] == 4 and good.details["model_knee"] == 4
    assert good.details["formula_knee"] == 4 and good.details["gap_at_rank"] == pytest.approx(
        0.0, abs=1e-3
    )
    assert good.treated == pytest.approx(2.0) and max(abs(v) for v in good.paired) == 0.0
    assert math.isnan(good.details["untrained_knee"]) and good.details["untrained_offset"] == -3.0
    assert bad.treated == -1.0 and bad.control_value == pytest.approx(2.0)
    rows = decide_table([question_row(bad), question_row(good)])
    # the interval of the bad row lies at -3 doublings, the good row's at 0 (within the margin);
    # without a positive control both read inconclusive (verdicts.UNSEEN) rather than decided
    assert rows[0].ci[1] < -Q2_KNEE_MARGIN and rows[1].ci == (0.0, 0.0)
    assert [r.outcome for r in rows] != ["agrees", "disagrees"]
    with pytest.raises(ValueError, match=">= 2 ranks"):
        q2_experiment(oracle, rungs[4][0], {4: rungs[4]})


def test_the_ladder_holds_the_family_at_each_rank() -> None:
    cfg = LowRankConfig(rank=3)
    assert rank_ladder(cfg) == [1, 2, 3, 4, 8, 16]
    data = DataConfig(name="lowrank", num_train=8, num_test=8)
    low, high = at_rank(data, 2), at_rank(data, 8)
    for splits, k in ((low, 2), (high, 8)):  # uint8 rounding leaves a small floor past rank k
        s = torch.linalg.svdvals(patchify(splits.test.images.double() - 127.5, 4)).pow(2)
        assert bool((s[:, :k].sum(1) / s.sum(1) > 0.99).all())
        assert bool((s[:, : k - 1].sum(1) / s.sum(1) < 0.99).all())
