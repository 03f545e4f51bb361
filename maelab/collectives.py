"""Collectives that a loss may call inside the training step (below the engine, which sets up
the process group): a gather that keeps gradients."""

from __future__ import annotations

import torch
import torch.distributed as dist


def all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate `x` (N, ...) from every process along dim 0, keeping gradients.

    The backward of `torch.distributed.nn.all_gather` sums the incoming gradients over ranks,
    which together with DDP's gradient averaging gives exactly the single-process gradient of a
    loss computed identically on every rank.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    # imported here: on torch builds without distributed support this module may not import
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x), dim=0)
