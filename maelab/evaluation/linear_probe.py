"""Linear probe on frozen features: BatchNorm without affine + Linear (the MAE recipe, scaled down).

The official recipe (LARS, blr 0.1, batch 16384, 90 epochs, 10 warmup) runs about 7,000 steps
at lr 6.4; LARS moves each weight matrix by `lr * 0.001 * ||W||` per step, which at the small
batches of small datasets (lr = 0.1 * 256 / 256) barely leaves the initialisation. SGD with
momentum is therefore the default here; `optimizer: lars` reproduces the official update rule.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from maelab.config import Strict
from maelab.engine.schedule import lr_at, scaled_lr
from maelab.evaluation.knn import topk_accuracy
from maelab.evaluation.lars import LARS


class LinearProbeConfig(Strict):
    """The linear head's training recipe."""

    epochs: int = Field(90, ge=1)
    batch_size: int = Field(256, ge=2)  # BatchNorm needs two rows
    optimizer: Literal["sgd", "lars"] = "sgd"
    blr: float = 0.1  # lr = blr * batch / 256 unless `lr` is set
    lr: float | None = None
    min_lr: float = 0.0
    warmup_epochs: float = 10.0
    momentum: float = 0.9
    weight_decay: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class ProbeResult:
    top1: float  # percent, test split
    top5: float | None  # percent; None with 5 classes or fewer
    train_top1: float  # percent, training features (a gap to top1 shows over-fitting)
    lr: float
    steps: int
    seconds: float


def probe_head(
    dim: int, num_classes: int, generator: torch.Generator | None = None
) -> nn.Sequential:
    """BN(affine=False, eps=1e-6) + Linear with the official init (weights N(0, 0.01), bias 0)."""
    head = nn.Sequential(nn.BatchNorm1d(dim, affine=False, eps=1e-6), nn.Linear(dim, num_classes))
    nn.init.trunc_normal_(head[1].weight, std=0.01, generator=generator)
    nn.init.zeros_(head[1].bias)
    return head


@contextmanager
def _single_thread_on_cpu(device: torch.device) -> Iterator[None]:
    """The head's per-step ops are tiny: on a CPU, thread hand-offs cost more than they save
    (measured 25x slower with 2 threads on a busy 2-core machine)."""
    if device.type != "cpu":
        yield
        return
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def _train(
    head: nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: LinearProbeConfig,
    base_lr: float,
    batch: int,
    g: torch.Generator,
) -> None:
    n = x.shape[0]
    steps_per_epoch = max(1, n // batch)  # drop the remainder, as the official loader
    for epoch in range(cfg.epochs):
        order = torch.randperm(n, generator=g)[: steps_per_epoch * batch].view(
            steps_per_epoch, batch
        )
        for it in range(steps_per_epoch):
            lr = lr_at(
                epoch + it / steps_per_epoch, cfg.epochs, cfg.warmup_epochs, base_lr, cfg.min_lr
            )
            for group in opt.param_groups:
                group["lr"] = lr
            idx = order[it].to(x.device)
            loss = F.cross_entropy(head(x[idx].float()), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


@torch.no_grad()
def _logits(head: nn.Module, x: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    head.eval()
    return torch.cat([head(x[i : i + chunk].float()) for i in range(0, x.shape[0], chunk)])


def linear_probe(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    num_classes: int,
    cfg: LinearProbeConfig | None = None,
) -> ProbeResult:
    """Train the head on (train_x, train_y) with warmup + cosine, report test top-1 / top-5.

    Deterministic for `cfg.seed`: the init and every epoch's order come from one generator.
    Runs on the device of `train_x`.
    """
    cfg = cfg or LinearProbeConfig()
    n, dim = train_x.shape
    if n < 2:
        raise ValueError("the linear probe needs at least 2 training rows (BatchNorm statistics)")
    g = torch.Generator().manual_seed(cfg.seed)
    device = train_x.device
    head = probe_head(dim, num_classes, g).to(device)
    batch = min(cfg.batch_size, n)
    steps_per_epoch = max(1, n // batch)
    base_lr = cfg.lr if cfg.lr is not None else scaled_lr(cfg.blr, batch)
    if cfg.optimizer == "lars":
        opt: torch.optim.Optimizer = LARS(
            head.parameters(), lr=base_lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum
        )
    else:
        opt = torch.optim.SGD(
            head.parameters(), lr=base_lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    train_y = train_y.long().to(device)
    t0 = time.time()
    head.train()
    with _single_thread_on_cpu(device):
        _train(head, opt, train_x, train_y, cfg, base_lr, batch, g)
    test_scores = _logits(head, test_x)
    test_y = test_y.long().to(test_scores.device)
    return ProbeResult(
        top1=topk_accuracy(test_scores, test_y, 1),
        top5=topk_accuracy(test_scores, test_y, 5) if num_classes > 5 else None,
        train_top1=topk_accuracy(_logits(head, train_x), train_y, 1),
        lr=base_lr,
        steps=cfg.epochs * steps_per_epoch,
        seconds=time.time() - t0,
    )
