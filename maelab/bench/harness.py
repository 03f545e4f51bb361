"""What is timed: each implementation's model with maelab's initial weights and its training
step (masking, forward, loss, backward, AdamW step, zero_grad), and the check that they agree."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from maelab.bench.peers import hf_peer, textbook_peer
from maelab.engine.optim import build_adamw, param_groups
from maelab.models import MAEArch, MaskedAutoencoder

IMPLS = ("maelab", "hf", "timm-ref")
EXTRA_IMPLS = ("maelab-compiled",)  # torch.compile of maelab's model (train.compile=true)
MASK_RATIO = 0.75
LR, WEIGHT_DECAY, BETAS = 1.5e-4, 0.05, (0.9, 0.95)

Step = Callable[[torch.Tensor], None]


@dataclass(frozen=True)
class BenchConfig:
    preset: str
    batch: int
    steps: int  # timed steps per repeat
    repeats: int
    warmup: int  # untimed steps per implementation before the first repeat


CONFIGS = {
    "tiny": BenchConfig("tiny", batch=128, steps=3, repeats=5, warmup=2),
    "vit-b": BenchConfig("vit_base_patch16", batch=8, steps=1, repeats=3, warmup=1),
}


def build(
    impl: str, arch: MAEArch, device: torch.device, optimizer: str = "native"
) -> tuple[nn.Module, Step]:
    """The model of `impl` with maelab's initial weights (seed 0) and its training step.

    optimizer "native": each implementation's own default AdamW (maelab: `build_adamw`;
    HF: fused, the Trainer's default on torch >= 2.8; textbook: `torch.optim.AdamW` defaults,
    as the official `main_pretrain.py`). "fused" / "foreach" / "forloop": that for all three.
    """
    torch.manual_seed(0)
    ours = MaskedAutoencoder(arch)
    if impl in ("maelab", "maelab-compiled"):
        model: nn.Module = ours
    elif impl == "hf":
        model = hf_peer(ours, MASK_RATIO)
    elif impl == "timm-ref":
        model = textbook_peer(ours)
    else:
        raise ValueError(
            f"unknown implementation '{impl}' (valid: {', '.join(IMPLS + EXTRA_IMPLS)})"
        )
    del ours
    model = model.to(device).train()
    opt = make_optimizer(impl, model, device, optimizer)
    if impl == "maelab-compiled":
        model = torch.compile(model)

    if impl == "hf":

        def loss_of(x: torch.Tensor) -> torch.Tensor:
            return model(pixel_values=x).loss
    else:

        def loss_of(x: torch.Tensor) -> torch.Tensor:
            return model(x, MASK_RATIO)[0]

    def step(x: torch.Tensor) -> None:
        loss_of(x).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return model, step


def make_optimizer(
    impl: str, model: nn.Module, device: torch.device, kind: str
) -> torch.optim.Optimizer:
    """AdamW for `impl`: "native" is each implementation's own default, else `kind` for all."""
    if kind == "native" and impl.startswith("maelab"):
        return build_adamw(model, LR, WEIGHT_DECAY, BETAS, device)
    if kind == "native":
        kind = "fused" if impl == "hf" else "default"
    flags = {"fused": {"fused": True}, "foreach": {"foreach": True}, "forloop": {"foreach": False}}
    return torch.optim.AdamW(
        param_groups(model, WEIGHT_DECAY), lr=LR, betas=BETAS, **flags.get(kind, {})
    )


def same_loss_check(arch: MAEArch, impls: list[str], device: torch.device) -> dict[str, float]:
    """Loss of each implementation on one batch with one fixed mask: they must agree."""
    torch.manual_seed(1)
    x = torch.randn(4, arch.in_chans, arch.img_size, arch.img_size, device=device)
    noise = torch.rand(4, arch.num_patches, device=device)
    losses = {}
    for impl in impls:
        model, _ = build(impl, arch, device)
        with torch.no_grad():
            if impl == "hf":
                losses[impl] = float(model(pixel_values=x, noise=noise).loss)
            else:
                losses[impl] = float(model(x, MASK_RATIO, noise=noise)[0])
    ref = losses[impls[0]]
    bad = {k: v for k, v in losses.items() if abs(v - ref) > 1e-4 * max(1.0, abs(ref))}
    if bad:
        raise RuntimeError(
            f"implementations disagree on the loss with shared weights and mask: {losses}"
        )
    return losses
