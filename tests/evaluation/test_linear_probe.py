"""The linear probe against scikit-learn's logistic regression, determinism, recipe details."""

import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from maelab.evaluation.linear_probe import LinearProbeConfig, linear_probe, probe_head


def _gaussian_classes(n, d=20, classes=8, seed=0, sep=0.5):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, d, generator=torch.Generator().manual_seed(123)) * sep
    y = torch.randint(0, classes, (n,), generator=g)
    # an anisotropic, shifted feature scale: the BatchNorm has to undo it
    scale = torch.linspace(0.1, 10, d)
    return (centres[y] + torch.randn(n, d, generator=g)) * scale + 5.0, y


def _sklearn(trx, tr_y, tex, te_y):
    sc = StandardScaler().fit(trx.numpy())
    clf = LogisticRegression(max_iter=5000).fit(sc.transform(trx.numpy()), tr_y.numpy())
    return 100.0 * clf.score(sc.transform(tex.numpy()), te_y.numpy())


def test_matches_logistic_regression_on_overlapping_classes():
    trx, tr_y = _gaussian_classes(2000, seed=1)
    tex, te_y = _gaussian_classes(1000, seed=2)
    ref = _sklearn(trx, tr_y, tex, te_y)
    res = linear_probe(trx, tr_y, tex, te_y, 8, LinearProbeConfig(epochs=30))
    assert 40 < ref < 95  # neither trivial nor hopeless
    assert abs(res.top1 - ref) < 3.0, (res.top1, ref)
    assert res.top5 is not None and res.top5 >= res.top1


def test_separable_data_is_solved():
    trx, tr_y = _gaussian_classes(1000, d=10, classes=3, seed=3, sep=6.0)
    tex, te_y = _gaussian_classes(300, d=10, classes=3, seed=4, sep=6.0)
    res = linear_probe(trx, tr_y, tex, te_y, 3, LinearProbeConfig(epochs=20))
    assert res.top1 == 100.0 and res.top5 is None
    assert res.lr == pytest.approx(0.1)  # blr 0.1 * 256 / 256


def test_lars_learns_with_a_large_lr():
    # the official LARS step is tiny at lr 0.1; with a large lr it trains as the recipe intends
    trx, tr_y = _gaussian_classes(2000, seed=1)
    tex, te_y = _gaussian_classes(1000, seed=2)
    ref = _sklearn(trx, tr_y, tex, te_y)
    res = linear_probe(
        trx, tr_y, tex, te_y, 8, LinearProbeConfig(epochs=30, optimizer="lars", blr=25.0)
    )
    assert res.top1 > ref - 8.0


def test_deterministic_for_a_seed():
    trx, tr_y = _gaussian_classes(500, seed=5)
    cfg = LinearProbeConfig(epochs=3, seed=7)
    a = linear_probe(trx, tr_y, trx, tr_y, 8, cfg)
    b = linear_probe(trx, tr_y, trx, tr_y, 8, cfg)
    assert (a.top1, a.train_top1) == (b.top1, b.train_top1)


def test_head_is_bn_without_affine_then_linear():
    head = probe_head(12, 4)
    bn, lin = head
    assert isinstance(bn, torch.nn.BatchNorm1d) and not bn.affine and bn.eps == 1e-6
    assert lin.weight.std() < 0.02 and torch.all(lin.bias == 0)
