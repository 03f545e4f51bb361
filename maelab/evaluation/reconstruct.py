"""Reconstruction grids: original | masked input | reconstruction | reconstruction + visible."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure

from maelab.config import Config, MaskConfig, load_config
from maelab.data import build_splits
from maelab.data.base import Split
from maelab.data.loader import eval_batches
from maelab.engine.build import check_mask_config
from maelab.engine.device import resolve_device
from maelab.errors import ConfigError
from maelab.evaluation.checkpoints import load_pretrained
from maelab.masking import MaskGeometry, mask_noise_for
from maelab.models.mae import MaskedAutoencoder
from maelab.run_folder import RunFolder

RUN_FIGURE = "reconstruction.png"  # the grid every pretraining run gets in RUN/figures/


@torch.no_grad()
def reconstruct(
    model: MaskedAutoencoder, imgs: torch.Tensor, mask: MaskConfig, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Images in the model's input space (N, C, H, W): masked input, reconstruction, pasted.

    With norm-pix targets the prediction of each patch is mapped back with the mean and
    variance of the true patch, the usual way to display such models.
    """
    model.eval()
    g = torch.Generator().manual_seed(seed)
    geom = MaskGeometry(model.arch.grid_size, model.patch_size)
    noise = mask_noise_for(mask, imgs.shape[0], geom, g).to(imgs.device)
    _, pred, removed = model(imgs, mask_ratio=mask.ratio, noise=noise)
    target = model.patchify(imgs)  # (N, L, p*p*C)
    if model.norm_pix_loss:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        pred = pred * (var + 1.0e-6) ** 0.5 + mean
    m = removed.unsqueeze(-1)  # (N, L, 1)
    return {
        "original": imgs,
        "masked": model.unpatchify(target * (1 - m)),
        "reconstruction": model.unpatchify(pred),
        "pasted": model.unpatchify(target * (1 - m) + pred * m),
        "mask": removed,
    }


def _to_display(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    m = torch.tensor(mean).view(-1, 1, 1)
    s = torch.tensor(std).view(-1, 1, 1)
    return (x.cpu().float() * s + m).clamp(0, 1).permute(1, 2, 0)


def reconstruction_figure(
    model: MaskedAutoencoder,
    split: Split,
    path: str | Path,
    mask: MaskConfig,
    num_images: int = 6,
    seed: int = 0,
) -> Path:
    """Save a PNG grid, one row per image, for the first `num_images` of `split`.

    The images go to the device the model is on.
    """
    device = next(model.parameters()).device
    imgs, _ = next(iter(eval_batches(split, num_images, model.arch.img_size, device)))
    out = reconstruct(model, imgs, mask, seed)
    mean, std = (split.mean, split.std)
    cols = ["original", "masked", "reconstruction", "pasted"]
    titles = {
        "original": "original",
        "masked": f"masked ({mask.ratio:.0%})",
        "reconstruction": "reconstruction",
        "pasted": "reconstruction + visible",
    }
    n = imgs.shape[0]
    # a Figure without pyplot: drawing never touches the user's matplotlib backend
    fig = Figure(figsize=(4 * 1.6, n * 1.6))
    axes = fig.subplots(n, 4, squeeze=False)
    cmap = "gray" if imgs.shape[1] == 1 else None
    for i in range(n):
        for j, key in enumerate(cols):
            img = _to_display(out[key][i], mean, std)
            axes[i, j].imshow(img.squeeze(-1) if cmap else img, cmap=cmap, vmin=0, vmax=1)
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
            if i == 0:
                axes[i, j].set_title(titles[key], fontsize=8)
    note = (
        "norm-pix output un-normalised with each true patch's mean/std"
        if model.norm_pix_loss
        else "pixel output"
    )
    fig.suptitle(f"{mask.strategy} mask, seed {seed}; {note}", fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def write_reconstruction_figure(
    model: MaskedAutoencoder, split: Split, mask: MaskConfig, run: RunFolder
) -> Path:
    """RUN/figures/reconstruction.png of a pretrained model: its test split, its mask."""
    return reconstruction_figure(model, split, run.figures / RUN_FIGURE, mask)


def reconstruct_config(
    ckpt_config: dict[str, Any], files: list[str] | None = None, overrides: list[str] | None = None
) -> Config:
    """The checkpoint's own config, then YAML files, then `key=value` overrides (e.g. mask.ratio)."""
    return load_config(files, overrides, Config, base=ckpt_config)


def reconstruct_checkpoint(
    ckpt: str | Path,
    cfg: Config,
    out: str | Path | None = None,
    num_images: int = 8,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> Path:
    """A reconstruction grid of a pretraining checkpoint on the test split of `cfg.data`.

    `out` defaults to RUN/figures/reconstruction_{strategy}_{ratio}_seed{seed}.png; `device`
    to `cfg.train.device`.
    """
    device = device if device is not None else resolve_device(cfg.train.device)

    model, _ = load_pretrained(ckpt, need_decoder=True)
    check_mask_config(cfg.mask, model)
    split = build_splits(cfg.data).test
    if split.channels != model.arch.in_chans:
        raise ConfigError(
            f"data.name={cfg.data.name} has {split.channels} channel(s) but the checkpoint's "
            f"encoder takes {model.arch.in_chans}"
        )
    m = cfg.mask
    if out is None:
        name = f"reconstruction_{m.strategy}_{m.ratio:g}_seed{seed}.png"
        out = RunFolder.of_checkpoint(ckpt).figures / name
    return reconstruction_figure(model.to(device), split, out, m, num_images, seed)
