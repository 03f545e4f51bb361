"""k-NN against scikit-learn where the protocols coincide, and the exp(s/t) vote by hand."""

import math

import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from maelab.evaluation.knn import knn_accuracy, knn_predict_scores, topk_accuracy


def _clusters(n, d=16, classes=5, spread=3.5, seed=0):
    centres = torch.randn(classes, d, generator=torch.Generator().manual_seed(99)) * 2
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    return centres[y] + spread * torch.randn(n, d, generator=g), y


def _sklearn_acc(k, trx, tr_y, tex, te_y):
    clf = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute", weights="uniform")
    clf.fit(trx.numpy(), tr_y.numpy())
    return 100.0 * float((clf.predict(tex.numpy()) == te_y.numpy()).mean())


@pytest.mark.parametrize("k", [1, 7])
def test_uniform_votes_match_sklearn_cosine(k):
    # t = inf makes every vote exp(0) = 1: the plain majority vote sklearn computes
    trx, tr_y = _clusters(300, seed=1)
    tex, te_y = _clusters(200, seed=2)
    ours = knn_accuracy(trx, tr_y, tex, te_y, num_classes=5, k=k, t=math.inf, chunk=37)
    assert ours.top1 == pytest.approx(_sklearn_acc(k, trx, tr_y, tex, te_y), abs=1e-4)
    assert 20 < ours.top1 < 100  # a non-trivial problem


def test_k1_independent_of_temperature():
    trx, tr_y = _clusters(200, seed=3)
    tex, te_y = _clusters(100, seed=4)
    ref = _sklearn_acc(1, trx, tr_y, tex, te_y)
    for t in (0.07, 1.0):
        assert knn_accuracy(trx, tr_y, tex, te_y, 5, k=1, t=t).top1 == pytest.approx(ref)


def test_weighted_votes_by_hand():
    # bank: unit vectors at angles 0, 60, 90, 180 deg with labels 0, 1, 1, 0; query at angle 0
    ang = np.deg2rad([0, 60, 90, 180])
    bank = torch.tensor(np.stack([np.cos(ang), np.sin(ang)], 1), dtype=torch.float32) * 3
    labels = torch.tensor([0, 1, 1, 0])
    q = torch.tensor([[2.0, 0.0]])
    t = 0.5
    scores = knn_predict_scores(bank, labels, q, num_classes=3, k=3, t=t)
    # top-3 similarities 1, 0.5, 0 -> class 0: e^(1/t), class 1: e^(0.5/t) + e^0
    expected = torch.tensor([[math.exp(1 / t), math.exp(0.5 / t) + 1.0, 0.0]])
    torch.testing.assert_close(scores, expected)


def test_far_neighbours_can_outvote_near_one_only_with_high_t():
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.1, 1.0]])
    labels = torch.tensor([0, 1, 1])
    q = torch.tensor([[1.0, 0.05]])
    low = knn_accuracy(bank, labels, q, torch.tensor([0]), 2, k=3, t=0.07)
    high = knn_accuracy(bank, labels, q, torch.tensor([0]), 2, k=3, t=100.0)
    assert low.top1 == 100.0 and high.top1 == 0.0
    assert low.top5 is None  # 2 classes


def test_topk_accuracy_and_k_larger_than_bank():
    scores = torch.tensor([[0.1, 0.5, 0.4], [0.9, 0.05, 0.05]])
    assert topk_accuracy(scores, torch.tensor([2, 0]), 1) == 50.0
    assert topk_accuracy(scores, torch.tensor([2, 0]), 2) == 100.0
    trx, tr_y = _clusters(4, classes=2)
    res = knn_accuracy(trx, tr_y, trx, tr_y, 2, k=20)
    assert res.k == 4
