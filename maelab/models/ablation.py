"""Transformer blocks with one component of Cao et al.'s stability argument removed.

Cao, Xu, Clifton (2022) explain why representations stay stable from layer to layer by the skip
connections and by the scaled, softmax-normalised attention. Each ablation removes one of them:

* ``no_skip``: ``x -> attn(norm1(x))``, then ``-> mlp(norm2(.))`` (no residual paths);
* ``no_scale``: attention logits ``q k^T`` without the ``1 / sqrt(head_dim)`` factor;
* ``no_softmax``: attention weights ``exp(s) / T`` (T tokens) instead of ``exp(s) / sum exp(s)``:
  the same positive kernel, divided by a constant rather than by its row sum, so the weights
  start near the uniform ``1 / T`` as with softmax and only the per-row normalisation is gone.

``none`` is the timm ``Block`` itself, untouched. An ablated block is a subclass with the same
parameters (same names, same init), so checkpoints and interop read it like a plain block.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from timm.models.vision_transformer import Attention, Block
from torch import nn

ABLATIONS: tuple[str, ...] = ("none", "no_skip", "no_scale", "no_softmax")


def check_ablation(ablation: str) -> None:
    """Raise ValueError naming the valid options."""
    if ablation not in ABLATIONS:
        raise ValueError(f"ablation={ablation!r}: expected one of {', '.join(ABLATIONS)}")


def attention_weights(attn: Attention, x: torch.Tensor, ablation: str = "none") -> torch.Tensor:
    """Attention weights (N, heads, T, T) of a timm ``Attention`` on its input ``x`` (N, T, D)
    under ``ablation`` (rows sum to 1 unless the softmax normalisation is removed)."""
    n, t, _ = x.shape
    head_dim = attn.qkv.out_features // (3 * attn.num_heads)
    qkv = attn.qkv(x).reshape(n, t, 3, attn.num_heads, head_dim).permute(2, 0, 3, 1, 4)
    q, k, _ = qkv.unbind(0)  # (N, H, T, hd)
    q, k = attn.q_norm(q), attn.k_norm(k)
    scale = 1.0 if ablation == "no_scale" else attn.scale
    logits = (q * scale) @ k.transpose(-2, -1)  # (N, H, T, T)
    if ablation == "no_softmax":
        return logits.exp() / t
    return logits.softmax(dim=-1)


def ablated_attention(attn: Attention, x: torch.Tensor, ablation: str) -> torch.Tensor:
    """The output of a timm ``Attention`` (N, T, D) with its weights computed under
    ``ablation``; projections, norms and dropouts as in timm's non-fused path."""
    n, t, _ = x.shape
    head_dim = attn.qkv.out_features // (3 * attn.num_heads)
    v = attn.qkv(x).reshape(n, t, 3, attn.num_heads, head_dim)[:, :, 2].transpose(1, 2)
    weights = attn.attn_drop(attention_weights(attn, x, ablation))
    out = (weights @ v).transpose(1, 2).reshape(n, t, -1)  # (N, T, heads * hd)
    return attn.proj_drop(attn.proj(attn.norm(out)))


class AblatedBlock(Block):
    """A timm ``Block`` whose forward drops one component (see the module docstring)."""

    def __init__(self, *args: object, ablation: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        check_ablation(ablation)
        self.ablation = ablation

    def forward(self, x: torch.Tensor, **_: object) -> torch.Tensor:  # type: ignore[override]
        return block_halves(self, x)[1]


def block_ablation(blk: nn.Module) -> str:
    """The ablation a block runs under ("none" for a plain timm ``Block``)."""
    return getattr(blk, "ablation", "none")


def block_halves(blk: Block, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The stream after the attention half and after the MLP half of a (possibly ablated)
    block: ``x + drop_path1(ls1(attn(norm1(x))))``, then ``+ drop_path2(ls2(mlp(norm2(.))))``,
    without the ``x +`` under ``no_skip``."""
    ablation = block_ablation(blk)
    if ablation in ("no_scale", "no_softmax"):
        update = ablated_attention(blk.attn, blk.norm1(x), ablation)
    else:
        update = blk.attn(blk.norm1(x))
    update = blk.drop_path1(blk.ls1(update))
    mid = update if ablation == "no_skip" else x + update
    update = blk.drop_path2(blk.ls2(blk.mlp(blk.norm2(mid))))
    return mid, update if ablation == "no_skip" else mid + update


def make_block(
    dim: int, num_heads: int, mlp_ratio: float, norm_layer: Callable[..., nn.Module], ablation: str
) -> Block:
    """A timm ``Block`` (``ablation="none"``, the default path) or its ablated subclass."""
    check_ablation(ablation)
    kwargs = dict(qkv_bias=True, norm_layer=norm_layer)
    if ablation == "none":
        return Block(dim, num_heads, mlp_ratio, **kwargs)
    return AblatedBlock(dim, num_heads, mlp_ratio, ablation=ablation, **kwargs)
