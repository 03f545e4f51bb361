import math

import pytest

from maelab.engine.schedule import lr_at, scaled_lr


def test_linear_scaling_rule():
    assert scaled_lr(1.5e-4, 4096) == pytest.approx(2.4e-3)


def test_warmup_then_half_cosine():
    base, warm, total = 1.0, 2.0, 10.0
    assert lr_at(0, total, warm, base) == 0.0
    assert lr_at(1, total, warm, base) == pytest.approx(0.5)
    assert lr_at(2, total, warm, base) == pytest.approx(1.0)
    # halfway through the cosine part: (1 + cos(pi/2)) / 2 = 0.5
    assert lr_at(6, total, warm, base) == pytest.approx(0.5)
    assert lr_at(10, total, warm, base, min_lr=0.1) == pytest.approx(0.1)
    mid = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.25))
    assert lr_at(4, total, warm, base, min_lr=0.1) == pytest.approx(mid)
