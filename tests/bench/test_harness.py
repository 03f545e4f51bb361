"""The timed implementations: same weights, same loss, working training steps."""

from __future__ import annotations

import pytest
import torch

from maelab.bench import harness
from maelab.bench.harness import build, make_optimizer, same_loss_check
from maelab.bench.peers import TextbookMAE, textbook_peer
from maelab.models import MaskedAutoencoder, make_arch

CPU = torch.device("cpu")


def test_textbook_matches_maelab_with_shared_weights_and_noise() -> None:
    arch = make_arch("micro")
    torch.manual_seed(0)
    ours = MaskedAutoencoder(arch).eval()
    ref = textbook_peer(ours).eval()
    x = torch.randn(3, 3, arch.img_size, arch.img_size)
    noise = torch.rand(3, arch.num_patches)
    with torch.no_grad():
        loss_a, pred_a, mask_a = ours(x, 0.75, noise=noise)
        loss_b, pred_b, mask_b = ref(x, 0.75, noise=noise)
    torch.testing.assert_close(mask_a.float(), mask_b.float())
    torch.testing.assert_close(pred_a, pred_b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(loss_a, loss_b, atol=1e-6, rtol=1e-5)


def test_same_loss_check_agrees_and_catches_a_different_model(monkeypatch) -> None:
    arch = make_arch("micro")
    losses = same_loss_check(arch, ["maelab", "timm-ref"], CPU)
    assert losses["maelab"] == pytest.approx(losses["timm-ref"], rel=1e-5)

    def other_weights(ours: MaskedAutoencoder) -> TextbookMAE:
        torch.manual_seed(123)
        return TextbookMAE(ours.arch)  # timm's init, not maelab's weights

    monkeypatch.setattr(harness, "textbook_peer", other_weights)
    with pytest.raises(RuntimeError, match="disagree"):
        same_loss_check(arch, ["maelab", "timm-ref"], CPU)


def test_same_loss_check_with_hugging_face() -> None:
    pytest.importorskip("transformers")
    losses = same_loss_check(make_arch("micro"), ["maelab", "hf"], CPU)
    assert losses["maelab"] == pytest.approx(losses["hf"], rel=1e-5)


@pytest.mark.parametrize("impl", ["maelab", "timm-ref"])
def test_step_trains(impl: str) -> None:
    arch = make_arch("micro")
    model, step = build(impl, arch, CPU)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    step(torch.randn(2, 3, arch.img_size, arch.img_size))
    after = model.state_dict()
    assert not torch.equal(before["decoder_pred.weight"], after["decoder_pred.weight"])
    assert all(p.grad is None for p in model.parameters())  # zero_grad(set_to_none=True)


def test_build_rejects_an_unknown_implementation() -> None:
    with pytest.raises(ValueError, match="unknown implementation 'jax'"):
        build("jax", make_arch("micro"), CPU)


def test_optimizers() -> None:
    model = torch.nn.Linear(2, 2)
    assert make_optimizer("maelab", model, CPU, "native").defaults["fused"]
    assert make_optimizer("hf", model, CPU, "native").defaults["fused"]
    textbook = make_optimizer("timm-ref", model, CPU, "native").defaults
    assert not textbook["fused"] and textbook["foreach"] is None  # torch's defaults
    assert make_optimizer("timm-ref", model, CPU, "forloop").defaults["foreach"] is False
    assert make_optimizer("maelab", model, CPU, "foreach").defaults["foreach"] is True
