"""Named model sizes: the official ones and small ones that train on a CPU."""

from __future__ import annotations

from typing import Any

from maelab.config import NOT_ARCH_FIELDS
from maelab.models.linear import LinearArch
from maelab.models.mae import MAEArch

_DECODER_512x8 = dict(decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16)

PRESETS: dict[str, dict[str, Any]] = {
    # official sizes (He et al. 2022), 224 px
    "vit_base_patch16": dict(
        img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12, **_DECODER_512x8
    ),
    "vit_large_patch16": dict(
        img_size=224, patch_size=16, embed_dim=1024, depth=24, num_heads=16, **_DECODER_512x8
    ),
    "vit_huge_patch14": dict(
        img_size=224, patch_size=14, embed_dim=1280, depth=32, num_heads=16, **_DECODER_512x8
    ),
    # small images (CIFAR / STL / digits / synthetic), CPU-trainable
    "small": dict(
        img_size=32, patch_size=4, embed_dim=384, depth=12, num_heads=6,
        decoder_embed_dim=256, decoder_depth=4, decoder_num_heads=8,
    ),
    "tiny": dict(
        img_size=32, patch_size=4, embed_dim=192, depth=6, num_heads=3,
        decoder_embed_dim=128, decoder_depth=2, decoder_num_heads=4,
    ),
    "micro": dict(
        img_size=16, patch_size=4, embed_dim=128, depth=4, num_heads=4,
        decoder_embed_dim=64, decoder_depth=2, decoder_num_heads=4,
    ),
}  # fmt: skip


def make_arch(preset: str | None = None, **overrides: Any) -> MAEArch:
    """Preset fields, then the non-None overrides."""
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown model preset '{preset}' (valid: {', '.join(PRESETS)})")
    fields = dict(PRESETS[preset]) if preset else {}
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return MAEArch(**fields)


def arch_from_config(
    model_cfg: Any, img_size: int, in_chans: int, loss_on: str = "masked"
) -> MAEArch:
    """MAEArch from a ModelConfig and `loss.on`; image size and channels default to the data's."""
    fields = model_cfg.model_dump(exclude=set(NOT_ARCH_FIELDS))
    fields["img_size"] = fields["img_size"] or img_size
    fields["in_chans"] = fields["in_chans"] or in_chans
    return make_arch(model_cfg.preset, **fields, loss_on=loss_on)


def linear_arch_from_config(
    model_cfg: Any, loss_on: str, img_size: int, in_chans: int
) -> LinearArch:
    """LinearArch from a ModelConfig (kind linear); the patch size defaults to the preset's."""
    preset = PRESETS.get(model_cfg.preset or "", {})
    return LinearArch(
        img_size=model_cfg.img_size or img_size,
        patch_size=model_cfg.patch_size or preset.get("patch_size", 4),
        in_chans=model_cfg.in_chans or in_chans,
        code_dim=model_cfg.code_dim,
        norm_pix_loss=model_cfg.norm_pix_loss,
        loss_on=loss_on,
    )
