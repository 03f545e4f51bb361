"""The low-rank image family: uint8 images of the declared size whose patch matrix has rank k."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from maelab.config import DataConfig, LowRankConfig, load_config
from maelab.data import build_splits, get_dataset
from maelab.data.low_rank_family import (
    MID_GREY,
    generate_low_rank,
    loadings,
    unpatchify,
)
from maelab.errors import ConfigError
from maelab.models.mae import patchify

CONFIGS = Path(__file__).resolve().parents[2] / "maelab" / "configs"


def centred_patches(images: torch.Tensor, cfg: LowRankConfig) -> torch.Tensor:
    return (patchify(images.double(), cfg.patch_size) - MID_GREY) / cfg.contrast


@pytest.mark.parametrize("rank", [1, 2, 4, 8])
def test_the_centred_patch_matrix_has_rank_k(rank: int) -> None:
    cfg = LowRankConfig(rank=rank)
    out = generate_low_rank(8, cfg, 16, seed=3)
    assert out.images.dtype == torch.uint8 and out.images.shape == (8, 3, 16, 16)
    s = torch.linalg.svdvals(centred_patches(out.images, cfg))  # (8, 16)
    # rank k up to quantisation (std 0.29 grey levels) and clipping at 0 / 255 (~0.1% of the
    # values): a gap after the k-th singular value
    assert float(s[:, rank - 1].min()) > 1.0
    assert float(s[:, rank].median()) < 0.1
    beyond = s[:, rank:].pow(2).sum(dim=1) / s.pow(2).sum(dim=1)
    assert float(beyond.max()) < 0.01


def test_the_loadings_are_shared_and_the_patterns_drawn_per_image() -> None:
    cfg = LowRankConfig(rank=2)
    a = loadings(cfg, 16)
    torch.testing.assert_close(a.norm(dim=1), torch.ones(16, dtype=torch.float64))
    first, again = generate_low_rank(4, cfg, 16, seed=1), generate_low_rank(4, cfg, 16, seed=1)
    assert torch.equal(first.images, again.images)
    other = generate_low_rank(4, cfg, 16, seed=2)
    assert not torch.equal(first.images, other.images)
    # every image's patches lie in the column space of the same A: projecting it out leaves
    # only quantisation and clipping
    m = centred_patches(torch.cat([first.images, other.images]), cfg)  # (8, L, D)
    q, _ = torch.linalg.qr(a)
    residual = m - q @ (q.T @ m)
    assert float(residual.pow(2).sum() / m.pow(2).sum()) < 1e-3


def test_unpatchify_inverts_patchify() -> None:
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(unpatchify(patchify(x, 4), 4, 3), x)


def test_the_dataset_is_registered_and_builds_splits() -> None:
    assert not get_dataset("lowrank").augment
    cfg = DataConfig(name="lowrank", num_train=64, num_test=16, lowrank=LowRankConfig(rank=2))
    splits = build_splits(cfg)
    assert splits.train.images.shape == (64, 3, 16, 16)
    assert splits.test.images.shape == (16, 3, 16, 16)
    assert splits.test.mean == splits.train.mean
    assert 0 <= int(splits.train.labels.min()) and int(splits.train.labels.max()) <= 9
    assert len(set(splits.train.labels.tolist())) >= 5  # deciles: most classes occur in 64
    assert not splits.train.latents  # no latents: the identifiability probes skip this family
    wide = build_splits(cfg.model_copy(update={"image_size": 32}))
    assert wide.train.images.shape[-1] == 32


def test_impossible_ranks_and_patch_sizes_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="rank=17"):
        generate_low_rank(2, LowRankConfig(rank=17), 16, seed=0)
    with pytest.raises(ConfigError, match="patch_size=5"):
        generate_low_rank(2, LowRankConfig(patch_size=5), 16, seed=0)


def test_the_pretraining_config_trains_on_the_family() -> None:
    cfg = load_config([str(CONFIGS / "lowrank.yaml")], ["data.lowrank.rank=8"])
    assert cfg.data.name == "lowrank" and cfg.data.lowrank.rank == 8
    assert cfg.model.patch_size == cfg.data.lowrank.patch_size
    assert not cfg.model.norm_pix_loss
