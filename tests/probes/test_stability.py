"""Stability probe (Cao Q3): identity blocks update nothing and keep CKA at 1."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import nn

from maelab import verdicts as vd
from maelab.data.base import ImageSet
from maelab.models import MaskedAutoencoder
from maelab.probes.questions import question_row
from maelab.probes.stability import (
    DIVERGED_RISE,
    TrainingStability,
    block_halves,
    gain_spread,
    perturbation_gains,
    q3_experiment,
    q3_training_experiment,
    stability_of_blocks,
    stability_probe,
    training_stability,
)


def _zero(layer: nn.Linear) -> None:
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)


def test_block_halves_reproduce_the_block(make_model: Callable[..., MaskedAutoencoder]) -> None:
    blk = make_model().blocks[0]
    x = torch.randn(2, 17, 32)
    with torch.no_grad():
        _, out = block_halves(blk, x)
        torch.testing.assert_close(out, blk(x))


def test_identity_blocks(make_model: Callable[..., MaskedAutoencoder]) -> None:
    model = make_model()
    for blk in model.blocks:
        _zero(blk.attn.proj)
        _zero(blk.mlp.fc2)
    x = torch.randn(4, 17, 32)
    with torch.no_grad():
        stats = stability_of_blocks(list(model.blocks), x)
    assert stats["attn"] == [0.0, 0.0] and stats["mlp"] == [0.0, 0.0]
    assert stats["cka"] == pytest.approx([1.0, 1.0])


def test_attention_half_only(make_model: Callable[..., MaskedAutoencoder]) -> None:
    """Zeroed attention output: the attention half is 0, the MLP half is the block's update."""
    model = make_model()
    blk = model.blocks[0]
    _zero(blk.attn.proj)
    x = torch.randn(3, 17, 32)
    with torch.no_grad():
        stats = stability_of_blocks([blk], x)
        expected = ((blk(x) - x).norm(dim=-1) / x.norm(dim=-1)).mean().item()
    assert stats["attn"] == [0.0]
    assert stats["mlp"][0] == pytest.approx(expected, rel=1e-5)
    assert stats["block"][0] == pytest.approx(expected, rel=1e-5)


def test_stability_probe_encoder_and_decoder(
    images: ImageSet, make_model: Callable[..., MaskedAutoencoder]
) -> None:
    model = make_model()
    enc = stability_probe(model, images, max_images=16)
    assert enc.part == "encoder" and len(enc.attn_update) == len(enc.adjacent_cka) == 2
    assert all(0 < c <= 1 + 1e-9 for c in enc.adjacent_cka)
    dec = stability_probe(model, images, part="decoder", max_images=16)
    assert len(dec.mlp_update) == model.arch.decoder_depth
    with pytest.raises(ValueError):
        stability_probe(model, images, part="head")


# ---------------------------------------------------------------- Q3 experiment
class _Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.factor * x


def test_perturbation_gain_of_linear_maps_by_hand() -> None:
    x = torch.randn(3, 5, 8)
    gains = perturbation_gains([nn.Identity(), _Scale(2.0), _Scale(0.5)], x)  # type: ignore[list-item]
    expected = torch.tensor([[1.0, 2.0, 0.5]] * 3, dtype=torch.float64)
    torch.testing.assert_close(gains, expected, rtol=1e-5, atol=0)  # float32 norms
    assert gain_spread(gains) == pytest.approx([(2 * math.log(2)) / 3] * 3, rel=1e-5)
    # relative to the stream: a pure rescaling moves nothing
    rel = perturbation_gains([_Scale(2.0)], x, relative=True)  # type: ignore[list-item]
    torch.testing.assert_close(rel, torch.ones(3, 1, dtype=torch.float64), rtol=1e-5, atol=0)


def test_identity_blocks_have_gain_one(make_model: Callable[..., MaskedAutoencoder]) -> None:
    model = make_model()
    for blk in model.blocks:
        _zero(blk.attn.proj)
        _zero(blk.mlp.fc2)
    with torch.no_grad():
        gains = perturbation_gains(list(model.blocks), torch.randn(4, 17, 32))
    torch.testing.assert_close(gains, torch.ones(4, 2, dtype=torch.float64), rtol=1e-5, atol=0)


def _decide(result) -> str:
    return vd.decide_table([question_row(result)])[0].outcome


def test_q3_no_skip_fails(images: ImageSet, make_model: Callable[..., MaskedAutoencoder]) -> None:
    """Known answer: blocks without skip connections erase a perturbation (gain far below 1)."""
    full = make_model(depth=3)
    no_skip = make_model(depth=3, ablation="no_skip")  # same seed, same weights
    passes = q3_experiment(full, images, no_skip, control_name="no_skip", max_images=24)
    assert passes.predicted == "decrease" and len(passes.paired) == 24
    assert _decide(passes) == "agrees" and passes.details["control_gain_block1"] < 0.5
    fails = q3_experiment(no_skip, images, full, control_name="full", max_images=24)
    assert _decide(fails) == "inconclusive"  # disagrees by its interval, but no positive control
    # the same model as its own control: no difference at all, the "none" row agrees
    same = q3_experiment(full, images, make_model(depth=3), max_images=24)
    assert same.predicted == "none" and max(abs(v) for v in same.paired) < 1e-9
    assert _decide(same) == "inconclusive"  # a null by its interval: no positive control


def test_training_stability_by_hand() -> None:
    calm = training_stability([3.0, 2.0, 1.5, 1.2, 1.1])
    assert calm == TrainingStability(5, False, 0, 0.0)
    spiky = training_stability([3.0, 2.0, 1.0, 1.5, 0.9, 0.95])
    assert spiky.spikes == 1 and spiky.worst_rise == pytest.approx(math.log(1.5))
    assert not spiky.diverged
    nan = training_stability([3.0, 2.0, float("nan")])
    assert nan.diverged and nan.steps == 2 and nan.worst_rise == DIVERGED_RISE
    short = training_stability([3.0, 2.0], planned_steps=5)
    assert short.diverged and short.worst_rise == DIVERGED_RISE
    warm = training_stability([3.0, 1.0, 1.5, 0.9], skip=3)
    assert warm.spikes == 0 and warm.worst_rise == 0.0


def test_q3_training_rows() -> None:
    calm = [[3.0, 2.0, 1.5, 1.2 + 0.01 * s] for s in range(4)]
    spiky = [[3.0, 1.0, 1.8 + 0.1 * s, 0.9] for s in range(4)]
    row = q3_training_experiment(calm, spiky, "no_scale", planned_steps=4)
    assert row.unit == "seed" and _decide(row) == "agrees"
    assert row.details["control_spikes"] == 1.0
    # disagrees by its interval, but no positive control shows the readout could see an effect
    assert _decide(q3_training_experiment(calm, calm, "no_scale")) == "inconclusive"
    with pytest.raises(ValueError, match="pair"):
        q3_training_experiment(calm, spiky[:3], "no_scale")
