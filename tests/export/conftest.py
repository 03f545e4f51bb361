"""Checkpoints to export, made here at test size: maelab runs (3 and 1 channels), a fine-tuned
run and official-layout files (encoder only, and with a decoder)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from maelab.config import load_config
from maelab.engine.pretrain import pretrain
from maelab.evaluation.finetune import finetune, finetune_run_config
from maelab.models import MaskedAutoencoder
from maelab.models.checkpoints import load_checkpoint
from maelab.models.interop import encoder_state_dict

TINY = dict(patch_size=4, embed_dim=64, depth=2, num_heads=4, decoder_embed_dim=32,
            decoder_depth=2, decoder_num_heads=4)  # fmt: skip
# official layout: 128 wide, so that the 64-channels-a-head rule reads the same 2 heads
OFFICIAL = dict(img_size=32, patch_size=4, embed_dim=128, depth=2, num_heads=2,
                decoder_embed_dim=64, decoder_depth=1, decoder_num_heads=2)  # fmt: skip


def perturb(sd: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """Every tensor moved off its init (biases, norms, tables too): a tensor mapped to the wrong
    place cannot hide behind a zero or a one."""
    g = torch.Generator().manual_seed(seed)
    return {k: v + 0.05 * torch.randn(v.shape, generator=g) for k, v in sd.items()}


def pretrain_run(run_dir: Path, *extra: str) -> Path:
    """A 1-epoch maelab run, its weights then perturbed in place (the file stays a run's)."""
    over = [f"run_dir={run_dir}", "data.num_train=128", "data.num_test=32", "train.batch_size=64",
            "train.epochs=1", "data.num_workers=0", "model.preset=null",
            *[f"model.{k}={v}" for k, v in TINY.items()], *extra]  # fmt: skip
    pretrain(load_config([], over), quiet=True)
    path = run_dir / "checkpoints" / "last.pt"
    state = load_checkpoint(path)
    state["model"] = perturb(state["model"], seed=1)
    torch.save(state, path)
    return path


@pytest.fixture(scope="session")
def run_ckpt(tmp_path_factory) -> Path:
    """Synthetic data, 16 px, 3 channels."""
    return pretrain_run(tmp_path_factory.mktemp("run") / "rgb")


@pytest.fixture(scope="session")
def grey_ckpt(tmp_path_factory) -> Path:
    """scikit-learn digits, 16 px, 1 channel."""
    return pretrain_run(tmp_path_factory.mktemp("run") / "grey", "data.name=digits")


def official_model() -> MaskedAutoencoder:
    torch.manual_seed(0)
    model = MaskedAutoencoder(**OFFICIAL, norm_pix_loss=False).eval()
    model.load_state_dict(perturb(model.state_dict(), seed=2))
    return model


@pytest.fixture(scope="session")
def official_full(tmp_path_factory) -> Path:
    """Official layout with a decoder, as `mae_visualize_vit_*.pth` (`{"model": sd}`)."""
    path = tmp_path_factory.mktemp("official") / "mae_visualize_vit_test.pth"
    torch.save({"model": official_model().state_dict()}, path)
    return path


@pytest.fixture(scope="session")
def official_encoder(tmp_path_factory) -> Path:
    """Official layout, encoder only, as `mae_pretrain_vit_*.pth`."""
    path = tmp_path_factory.mktemp("official") / "mae_pretrain_vit_test.pth"
    torch.save({"model": encoder_state_dict(official_model())}, path)
    return path


def finetune_run(ckpt: Path, run_dir: Path, pool: str) -> Path:
    """One epoch of `maelab finetune` on the run's data; returns its checkpoint."""
    stored = load_checkpoint(ckpt)["config"]
    over = [f"run_dir={run_dir}", "finetune.epochs=1", "finetune.batch_size=32",
            "data.num_train=64", "data.num_test=32", f"finetune.global_pool={pool}"]  # fmt: skip
    finetune(ckpt, finetune_run_config(stored, overrides=over), quiet=True)
    return run_dir / "checkpoints" / "last.pt"


@pytest.fixture(scope="session")
def finetuned_avg(grey_ckpt, tmp_path_factory) -> Path:
    return finetune_run(grey_ckpt, tmp_path_factory.mktemp("ft") / "avg", "avg")


@pytest.fixture(scope="session")
def finetuned_token(grey_ckpt, tmp_path_factory) -> Path:
    return finetune_run(grey_ckpt, tmp_path_factory.mktemp("ft") / "token", "token")
