"""The linear MAE: the ViT MAE's signature and loss on zero-filled images, seeded init, and
maelab's engine training it (model.kind=linear, loss.on)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from maelab.config import load_config
from maelab.engine.pretrain import pretrain
from maelab.masking import mask_from_noise
from maelab.models.linear import LinearArch, LinearMAE
from maelab.models.mae import patchify


def test_forward_matches_a_hand_computation() -> None:
    model = LinearMAE(LinearArch(img_size=8, patch_size=2, code_dim=5), init_seed=0)
    x = torch.randn(3, 1, 8, 8)
    noise = torch.rand(3, 16)
    loss, pred, mask = model(x, 0.75, noise)
    assert pred.shape == (3, 16, 4) and mask.shape == (3, 16)
    ref_mask = mask_from_noise(noise, 0.75).removed.float()
    assert torch.equal(mask, ref_mask)
    keep = (1 - ref_mask).view(3, 1, 4, 4).repeat_interleave(2, 2).repeat_interleave(2, 3)
    w = model.end_to_end()
    out = ((x * keep).reshape(3, -1) @ w.T).view(3, 1, 8, 8)
    assert torch.allclose(pred, patchify(out, 2), atol=1e-6)
    per_patch = (pred - patchify(x, 2)).pow(2).mean(-1)
    assert torch.allclose(loss, (per_patch * mask).sum() / mask.sum())


def test_a_mask_value_replaces_ratio_and_noise() -> None:
    model = LinearMAE(LinearArch(img_size=8, patch_size=2, code_dim=5), init_seed=0)
    x, noise = torch.randn(3, 1, 8, 8), torch.rand(3, 16)
    by_noise = model(x, 0.5, noise)
    by_mask = model(x, mask=mask_from_noise(noise, 0.5))
    assert all(torch.equal(a, b) for a, b in zip(by_noise, by_mask, strict=True))
    with pytest.raises(ValueError, match="not both"):
        model(x, 0.5, noise, mask=mask_from_noise(noise, 0.5))


def test_loss_on_all_counts_every_patch() -> None:
    model = LinearMAE(LinearArch(img_size=8, patch_size=2, loss_on="all"), init_seed=0)
    x = torch.randn(2, 1, 8, 8)
    loss, pred, _ = model(x, 0.0, torch.rand(2, 16))
    assert torch.allclose(loss, (pred - patchify(x, 2)).pow(2).mean())


def test_full_rank_is_one_map_and_rank_k_a_product() -> None:
    full = LinearMAE(LinearArch(img_size=8, patch_size=2), init_seed=0)
    assert isinstance(full.decoder, torch.nn.Identity)
    assert torch.equal(full.end_to_end(), full.encoder.weight)
    k = LinearMAE(LinearArch(img_size=8, patch_size=2, code_dim=4), init_seed=0)
    assert k.encode(torch.randn(2, 1, 8, 8)).shape == (2, 1, 4)
    assert torch.linalg.matrix_rank(k.end_to_end()) == 4


def test_seeded_init_is_reproducible_and_leaves_the_global_rng() -> None:
    state = torch.random.get_rng_state()
    a = LinearMAE(LinearArch(img_size=8, patch_size=2, code_dim=4), init_seed=3)
    assert torch.equal(state, torch.random.get_rng_state())
    b = LinearMAE(LinearArch(img_size=8, patch_size=2, code_dim=4), init_seed=3)
    assert torch.equal(a.end_to_end(), b.end_to_end())
    c = LinearMAE(LinearArch(img_size=8, patch_size=2, code_dim=4), init_seed=4)
    assert not torch.equal(a.end_to_end(), c.end_to_end())


def test_bad_arch_is_refused() -> None:
    with pytest.raises(ValueError, match="divisible"):
        LinearArch(img_size=10, patch_size=4).validate()


def test_engine_trains_the_linear_mae(tmp_path) -> None:
    cfg = load_config(overrides=[
        f"run_dir={tmp_path / 'run'}", "data.name=gaussian", "data.num_train=4096",
        "data.num_test=16", "data.gaussian.image_size=8", "model.kind=linear",
        "model.patch_size=2", "model.code_dim=4", "model.norm_pix_loss=false", "mask.ratio=0.5",
        "train.epochs=2", "train.batch_size=128", "train.lr=0.01", "train.weight_decay=0",
        "train.warmup_epochs=0.1", "train.device=cpu",
    ])  # fmt: skip
    result = pretrain(cfg, quiet=True)
    assert isinstance(result.model, LinearMAE) and result.steps == 64
    assert result.final_loss < 0.9 * result.first_loss
    assert result.model.arch.code_dim == 4 and result.model.arch_dict()["kind"] == "linear"
    w = result.model.end_to_end().numpy()
    assert np.isfinite(w).all()
