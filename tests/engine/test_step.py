"""The guarded optimizer step: one-line errors, skip counting, clipping, the weights check."""

import math

import pytest
import torch
from torch import nn

import maelab.engine.step as step_module
from maelab.engine.step import GuardedStep, NonFiniteLossError, StepPlace

PLACE = StepPlace(step=7, epoch=1, iteration=2, lr=1e-3)


def _setup(clip: float | None = None, mode: str = "stop", **kw):
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return model, opt, GuardedStep(opt, list(model.parameters()), None, clip, mode, **kw)


def test_step_place_reads_like_the_messages():
    assert str(PLACE) == "step 7 (epoch 1, iteration 2, lr 0.001)"


def test_stop_on_a_nonfinite_loss_names_place_and_checkpoint():
    _, _, guard = _setup()
    guard.last_good = "run/checkpoints/last.pt"
    assert guard.check_loss(1.5, PLACE)
    with pytest.raises(NonFiniteLossError) as err:
        guard.check_loss(math.nan, PLACE)
    assert str(err.value) == (
        "loss is nan at step 7 (epoch 1, iteration 2, lr 0.001); last good checkpoint: "
        "run/checkpoints/last.pt. Lower train.blr, set train.clip_grad, or pass "
        "train.on_nonfinite=skip"
    )


def test_a_section_without_skip_gives_its_own_advice():
    _, _, guard = _setup(section="finetune", what="fine-tuning ", can_skip=False)
    with pytest.raises(NonFiniteLossError, match=r"^fine-tuning loss is inf at step 7 .*"
                       r"none yet\. Lower finetune\.blr or set finetune\.clip_grad$"):  # fmt: skip
        guard.check_loss(math.inf, PLACE)


def test_update_matches_a_plain_step_and_clears_gradients():
    model, _, guard = _setup()
    ref = nn.Linear(3, 2)
    ref.load_state_dict(model.state_dict())
    x = torch.randn(4, 3)
    guard.backward(model(x).pow(2).mean())
    ref(x).pow(2).mean().backward()
    torch.optim.SGD(ref.parameters(), lr=0.1).step()
    assert guard.update(PLACE) and guard.steps == 1 and guard.skipped == 0
    assert all(p.grad is None for p in model.parameters())
    for p, q in zip(model.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_clipping_bounds_the_update():
    model, _, guard = _setup(clip=0.01)
    before = [p.detach().clone() for p in model.parameters()]
    guard.backward(1e3 * model(torch.randn(4, 3)).sum())
    guard.update(PLACE)
    moved = torch.cat(
        [(p.detach() - b).flatten() for p, b in zip(model.parameters(), before, strict=True)]
    )
    assert float(moved.norm()) == pytest.approx(0.1 * 0.01, rel=1e-4)  # lr * clip


def _nan_backward(model: nn.Module, guard: GuardedStep) -> None:
    guard.backward(model(torch.randn(2, 3)).sum() * math.nan)


def test_skip_leaves_the_weights_and_counts(monkeypatch):
    model, _, guard = _setup(mode="skip")
    before = [p.detach().clone() for p in model.parameters()]
    assert not guard.check_loss(math.nan, PLACE)  # no raise with skip
    _nan_backward(model, guard)
    assert not guard.update(PLACE)
    assert (guard.steps, guard.skipped, guard.skips_in_a_row) == (0, 1, 1)
    for p, b in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, b)
    guard.backward(model(torch.randn(2, 3)).sum())
    assert guard.update(PLACE) and guard.skips_in_a_row == 0
    monkeypatch.setattr(step_module, "MAX_SKIPS_IN_A_ROW", 2)
    _nan_backward(model, guard)
    guard.update(PLACE)
    _nan_backward(model, guard)
    with pytest.raises(NonFiniteLossError, match=r"^2 updates in a row skipped .* up to step 7 "):
        guard.update(PLACE)


def test_stop_with_clipping_names_the_gradient_norm():
    model, _, guard = _setup(clip=1.0)
    _nan_backward(model, guard)
    with pytest.raises(NonFiniteLossError, match=r"^gradient norm is nan at step 7 \(epoch 1"):
        guard.update(PLACE)


def test_check_weights_refuses_nonfinite_weights():
    model, _, guard = _setup()
    guard.check_weights(model, 3)
    with torch.no_grad():
        model.bias[0] = math.inf
    with pytest.raises(NonFiniteLossError, match=r"^weights became non-finite by step 3 "):
        guard.check_weights(model, 3)
