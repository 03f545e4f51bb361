"""Weighted k-nearest-neighbour classification of frozen features (the DINO protocol)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class KNNResult:
    top1: float  # percent
    top5: float | None  # percent; None with 5 classes or fewer (it would be 100)
    k: int
    t: float


@torch.no_grad()
def knn_predict_scores(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    num_classes: int,
    k: int = 20,
    t: float = 0.07,
    chunk: int = 1024,
) -> torch.Tensor:
    """Class scores (M, num_classes): sum over the k most cosine-similar training rows of exp(s/t).

    `t = inf` gives every neighbour the same vote (plain majority). Test rows are processed in
    chunks so that the (chunk, N) similarity matrix bounds the memory.
    """
    if train_x.shape[0] != train_y.shape[0]:
        raise ValueError(f"train_x has {train_x.shape[0]} rows but train_y {train_y.shape[0]}")
    k = min(k, train_x.shape[0])
    bank = F.normalize(train_x.float(), dim=1)  # (N, D)
    labels = train_y.long()
    out = []
    for start in range(0, test_x.shape[0], chunk):
        q = F.normalize(test_x[start : start + chunk].float(), dim=1)  # (m, D)
        sim, idx = (q @ bank.T).topk(k, dim=1)  # (m, k)
        weights = (sim / t).exp()
        votes = torch.zeros(q.shape[0], num_classes, dtype=weights.dtype, device=weights.device)
        votes.scatter_add_(1, labels[idx], weights)
        out.append(votes)
    return torch.cat(out) if out else torch.zeros(0, num_classes)


def topk_accuracy(scores: torch.Tensor, target: torch.Tensor, k: int) -> float:
    """Percent of rows whose target is among the k highest scores (ties: lower class first)."""
    if scores.shape[0] == 0:
        return float("nan")
    k = min(k, scores.shape[1])
    # a stable descending sort keeps the lower class index first among tied scores
    pred = scores.argsort(dim=1, descending=True, stable=True)[:, :k]
    return 100.0 * (pred == target.view(-1, 1)).any(dim=1).float().mean().item()


def knn_accuracy(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    num_classes: int,
    k: int = 20,
    t: float = 0.07,
    chunk: int = 1024,
) -> KNNResult:
    """Top-1 (and top-5) accuracy of cosine k-NN with votes exp(s / t) (Wu et al.; DINO)."""
    scores = knn_predict_scores(train_x, train_y, test_x, num_classes, k, t, chunk)
    top5 = topk_accuracy(scores, test_y, 5) if num_classes > 5 else None
    return KNNResult(topk_accuracy(scores, test_y, 1), top5, min(k, train_x.shape[0]), t)
