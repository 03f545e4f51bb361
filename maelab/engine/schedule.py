"""Learning-rate schedule: linear warmup, then half-cycle cosine, evaluated per iteration."""

from __future__ import annotations

import math


def lr_at(
    step: float, total_steps: float, warmup_steps: float, base_lr: float, min_lr: float = 0.0
) -> float:
    """lr at (fractional) optimizer step `step` of `total_steps` (official MAE schedule)."""
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    span = max(total_steps - warmup_steps, 1e-12)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def scaled_lr(blr: float, effective_batch: int) -> float:
    """The linear scaling rule: lr = blr * effective_batch / 256."""
    return blr * effective_batch / 256
