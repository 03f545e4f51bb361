"""The analytic FLOP count against torch's own counter and a hand-computed block."""

from __future__ import annotations

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from maelab.bench import block_flops, train_flops
from maelab.models import MaskedAutoencoder, make_arch


def test_block_flops_by_hand() -> None:
    # 2 tokens, width 4, hidden 8: qkv 2*2*4*12, proj 2*2*4*4, fc1 + fc2 2*2*(4*8)*2; q k^T, a v
    linear = 2 * 2 * 4 * 12 + 2 * 2 * 4 * 4 + 2 * 2 * 2 * 4 * 8
    attention = 2 * (2 * 2 * 2 * 4)
    assert block_flops(2, 4, 2.0) == linear + attention == 576


@pytest.mark.parametrize(
    "arch",
    [
        make_arch("micro"),
        make_arch("micro", in_chans=1, mlp_ratio=2.0),
        make_arch("tiny"),
    ],
    ids=["micro", "micro_gray_mlp2", "tiny"],
)
@pytest.mark.parametrize("ratio", [0.75, 0.5])
def test_train_flops_is_three_forwards_counted_by_torch(arch, ratio: float) -> None:
    torch.manual_seed(0)
    model = MaskedAutoencoder(arch)
    x = torch.randn(3, arch.in_chans, arch.img_size, arch.img_size)
    # the math backend runs attention as bmm, which the counter sees (the fused CPU kernel it
    # does not count)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(x, ratio)
    assert train_flops(arch, 3, ratio) == 3 * counter.get_total_flops()
