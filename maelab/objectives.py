"""Training objectives (a registry). Each maps (model, images, mask ratio, noise) to a loss.

The engine calls objectives inside the (DDP-wrapped) training module, so they may use the
model's sub-methods freely.

Adding an objective is one function plus `@register_objective("name")`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from maelab.collectives import all_gather_with_grad
from maelab.config import ObjectiveConfig
from maelab.metrics import uniformity_loss
from maelab.models.mae import MaskedAutoencoder
from maelab.models.pooling import pool_tokens


@dataclass
class ObjectiveOutput:
    loss: torch.Tensor  # scalar to backpropagate
    pred: torch.Tensor  # (N, L, p*p*C)
    mask: torch.Tensor  # (N, L), 1 = removed
    logs: dict[str, torch.Tensor] = field(default_factory=dict)  # detached scalars


Objective = Callable[
    [MaskedAutoencoder, torch.Tensor, float, torch.Tensor | None, ObjectiveConfig], ObjectiveOutput
]
OBJECTIVES: dict[str, Objective] = {}


def register_objective(name: str) -> Callable[[Objective], Objective]:
    def wrap(fn: Objective) -> Objective:
        OBJECTIVES[name] = fn
        return fn

    return wrap


@register_objective("mae")
def mae_objective(
    model: MaskedAutoencoder,
    imgs: torch.Tensor,
    mask_ratio: float,
    noise: torch.Tensor | None,
    cfg: ObjectiveConfig,
) -> ObjectiveOutput:
    """Pixel (or norm-pix) regression on removed patches (He et al. 2022)."""
    loss, pred, mask = model(imgs, mask_ratio=mask_ratio, noise=noise)
    return ObjectiveOutput(loss, pred, mask, {"mae": loss.detach()})


@register_objective("umae")
def umae_objective(
    model: MaskedAutoencoder,
    imgs: torch.Tensor,
    mask_ratio: float,
    noise: torch.Tensor | None,
    cfg: ObjectiveConfig,
) -> ObjectiveOutput:
    """MAE + lambda * uniformity of the masked view's features (U-MAE, Zhang et al. 2022).

    Features are gathered over processes so the term sees the global batch.
    """
    latent, mask, ids_restore = model.forward_encoder(imgs, mask_ratio, noise)
    pred = model.forward_decoder(latent, ids_restore)
    mae = model.forward_loss(imgs, pred, mask)
    z = all_gather_with_grad(pool_tokens(latent, cfg.umae_feature))
    uni = uniformity_loss(z.float())
    loss = mae + cfg.umae_lambda * uni
    return ObjectiveOutput(loss, pred, mask, {"mae": mae.detach(), "uniformity": uni.detach()})


def get_objective(name: str) -> Objective:
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective '{name}' (valid: {', '.join(OBJECTIVES)})")
    return OBJECTIVES[name]
