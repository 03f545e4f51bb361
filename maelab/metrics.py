"""Representation metrics: spectrum, effective rank, RankMe, alignment, uniformity, CKA, and
the collapse numbers of one encoder built from them (`collapse_stats`).

Pure functions on tensors. Each takes features as a 2-D ``(N, d)`` tensor (N samples
or tokens, d dimensions) unless stated otherwise. The float-valued metrics detach and
compute in float64; ``uniformity_loss`` is the one differentiable training term.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "CollapseStats",
    "alignment",
    "collapse_stats",
    "covariance_spectrum",
    "effective_rank",
    "linear_cka",
    "normalised_alignment",
    "rankme",
    "relative_update",
    "uniformity",
    "uniformity_loss",
]


def _matrix(z: Tensor, name: str, min_rows: int) -> Tensor:
    """Validate an ``(N, d)`` feature matrix and return it detached, in float64."""
    if not isinstance(z, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(z).__name__}")
    if z.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, d), got shape {tuple(z.shape)}")
    if z.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows (samples), got {z.shape[0]}")
    if z.shape[1] < 1:
        raise ValueError(f"{name} needs at least 1 feature column, got shape {tuple(z.shape)}")
    z = z.detach().to(torch.float64)
    if not torch.isfinite(z).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return z


def _entropy_rank(s: Tensor) -> float:
    """``exp(H(p))`` for a non-negative distribution ``p`` (0 log 0 = 0)."""
    return math.exp(-torch.special.xlogy(s, s).sum().item())


def covariance_spectrum(z: Tensor) -> Tensor:
    """Eigenvalues of the feature covariance ``Zc^T Zc / (N - 1)``, descending.

    ``Zc`` is ``z`` with the column means removed. Returns a float64 tensor of length
    ``d``, clamped at 0 (tiny negative round-off of a rank-deficient covariance).
    """
    z = _matrix(z, "z", min_rows=2)
    zc = z - z.mean(dim=0, keepdim=True)
    cov = zc.T @ zc / (z.shape[0] - 1)  # (d, d)
    eig = torch.linalg.eigvalsh(cov)  # ascending
    return eig.flip(0).clamp_min(0.0)


def effective_rank(z: Tensor, center: bool = True) -> float:
    """Effective rank ``exp(H(p))``, ``p = s / sum(s)`` (Roy & Vetterli 2007).

    ``s`` are the singular values of ``z`` (with column means removed when ``center``,
    so that a shared offset does not count as a dimension); ``H(p) = -sum p log p``
    with ``0 log 0 = 0``. Lies in ``[1, rank(z)]``, equal to ``k`` when ``k`` singular
    values are equal and the rest are 0. An all-zero matrix (after centring) returns 0.
    """
    z = _matrix(z, "z", min_rows=2 if center else 1)
    if center:
        z = z - z.mean(dim=0, keepdim=True)
    s = torch.linalg.svdvals(z)
    total = s.sum()
    if total.item() == 0.0:
        return 0.0
    return _entropy_rank(s / total)


def rankme(z: Tensor, eps: float = 1e-7) -> float:
    """RankMe (Garrido et al. 2023): ``exp(-sum p_k log p_k)``, ``p_k = s_k / ||s||_1 + eps``.

    ``s`` are the singular values of the ``(N, d)`` embedding matrix itself (not
    centred). The ``eps`` makes it slightly below ``k`` for ``k`` equal singular
    values. An all-zero matrix returns 0.
    """
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    z = _matrix(z, "z", min_rows=1)
    s = torch.linalg.svdvals(z)
    total = s.sum()
    if total.item() == 0.0:
        return 0.0
    return _entropy_rank(s / total + eps)


def alignment(z1: Tensor, z2: Tensor, alpha: float = 2) -> float:
    """Alignment ``E ||f(x1) - f(x2)||_2^alpha`` over positive pairs (Wang & Isola 2020).

    Row ``i`` of ``z1`` and of ``z2`` are the two views of sample ``i``; rows are
    L2-normalised here. 0 for identical views, at most ``2^alpha``.
    """
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    z1 = _matrix(z1, "z1", min_rows=1)
    z2 = _matrix(z2, "z2", min_rows=1)
    if z1.shape != z2.shape:
        raise ValueError(
            f"z1 and z2 must have the same shape (paired views), got {tuple(z1.shape)} "
            f"and {tuple(z2.shape)}"
        )
    diff = F.normalize(z1, dim=1) - F.normalize(z2, dim=1)
    return diff.norm(dim=1).pow(alpha).mean().item()


def normalised_alignment(z1: Tensor, z2: Tensor) -> float:
    """``1 - alignment(views of one image) / alignment(views of different images)``.

    Row ``i`` of ``z1`` and of ``z2`` are two masked views of image ``i``; the pairs of different
    images pair row ``i`` of ``z1`` with row ``i + 1`` of ``z2``. 1: the two views of an image
    coincide; 0: they lie as far apart as views of different images. Dividing by the spread
    between images makes encoders of different scale and anisotropy comparable.
    """
    between = alignment(z1, z2.roll(1, dims=0))
    if between == 0.0:
        return math.nan
    return 1.0 - alignment(z1, z2) / between


def uniformity(z: Tensor, t: float = 2) -> float:
    """Uniformity ``log E_{i<j} exp(-t ||z_i - z_j||^2)`` (Wang & Isola 2020).

    Rows are L2-normalised; the mean runs over the ``N (N - 1) / 2`` distinct pairs and
    is taken with logsumexp so that large ``t`` does not underflow. Lower is more
    uniform; the value lies in ``[-4 t, 0]``.
    """
    if t <= 0:
        raise ValueError(f"t must be > 0, got {t}")
    z = _matrix(z, "z", min_rows=2)
    zn = F.normalize(z, dim=1)
    n = zn.shape[0]
    sq_norm = zn.pow(2).sum(dim=1)  # (N,); 1 except for all-zero rows
    cols = torch.arange(n, device=zn.device)
    # Row blocks of the distance matrix keep memory at O(block * N) for large N.
    block = max(1, 4_000_000 // n)
    parts = []
    for start in range(0, n - 1, block):
        rows = zn[start : start + block]  # (b, d)
        sq_dist = sq_norm[start : start + block, None] + sq_norm[None, :] - 2.0 * rows @ zn.T
        upper = cols[None, :] > cols[start : start + block, None]  # pairs i < j
        logits = (-t * sq_dist.clamp_min(0.0)).masked_fill_(~upper, -math.inf)
        parts.append(torch.logsumexp(logits.flatten(), dim=0))
    num_pairs = n * (n - 1) // 2
    return (torch.logsumexp(torch.stack(parts), dim=0) - math.log(num_pairs)).item()


def uniformity_loss(z: Tensor) -> Tensor:
    """U-MAE uniformity term ``mean_{i,j} (z_i . z_j)^2`` (Zhang, Wang, Wang 2022).

    ``z`` (N, d) is L2-normalised row-wise; the mean runs over all ``N^2`` pairs, the
    diagonal (each equal to 1) included. Differentiable; keeps the dtype of ``z``.
    Gathering features across processes is the caller's job.
    """
    if not isinstance(z, Tensor):
        raise TypeError(f"z must be a torch.Tensor, got {type(z).__name__}")
    if z.ndim != 2 or z.shape[0] < 1 or z.shape[1] < 1:
        raise ValueError(f"z must be 2-D (N, d) with N, d >= 1, got shape {tuple(z.shape)}")
    zn = F.normalize(z, dim=1)
    gram = zn @ zn.T  # (N, N) cosine similarities
    return gram.pow(2).mean()


def linear_cka(x: Tensor, y: Tensor) -> float:
    """Linear CKA (Kornblith et al. 2019): ``||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)``.

    ``x`` (N, d1) and ``y`` (N, d2) describe the same N samples; both are centred
    column-wise first. In ``[0, 1]``; invariant to orthogonal transforms and isotropic
    scaling of either side.
    """
    x = _matrix(x, "x", min_rows=2)
    y = _matrix(y, "y", min_rows=2)
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must have the same number of rows (samples), got {x.shape[0]} and {y.shape[0]}"
        )
    x = x - x.mean(dim=0, keepdim=True)
    y = y - y.mean(dim=0, keepdim=True)
    norm_x = torch.linalg.matrix_norm(x.T @ x)
    norm_y = torch.linalg.matrix_norm(y.T @ y)
    if norm_x.item() == 0.0 or norm_y.item() == 0.0:
        raise ValueError(
            "linear CKA is undefined for a representation that is constant over samples"
        )
    cross = torch.linalg.matrix_norm(y.T @ x).pow(2)
    return (cross / (norm_x * norm_y)).item()


def relative_update(before: Tensor, after: Tensor) -> float:
    """Mean over vectors of ``||after - before|| / ||before||``, norms over the last dim.

    Every other dimension (batch, tokens) indexes a separate vector, e.g. the residual
    stream ``x_l`` and ``x_{l+1}`` of shape (N, L, D) give the mean over N * L tokens.
    """
    for name, v in (("before", before), ("after", after)):
        if not isinstance(v, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(v).__name__}")
    if before.shape != after.shape:
        raise ValueError(
            f"before and after must have the same shape, got {tuple(before.shape)} "
            f"and {tuple(after.shape)}"
        )
    if before.ndim < 1 or before.numel() == 0:
        raise ValueError(f"need at least one non-empty vector, got shape {tuple(before.shape)}")
    before = before.detach().to(torch.float64)
    after = after.detach().to(torch.float64)
    base = before.norm(dim=-1)
    zero = int((base == 0).sum())
    if zero:
        raise ValueError(
            f"{zero} vector(s) in `before` have zero norm; the relative update is undefined"
        )
    ratio = (after - before).norm(dim=-1) / base
    if not torch.isfinite(ratio).all():
        raise ValueError("before or after contains NaN or infinite values")
    return ratio.mean().item()


@dataclass
class CollapseStats:
    """Collapse numbers of one encoder (or of raw pixels) on one set of images
    (dimensional collapse: Zhang, Wang, Wang 2022)."""

    label: str
    dim: int  # feature width
    num_images: int
    effective_rank: float
    rankme: float
    alignment: float  # of two masked views; nan when no views were given
    uniformity: float  # of the first masked view (or of the full-image features without views)
    spectrum: list[float] = field(default_factory=list)  # covariance eigenvalues, descending
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def rank_fraction(self) -> float:
        """Effective rank as a share of the feature width (1 = no collapse)."""
        return self.effective_rank / self.dim

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CollapseStats:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def collapse_stats(
    features: Tensor,
    view1: Tensor | None = None,
    view2: Tensor | None = None,
    label: str = "model",
    settings: dict[str, Any] | None = None,
) -> CollapseStats:
    """Collapse numbers from full-image features (N, d) and optional paired masked views (M, d).

    Uniformity is measured on the masked view (where U-MAE's term acts) when one is given.
    """
    spec = covariance_spectrum(features)
    has_views = view1 is not None and view2 is not None
    return CollapseStats(
        label=label,
        dim=int(features.shape[1]),
        num_images=int(features.shape[0]),
        effective_rank=effective_rank(features),
        rankme=rankme(features),
        alignment=alignment(view1, view2) if has_views else math.nan,
        uniformity=uniformity(view1 if has_views else features),
        spectrum=[float(v) for v in spec],
        settings=dict(settings or {}),
    )
