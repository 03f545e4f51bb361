"""LARS (You et al. 2017) as in the official MAE linear-probe code (`util/lars.py`)."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def lars_update(
    p: torch.Tensor, grad: torch.Tensor, weight_decay: float, trust_coefficient: float
) -> torch.Tensor:
    """The direction added to the momentum buffer: for matrices, (g + wd * p) rescaled so that its
    norm is `trust_coefficient * ||p||`; vectors (biases, norms) keep the raw gradient."""
    if p.ndim <= 1:
        return grad
    dp = grad.add(p, alpha=weight_decay)
    p_norm, dp_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(dp)
    one = torch.ones_like(p_norm)
    # a zero weight or zero update has no scale to trust: fall back to the plain step
    q = torch.where(
        p_norm > 0, torch.where(dp_norm > 0, trust_coefficient * p_norm / dp_norm, one), one
    )
    return dp.mul(q)


class LARS(torch.optim.Optimizer):
    """SGD with momentum on layer-wise trust-ratio-scaled updates; no Nesterov, no dampening."""

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        lr: float = 0.0,
        weight_decay: float = 0.0,
        momentum: float = 0.9,
        trust_coefficient: float = 0.001,
    ) -> None:
        defaults = dict(
            lr=lr, weight_decay=weight_decay, momentum=momentum, trust_coefficient=trust_coefficient
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001, ANN201  (torch's Optimizer signature)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                dp = lars_update(p, p.grad, g["weight_decay"], g["trust_coefficient"])
                state = self.state[p]
                if "mu" not in state:
                    state["mu"] = torch.zeros_like(p)
                mu = state["mu"]
                mu.mul_(g["momentum"]).add_(dp)
                p.add_(mu, alpha=-g["lr"])
        return loss
