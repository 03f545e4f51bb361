"""maelab vs Hugging Face `ViTMAEForPreTraining` with shared weights and shared noise.

HF implements the same algorithm (argsort masking, cls after masking, norm-pix target,
loss over removed patches), so with identical weights and noise the loss, the per-patch
predictions (HF `logits`), the mask and the encoder output must agree.
"""

from __future__ import annotations

import pytest
import torch

from maelab.models import MaskedAutoencoder
from maelab.models.interop import to_hf_vitmae

pytest.importorskip("transformers")

TOL = 1e-5
CONFIGS = {
    # small images, 64 patches, a 1-channel variant
    "32px_p4": dict(img_size=32, patch_size=4, embed_dim=64, depth=2, num_heads=4,
                    decoder_embed_dim=32, decoder_depth=2, decoder_num_heads=4),
    "16px_p4_gray": dict(img_size=16, patch_size=4, in_chans=1, embed_dim=32, depth=2, num_heads=2,
                         decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2),
    # official ViT-B / decoder widths at 224/16, one block each to stay fast
    "224px_p16_base_widths": dict(img_size=224, patch_size=16, embed_dim=768, depth=1, num_heads=12,
                                  decoder_embed_dim=512, decoder_depth=1, decoder_num_heads=16),
}  # fmt: skip


def perturbed(seed: int, **arch: object) -> MaskedAutoencoder:
    """A model whose every tensor (biases, norms, tables) is non-trivial, so a mis-mapped
    tensor cannot hide behind a zero or a one."""
    torch.manual_seed(seed)
    model = MaskedAutoencoder(**arch).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


# (config, norm_pix, mask ratio, HF attention kernel); "eager" is HF's explicit softmax(QK^T)V,
# a different computation from the fused kernel that timm's blocks call
CASES = [
    ("32px_p4", True, 0.75, "sdpa"),
    ("32px_p4", False, 0.75, "sdpa"),
    ("32px_p4", True, 0.6, "eager"),
    ("32px_p4", False, 0.9, "eager"),
    ("16px_p4_gray", True, 0.75, "sdpa"),
    ("16px_p4_gray", False, 0.5, "eager"),
    ("224px_p16_base_widths", True, 0.75, "sdpa"),
    ("224px_p16_base_widths", False, 0.75, "eager"),
]


@pytest.mark.parametrize("name,norm_pix,ratio,attn", CASES)
def test_loss_logits_mask_match_hf(name: str, norm_pix: bool, ratio: float, attn: str) -> None:
    model = perturbed(0, norm_pix_loss=norm_pix, **CONFIGS[name])
    hf = to_hf_vitmae(model, mask_ratio=ratio).eval()
    hf.set_attn_implementation(attn)
    assert hf.config.layer_norm_eps == 1e-6 and hf.config.norm_pix_loss is norm_pix
    a = model.arch
    imgs = torch.randn(2, a.in_chans, a.img_size, a.img_size)
    noise = torch.rand(2, a.num_patches)
    with torch.no_grad():
        loss, pred, mask = model(imgs, mask_ratio=ratio, noise=noise)
        latent, _, ids_restore = model.forward_encoder(imgs, ratio, noise)
        out = hf(pixel_values=imgs, noise=noise)
        hf_latent = hf.vit(pixel_values=imgs, noise=noise).last_hidden_state
    loss_err = (loss - out.loss).abs().item()
    logits_err = (pred - out.logits).abs().max().item()
    latent_err = (latent - hf_latent).abs().max().item()
    print(
        f"\n[hf parity] {name} norm_pix={norm_pix} ratio={ratio} attn={attn}: max abs err "
        f"loss {loss_err:.3g}, logits {logits_err:.3g}, encoder {latent_err:.3g}"
    )
    assert torch.equal(mask, out.mask)
    assert torch.equal(ids_restore, out.ids_restore)
    assert out.logits.shape == pred.shape
    assert loss_err <= TOL and logits_err <= TOL and latent_err <= TOL


@pytest.mark.parametrize("in_chans", [1, 3])
def test_patchify_layout_matches_hf(in_chans: int) -> None:
    model = perturbed(1, **{**CONFIGS["32px_p4"], "in_chans": in_chans})
    hf = to_hf_vitmae(model)
    imgs = torch.randn(2, in_chans, 32, 32)
    assert torch.equal(model.patchify(imgs), hf.patchify(imgs))
    patches = torch.randn(2, 64, 16 * in_chans)
    assert torch.equal(model.unpatchify(patches), hf.unpatchify(patches))


def test_hf_from_config_has_no_positional_information() -> None:
    """Why `to_hf_vitmae` copies the tables: HF's own init leaves them at zero."""
    from maelab.models.interop import hf_vitmae_config

    transformers = pytest.importorskip("transformers")
    model = perturbed(2, **CONFIGS["32px_p4"])
    fresh = transformers.ViTMAEForPreTraining(hf_vitmae_config(model))
    copied = to_hf_vitmae(model)
    assert not fresh.decoder.decoder_pos_embed.requires_grad
    assert fresh.decoder.decoder_pos_embed.abs().sum() == 0
    assert torch.equal(copied.vit.embeddings.position_embeddings, model.pos_embed)
    assert torch.equal(copied.decoder.decoder_pos_embed, model.decoder_pos_embed)
