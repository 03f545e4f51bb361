"""A timm folder of a maelab checkpoint: a safetensors state dict of timm's `VisionTransformer`
and timm's hub `config.json` (`architecture`, `model_args`, `pretrained_cfg`).

The encoder is a timm ViT under the same tensor names, so the state dict is the encoder's own
(plus a fine-tuned run's `fc_norm` and `head`). timm loads the folder two ways: by name with the
file as a `pretrained_cfg_overlay`, or as `local-dir:DIR`, which reads `config.json`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import timm
import torch

from maelab.errors import CheckpointError, MaelabError
from maelab.export.folder import CONFIG_FILE, WEIGHTS_FILE, Written
from maelab.export.source import ExportSource
from maelab.models.interop import encoder_state_dict
from maelab.models.mae import MAEArch

# timm's registered ViTs by (width, depth, heads, patch): the name a folder's config gives;
# `model_args` carry every shape, so any other size builds from the base name
TIMM_NAMES = {
    (192, 12, 3, 16): "vit_tiny_patch16_224",
    (384, 12, 6, 16): "vit_small_patch16_224",
    (768, 12, 12, 16): "vit_base_patch16_224",
    (1024, 24, 16, 16): "vit_large_patch16_224",
    (1280, 32, 16, 14): "vit_huge_patch14_224",
}
DEFAULT_NAME = "vit_base_patch16_224"


@dataclass(frozen=True)
class TimmSpec:
    """What `timm.create_model` needs for this encoder."""

    architecture: str
    model_args: dict[str, Any]
    num_classes: int
    pretrained_cfg: dict[str, Any]

    def load_line(self, folder: str | Path) -> str:
        """The one `timm.create_model` call that rebuilds the model from `folder`."""
        keys = ("input_size", "mean", "std", "crop_pct", "num_classes")
        overlay = {k: self.pretrained_cfg[k] for k in keys}
        overlay_text = ", ".join(f"{k}={_py(v)}" for k, v in overlay.items())
        args = ", ".join(f"{k}={_py(v)}" for k, v in self.model_args.items())
        weights = Path(folder) / WEIGHTS_FILE
        return (
            f'timm.create_model("{self.architecture}", pretrained=True, '
            f'pretrained_cfg_overlay=dict(file="{weights}", {overlay_text}), '
            f"num_classes={self.num_classes}, {args})"
        )


def _py(value: Any) -> str:
    """A value as Python source (tuples for lists, short floats)."""
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_py(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, float):
        return f"{value:.6g}"
    return repr(value)


def timm_spec(source: ExportSource) -> TimmSpec:
    """The timm name, model arguments and pretrained_cfg of the source's encoder."""
    a: MAEArch = source.model.arch
    head = source.classifier
    pool = head.global_pool if head is not None else "token"
    model_args = {
        "img_size": a.img_size, "patch_size": a.patch_size, "in_chans": a.in_chans,
        "embed_dim": a.embed_dim, "depth": a.depth, "num_heads": a.num_heads,
        "mlp_ratio": a.mlp_ratio, "global_pool": pool,
    }  # fmt: skip
    num_classes = head.num_classes if head is not None else 0
    pre = source.preprocess
    pretrained_cfg = {
        "input_size": [pre.channels, pre.image_size, pre.image_size],
        "fixed_input_size": True,
        "interpolation": "bicubic",
        "crop_pct": 1.0,
        "crop_mode": "center",
        "mean": list(pre.mean),
        "std": list(pre.std),
        "num_classes": num_classes,
        "first_conv": "patch_embed.proj",
        "classifier": "head",
    }
    name = TIMM_NAMES.get((a.embed_dim, a.depth, a.num_heads, a.patch_size), DEFAULT_NAME)
    return TimmSpec(name, model_args, num_classes, pretrained_cfg)


def timm_state_dict(source: ExportSource) -> dict[str, torch.Tensor]:
    """The timm ViT's tensors: the encoder, and a fine-tuned run's classifier layers."""
    sd = encoder_state_dict(source.model)
    head = source.classifier
    if head is None:
        return sd
    if head.global_pool == "avg":  # fc_norm replaced the final norm
        sd = {k: v for k, v in sd.items() if not k.startswith("norm.")}
    return {**sd, **head.tensors}


def write_timm(source: ExportSource, into: Path, out: Path) -> Written:
    """Write `model.safetensors` and `config.json` into `into` (renamed to `out` later);
    returns how to load it."""
    try:
        from safetensors.torch import save_file
    except ImportError:
        raise MaelabError(
            "--to timm needs the safetensors package: pip install 'maelab[hf]'"
        ) from None
    spec = timm_spec(source)
    vit = timm.create_model(
        spec.architecture, pretrained=False, num_classes=spec.num_classes, **spec.model_args
    )
    try:  # the check that timm builds exactly these tensors
        vit.load_state_dict(timm_state_dict(source), strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise CheckpointError(f"'{source.path}' does not fit timm's ViT ({first})") from None
    tensors = {k: v.detach().contiguous() for k, v in vit.state_dict().items()}
    save_file(tensors, str(into / WEIGHTS_FILE), metadata={"format": "pt"})
    config = {
        "architecture": spec.architecture,
        "num_classes": spec.num_classes,
        "num_features": source.model.arch.embed_dim,
        "global_pool": spec.model_args["global_pool"],
        "model_args": spec.model_args,
        "pretrained_cfg": spec.pretrained_cfg,
    }
    (into / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    short = f'timm.create_model("local-dir:{out}", pretrained=True, num_classes={spec.num_classes})'
    return Written(
        ["import timm", f"model = {spec.load_line(out)}", "# the same, read from config.json:",
         f"model = {short}"]
    )  # fmt: skip
