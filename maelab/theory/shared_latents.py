"""Which latents of the synthetic hierarchy a mask leaves shared between its two parts.

Kong et al. (2023): MAE recovers the latents that the visible and the masked part have in
common. In the synthetic world the latents form a tree (z_g -> z_r -> z_c -> the cell's
patches, each node with its own noise, no pixel-to-pixel edges), so a node's own noise
(z_g itself for the root, e_r for a region, e_c for a cell) influences exactly the patches
below it. It is *shared* when the patches below it include a visible and a masked one; the
nodes with that property form a set that d-separates the visible from the masked pixels
(every path between a visible and a masked patch turns at their lowest common ancestor).
docs/theory.md ("Which latents a mask shares") gives the derivation and the predictions.

Pure functions on tensors: the layout comes from `maelab.data.synthetic.synthetic_layout`,
the mask is any boolean (N, L) tensor with True = masked (removed) patch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from maelab.metric_names import CELL_NOISE, GLOBAL, REGION_NOISE


@dataclass(frozen=True)
class SharedLatents:
    """Per image, which nodes' own noise is shared between the visible and the masked part."""

    global_shared: torch.Tensor  # (N,) bool: a visible and a masked patch exist
    region_shared: torch.Tensor  # (N, R) bool: region r has a visible and a masked patch
    cell_shared: torch.Tensor | None  # (N, C) bool; None when a patch is larger than a cell

    def fractions(self) -> dict[str, float]:
        """Averages over images (and positions): the share of nodes of each level that are
        shared, e.g. ``{"global": 1.0, "region_noise": 0.0, "cell_noise": 0.0}``."""
        out = {
            GLOBAL: self.global_shared.float().mean().item(),
            REGION_NOISE: self.region_shared.float().mean().item(),
        }
        if self.cell_shared is not None:
            out[CELL_NOISE] = self.cell_shared.float().mean().item()
        return out


def mixed_groups(mask: torch.Tensor, group: torch.Tensor, num_groups: int) -> torch.Tensor:
    """For each image and group, whether the group holds a masked and a visible patch.

    ``mask`` (N, L) bool (True = masked); ``group`` (L,) long, the group of each patch.
    Returns (N, num_groups) bool. A group without patches is never mixed.
    """
    if mask.dim() != 2 or group.shape != mask.shape[1:]:
        raise ValueError(
            f"mask (N, L) and group (L,) disagree: {tuple(mask.shape)}, {tuple(group.shape)}"
        )
    n = mask.shape[0]
    index = group.to(mask.device).expand(n, -1)
    masked = torch.zeros(n, num_groups, device=mask.device)
    visible = torch.zeros(n, num_groups, device=mask.device)
    masked.scatter_add_(1, index, mask.float())
    visible.scatter_add_(1, index, (~mask).float())
    return (masked > 0) & (visible > 0)


def shared_latents(
    mask: torch.Tensor,
    patch_region: torch.Tensor,
    patch_cell: torch.Tensor | None,
    num_regions: int | None = None,
    num_cells: int | None = None,
) -> SharedLatents:
    """Which nodes a mask (N, L) leaves shared (see the module docstring).

    ``patch_region`` / ``patch_cell`` (L,) long map each patch to its region / cell, as
    `synthetic_layout` returns them; the counts default to the largest index + 1.
    """
    mask = mask.bool()
    regions = num_regions if num_regions is not None else int(patch_region.max()) + 1
    all_one = torch.zeros_like(patch_region)
    global_shared = mixed_groups(mask, all_one, 1)[:, 0]
    region_shared = mixed_groups(mask, patch_region, regions)
    cell_shared = None
    if patch_cell is not None:
        cells = num_cells if num_cells is not None else int(patch_cell.max()) + 1
        cell_shared = mixed_groups(mask, patch_cell, cells)
    return SharedLatents(global_shared, region_shared, cell_shared)
