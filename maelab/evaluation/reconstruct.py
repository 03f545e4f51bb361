"""Reconstruction grids: original | masked input | reconstruction (visible patches as input)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure

from maelab.config import Config, MaskConfig, load_config
from maelab.data import build_splits
from maelab.data.base import ImageSet, Split
from maelab.data.loader import eval_batches
from maelab.engine.build import check_mask_config
from maelab.engine.device import resolve_device
from maelab.errors import ConfigError
from maelab.masking import MaskGeometry, draw_mask
from maelab.models.checkpoints import load_pretrained
from maelab.models.mae import MaskedAutoencoder
from maelab.run_folder import RunFolder

MASKED_GREY = 0.5  # display value of removed patches in the masked-input column


def unnormalise_patches(pred: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
    """Exact inverse of `MaskedAutoencoder.target` with norm-pix: each predicted patch scaled
    back with the true patch's mean and (unbiased) variance, the 1e-6 included."""
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True)
    return pred * (var + 1.0e-6) ** 0.5 + mean


@torch.no_grad()
def reconstruct(
    model: MaskedAutoencoder, imgs: torch.Tensor, mask: MaskConfig, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Images in the model's input space (N, C, H, W) and where the mask removed pixels.

    `reconstruction`: the model's output everywhere (norm-pix predictions un-normalised with the
    true patch's statistics); `pasted`: that output on removed patches and the input itself on
    visible ones (the loss never asks the model to reproduce visible patches); `hidden`: 1 on
    removed pixels, (N, 1, H, W).
    """
    model.eval()
    g = torch.Generator().manual_seed(seed)
    geom = MaskGeometry(model.arch.grid_size, model.patch_size)
    _, pred, removed = model(imgs, mask=draw_mask(mask, imgs.shape[0], geom, g))
    patches = model.patchify(imgs)  # (N, L, p*p*C)
    pred = pred.float()
    if model.norm_pix_loss:
        pred = unnormalise_patches(pred, patches)
    m = removed.unsqueeze(-1).to(patches.dtype)  # (N, L, 1)
    hidden = model.unpatchify(m.expand_as(patches))[:, :1]
    return {
        "original": imgs,
        "reconstruction": model.unpatchify(pred),
        "pasted": model.unpatchify(patches * (1 - m) + pred * m),
        "hidden": hidden,
        "mask": removed,
    }


def to_display(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """Exact inverse of the data normalisation: (C, H, W) model input -> (H, W, C) in [0, 1]."""
    m = torch.tensor(mean).view(-1, 1, 1)
    s = torch.tensor(std).view(-1, 1, 1)
    return (x.cpu().float() * s + m).clamp(0, 1).permute(1, 2, 0)


def spread_rows(labels: torch.Tensor, n: int) -> list[int]:
    """Indices of `n` images spread across classes: the first of each class in turn, then the
    second of each, and so on (a sorted split's first `n` would all be one class)."""
    by_class = [torch.nonzero(labels == c).flatten().tolist() for c in labels.unique().tolist()]
    rows: list[int] = []
    for rank in range(max(len(c) for c in by_class) if by_class else 0):
        rows += [c[rank] for c in by_class if rank < len(c)]
        if len(rows) >= n:
            break
    return rows[:n]


def figure_images(split: Split, n: int) -> ImageSet:
    """Up to `n` images of `split`, spread across classes when its labels are known."""
    if isinstance(split, ImageSet):
        idx = spread_rows(split.labels, n)
        return ImageSet(
            split.images[idx], split.labels[idx], split.num_classes, split.mean, split.std
        )
    data = split.eval_dataset
    labels = getattr(data, "labels", None)  # folder trees keep theirs; others: the first n
    total = len(data)  # type: ignore[arg-type]
    idx = (
        spread_rows(torch.as_tensor(labels), n)
        if labels is not None
        else list(range(min(n, total)))
    )
    items = [data[i] for i in idx]
    images = torch.stack([x for x, _ in items])
    ys = torch.tensor([int(y) for _, y in items], dtype=torch.int64)
    return ImageSet(images, ys, split.num_classes, split.mean, split.std)


def reconstruction_figure(
    model: MaskedAutoencoder,
    split: Split,
    path: str | Path,
    mask: MaskConfig,
    num_images: int = 6,
    seed: int = 0,
) -> Path:
    """Save a PNG grid, one row per image, `num_images` of `split` spread across its classes.

    The images go to the device the model is on.
    """
    device = next(model.parameters()).device
    chosen = figure_images(split, num_images)
    imgs, _ = next(iter(eval_batches(chosen, len(chosen), model.arch.img_size, device)))
    out = reconstruct(model, imgs, mask, seed)
    mean, std = (split.mean, split.std)
    cols = ["original", "masked", "pasted"]
    titles = {
        "original": "original",
        "masked": f"masked ({mask.ratio:.0%})",
        "pasted": "reconstruction + visible",
    }
    n = imgs.shape[0]
    # a Figure without pyplot: drawing never touches the user's matplotlib backend
    fig = Figure(figsize=(len(cols) * 1.6, n * 1.6 + 0.3))
    axes = fig.subplots(n, len(cols), squeeze=False)
    cmap = "gray" if imgs.shape[1] == 1 else None
    for i in range(n):
        hidden = out["hidden"][i].cpu().permute(1, 2, 0).bool()  # (H, W, 1)
        shown = {
            "original": to_display(out["original"][i], mean, std),
            "masked": to_display(out["original"][i], mean, std).masked_fill(hidden, MASKED_GREY),
            "pasted": to_display(out["pasted"][i], mean, std),
        }
        for j, key in enumerate(cols):
            img = shown[key]
            axes[i, j].imshow(img.squeeze(-1) if cmap else img, cmap=cmap, vmin=0, vmax=1)
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
            if i == 0:
                axes[i, j].set_title(titles[key], fontsize=8)
    note = "norm-pix output un-normalised per true patch" if model.norm_pix_loss else "pixel output"
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
    return reconstruction_figure(model, split, run.reconstruction_figure, mask)


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
