"""The ViT MAE as a plain autoencoder: mask.ratio=0 keeps every token and loss.on=all counts
every patch (the comparison of Zhang et al. 2022); ratio 0 with loss.on=masked is refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from maelab.config import load_config
from maelab.engine.checkpoint import _check_arch
from maelab.engine.pretrain import pretrain
from maelab.errors import ConfigError
from maelab.masking import mask_from_noise
from maelab.models import MAEArch, MaskedAutoencoder

TINY = dict(
    img_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=2,
    decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2,
)  # fmt: skip


def model_with(loss_on: str) -> MaskedAutoencoder:
    return MaskedAutoencoder(MAEArch(**TINY, loss_on=loss_on), init_seed=0).eval()


def loss_by_hand(imgs: torch.Tensor, pred: torch.Tensor, counted: np.ndarray) -> float:
    """Norm-pix target per patch with numpy loops, squared error averaged over counted patches."""
    x = imgs.double().numpy()
    p = pred.double().numpy()
    errors = []
    for b in range(x.shape[0]):
        for i in range(4):
            for j in range(4):
                patch = x[b, :, 4 * i : 4 * i + 4, 4 * j : 4 * j + 4].transpose(1, 2, 0).ravel()
                t = (patch - patch.mean()) / np.sqrt(patch.var(ddof=1) + 1e-6)
                if counted[b, 4 * i + j]:
                    errors.append(np.mean((p[b, 4 * i + j] - t) ** 2))
    return float(np.mean(errors))


@pytest.mark.parametrize("ratio", [0.0, 0.75])
def test_loss_on_all_is_the_mean_over_every_patch(ratio: float) -> None:
    model = model_with("all")
    imgs = torch.randn(2, 3, 16, 16)
    mask = mask_from_noise(torch.rand(2, 16), ratio)
    with torch.no_grad():
        loss, pred, _ = model(imgs, mask=mask)
    assert loss.item() == pytest.approx(loss_by_hand(imgs, pred, np.ones((2, 16))), rel=1e-5)


def test_loss_on_masked_counts_the_removed_patches_only() -> None:
    model = model_with("masked")
    imgs = torch.randn(2, 3, 16, 16)
    mask = mask_from_noise(torch.rand(2, 16), 0.75)
    with torch.no_grad():
        loss, pred, removed = model(imgs, mask=mask)
    by_hand = loss_by_hand(imgs, pred, mask.removed.numpy())
    assert loss.item() == pytest.approx(by_hand, rel=1e-5)
    assert torch.equal(removed.bool(), mask.removed)


def test_ratio_zero_keeps_every_token() -> None:
    model = model_with("all")
    imgs = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        latent, removed, ids_restore = model.forward_encoder(imgs, 0.0, torch.rand(2, 16))
        assert latent.shape == (2, 1 + 16, 32) and not removed.any()
        # the visible tokens, put back in raster order, are the unmasked encoder's tokens
        raster = torch.gather(latent[:, 1:], 1, ids_restore.unsqueeze(-1).expand(-1, -1, 32))
        torch.testing.assert_close(raster, model.encode(imgs)[:, 1:])


def test_ratio_zero_with_loss_on_masked_is_one_line() -> None:
    with pytest.raises(ConfigError, match="mask.ratio=0 with loss.on=masked") as exc:
        load_config(overrides=["mask.ratio=0"])
    assert "\n" not in str(exc.value)
    with pytest.raises(ConfigError, match="mask.ratio=0 with loss.on=masked"):
        load_config(overrides=["mask.ratio_range=[0, 0]"])
    for kind in ("vit", "linear"):
        assert load_config(overrides=[f"model.kind={kind}", "mask.ratio=0", "loss.on=all"])


def test_the_engine_trains_a_plain_autoencoder(tmp_path) -> None:
    cfg = load_config(overrides=["model.preset=micro",
        f"run_dir={tmp_path / 'run'}", "data.num_train=64", "data.num_test=8",
        "data.num_workers=0", "mask.ratio=0", "loss.on=all", "train.epochs=1",
        "train.batch_size=32", "train.device=cpu", "train.threads=1",
    ])  # fmt: skip
    result = pretrain(cfg, quiet=True)
    assert result.steps == 2 and np.isfinite(result.final_loss)
    assert result.model.arch.loss_on == "all"


def test_a_checkpoint_from_before_the_fields_resumes_with_their_defaults(tmp_path) -> None:
    model = model_with("masked")
    old = {k: v for k, v in model.arch_dict().items() if k not in ("code_dim", "loss_on")}
    _check_arch({"arch": old}, model, tmp_path / "old.pt")  # no error
    with pytest.raises(Exception, match="loss_on: checkpoint masked vs config all"):
        _check_arch({"arch": old}, model_with("all"), tmp_path / "old.pt")
