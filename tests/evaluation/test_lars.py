"""LARS steps against a hand computation of the official rule."""

import torch

from maelab.evaluation.lars import LARS, lars_update


def test_two_steps_by_hand():
    w = torch.nn.Parameter(torch.tensor([[3.0, 4.0]]))  # ||w|| = 5
    b = torch.nn.Parameter(torch.tensor([1.0]))
    opt = LARS([w, b], lr=0.5, weight_decay=0.1, momentum=0.9, trust_coefficient=0.01)
    g_w, g_b = torch.tensor([[0.0, 2.0]]), torch.tensor([4.0])

    w.grad, b.grad = g_w.clone(), g_b.clone()
    opt.step()
    # matrix: dp = g + wd*w = [0.3, 2.4]; q = 0.01 * 5 / ||dp||; mu = dp*q; w -= lr*mu
    dp = torch.tensor([[0.3, 2.4]])
    mu_w = dp * (0.01 * 5.0 / dp.norm())
    w1 = torch.tensor([[3.0, 4.0]]) - 0.5 * mu_w
    # vector: raw gradient, no decay, no trust ratio
    mu_b = g_b.clone()
    b1 = torch.tensor([1.0]) - 0.5 * mu_b
    torch.testing.assert_close(w.data, w1)
    torch.testing.assert_close(b.data, b1)

    w.grad, b.grad = g_w.clone(), g_b.clone()
    opt.step()
    dp2 = g_w + 0.1 * w1
    mu_w = 0.9 * mu_w + dp2 * (0.01 * w1.norm() / dp2.norm())
    mu_b = 0.9 * mu_b + g_b
    torch.testing.assert_close(w.data, w1 - 0.5 * mu_w)
    torch.testing.assert_close(b.data, b1 - 0.5 * mu_b)


def test_zero_weight_falls_back_to_plain_step():
    p = torch.zeros(2, 2)
    g = torch.ones(2, 2)
    torch.testing.assert_close(lars_update(p, g, 0.0, 0.001), g)
