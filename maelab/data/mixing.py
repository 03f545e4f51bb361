"""Building blocks of the synthetic world's maps: an invertible leaky tanh, invertible coupling
stages, random orthogonal matrices and smooth pixel patterns (pure functions on tensors)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class CouplingStage:
    """Invertible non-linear maps of K nodes' latents (width d): ``h(x) = couple(Q x)``.

    ``couple`` splits ``u = Q x`` into halves (a, b) and applies ``b += A cos(w W_b a)``, then
    ``a += A cos(w W_a b)``. The shifts are even functions, so they carry no linear signal
    about their argument, yet the map inverts exactly (subtract the shifts in reverse order).
    """

    rotation: torch.Tensor  # (K, d, d) orthogonal
    weight_b: torch.Tensor  # (K, d - d // 2, d // 2)
    weight_a: torch.Tensor  # (K, d // 2, d - d // 2)

    def nodes(self, index: torch.Tensor) -> CouplingStage:
        """The stages of the nodes ``index`` (K',), e.g. each child's copy of its parent's."""
        return CouplingStage(self.rotation[index], self.weight_b[index], self.weight_a[index])


def phi(x: torch.Tensor, gain: float, leak: float) -> torch.Tensor:
    """Invertible leaky tanh: ``leak * x + (1 - leak) * tanh(gain * x)`` (slope >= leak > 0)."""
    return leak * x + (1.0 - leak) * torch.tanh(gain * x)


def phi_inverse(y: torch.Tensor, gain: float, leak: float, iters: int = 64) -> torch.Tensor:
    """Inverse of `phi` by bisection (exact to float precision; phi is strictly increasing)."""
    # |phi(x) - leak * x| < 1 - leak brackets the root
    lo = (y - (1.0 - leak)) / leak
    hi = (y + (1.0 - leak)) / leak
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        below = phi(mid, gain, leak) < y
        lo = torch.where(below, mid, lo)
        hi = torch.where(below, hi, mid)
    return 0.5 * (lo + hi)


def _shift(u: torch.Tensor, amp: float, freq: float) -> torch.Tensor:
    # cos(w u) minus its mean for u ~ N(0, 1): an even, zero-mean shift
    return amp * (torch.cos(freq * u) - math.exp(-0.5 * freq**2))


def _shift_scale(amp: float, freq: float) -> float:
    # std of x + shift for unit-variance x, so every stage keeps latents near unit scale
    var_cos = 0.5 * (1.0 + math.exp(-2.0 * freq**2)) - math.exp(-(freq**2))
    return math.sqrt(1.0 + amp**2 * var_cos)


def couple(stage: CouplingStage, x: torch.Tensor, amp: float, freq: float) -> torch.Tensor:
    """Apply each node's coupling stage: (N, K, d) -> (N, K, d)."""
    u = torch.einsum("kij,nkj->nki", stage.rotation, x)
    h = stage.weight_a.shape[1]
    a, b = u[..., :h], u[..., h:]
    b = b + _shift(torch.einsum("kij,nkj->nki", stage.weight_b, a), amp, freq)
    a = a + _shift(torch.einsum("kij,nkj->nki", stage.weight_a, b), amp, freq)
    return torch.cat([a, b], dim=-1) / _shift_scale(amp, freq)


def uncouple(stage: CouplingStage, y: torch.Tensor, amp: float, freq: float) -> torch.Tensor:
    """Exact inverse of `couple`: (N, K, d) -> (N, K, d)."""
    u = y * _shift_scale(amp, freq)
    h = stage.weight_a.shape[1]
    a, b = u[..., :h], u[..., h:]
    a = a - _shift(torch.einsum("kij,nkj->nki", stage.weight_a, b), amp, freq)
    b = b - _shift(torch.einsum("kij,nkj->nki", stage.weight_b, a), amp, freq)
    return torch.einsum("kji,nkj->nki", stage.rotation, torch.cat([a, b], dim=-1))


def random_orthogonal(count: int, dim: int, gen: torch.Generator) -> torch.Tensor:
    """`count` Haar-distributed orthogonal (dim, dim) matrices."""
    a = torch.randn(count, dim, dim, generator=gen, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    # the sign fix makes the QR factor Haar-distributed rather than biased
    return q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)


def coupling_stage(count: int, dim: int, gen: torch.Generator) -> CouplingStage:
    h = dim // 2
    f64 = torch.float64
    # weights of std 1/sqrt(fan-in) give unit-variance shift arguments
    return CouplingStage(
        rotation=random_orthogonal(count, dim, gen),
        weight_b=torch.randn(count, dim - h, h, generator=gen, dtype=f64) / math.sqrt(max(h, 1)),
        weight_a=torch.randn(count, h, dim - h, generator=gen, dtype=f64) / math.sqrt(dim - h),
    )


SMOOTH_FREQS = 3  # v2 cell patterns: 2-D cosines of 0, 1/2 and 1 cycles per cell side


def smooth_basis(size: int) -> torch.Tensor:
    """Low-frequency 2-D cosine patterns over a ``size x size`` cell, unit RMS: (size**2, F**2)."""
    pos = (torch.arange(size, dtype=torch.float64) + 0.5) / size
    freqs = torch.arange(SMOOTH_FREQS, dtype=torch.float64)
    waves = torch.cos(math.pi * pos[:, None] * freqs[None, :])  # (size, F)
    basis = torch.einsum("yf,xg->yxfg", waves, waves).reshape(size * size, -1)
    return basis / basis.pow(2).mean(dim=0).sqrt()
